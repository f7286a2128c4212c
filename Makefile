# customerd — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
# The development tools are pinned in tools/go.mod, apart from the service's
# go.mod, and run with `go tool`: nothing to install by hand.
TOOL         := $(GO) tool -modfile=tools/go.mod
OAPI_CODEGEN := $(TOOL) oapi-codegen
OASDIFF      := $(TOOL) oasdiff
STATICCHECK  := $(TOOL) staticcheck
UPSTREAM     := api/upstream/customer-api.openapi.json
# make run ADDR=:9090 serves elsewhere; CUSTOMERD_ADDR does too.
ADDR         ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## serve on :8080 (ADDR=:9090 for another) with the embedded SQLite database and the demo tenant
	$(if $(ADDR),CUSTOMERD_ADDR=$(ADDR)) $(GO) run ./cmd/customerd serve

.PHONY: build
build: ## build bin/customerd (with the commit `customerd version` shows, when built in a git clone)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -o bin/customerd ./cmd/customerd

.PHONY: test
# server's HTTP-level tests take 3 to 4 minutes on a quiet 2-CPU machine and
# went past go test's default 10 minutes on one running other builds: the
# timeout is for a hang, not a measure.
test: ## unit and HTTP-level tests (and fuzz seed corpora); PostgreSQL too when CUSTOMERD_TEST_POSTGRES_URL is set
	$(GO) test -count=1 -timeout 30m ./...

# The packages with goroutines, locks or shared caches, and the HTTP-level
# tests that run replicas and concurrent requests through them.
RACE_PKGS := ./store/... ./events/ ./providers/... ./token/ ./sender/... ./server/ ./catalog/ ./admin/

.PHONY: race
race: ## the concurrent packages under the race detector (needs a C compiler for cgo)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

.PHONY: recipes
recipes: ## run the README's recipes as written: the Go client, the TypeScript ones (after make sdk), the webhook receiver
	CUSTOMERD_TEST_RECIPES=1 $(GO) test -count=1 -run '^TestREADME' .

.PHONY: generate
generate: ## regenerate gen/ from openapi.yaml and admin.openapi.yaml (oapi-codegen from tools/go.mod)
	$(GO) generate ./gen/...

.PHONY: verify
verify: generate sdk-generate docs-bundle ## fail when gen/, the SDK types or the /docs bundle are stale, a contract has lint problems, or openapi.yaml breaks the upstream contract
	@changed=$$(git status --porcelain --untracked-files=all -- gen openapi.yaml admin.openapi.yaml $(SDK_TYPES) $(REDOC_DIR)); \
	if [ -n "$$changed" ]; then echo "generated code is not current (run make generate sdk docs-bundle and commit):"; echo "$$changed"; git --no-pager diff --stat -- gen $(SDK_TYPES) $(REDOC_DIR); exit 1; fi
	$(OASDIFF) breaking --flatten-allof --fail-on WARN $(UPSTREAM) openapi.yaml
	@$(MAKE) --no-print-directory spec-lint
	@echo "verify: generated code current, contract lint-clean and a non-breaking superset of upstream"

.PHONY: lint
lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt-ed: $$unformatted"; exit 1; fi

.PHONY: bench
bench: ## load benchmark against floor servers (SQLite; PostgreSQL too when CUSTOMERD_TEST_POSTGRES_URL is set)
	$(GO) run ./bench/cmd/loadbench

.PHONY: migrate
migrate: ## apply the database migrations and exit
	$(GO) run ./cmd/customerd migrate

.PHONY: tools
tools: ## build the pinned development tools once (make lint, verify and generate build them when needed)
	$(GO) build -modfile=tools/go.mod -o /dev/null github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen github.com/oasdiff/oasdiff honnef.co/go/tools/cmd/staticcheck

include make/postcodes.mk
include make/openapi.mk
include make/changelog.mk
