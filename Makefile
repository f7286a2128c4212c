# customerd — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
# Every tool is pinned in go.mod (tools.go) and run with `go run`: nothing to install by hand.
OAPI_CODEGEN := $(GO) run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen
OASDIFF      := $(GO) run github.com/oasdiff/oasdiff
STATICCHECK  := $(GO) run honnef.co/go/tools/cmd/staticcheck
UPSTREAM     := api/upstream/customer-api.openapi.json

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: run
run: ## serve on :8080 with the embedded SQLite database and the demo tenant
	$(GO) run ./cmd/customerd

.PHONY: build
build: ## build bin/customerd
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/customerd ./cmd/customerd

.PHONY: test
test: ## unit and HTTP-level tests (and fuzz seed corpora); PostgreSQL too when CUSTOMERD_TEST_POSTGRES_URL is set
	$(GO) test -count=1 ./...

.PHONY: generate
generate: ## regenerate gen/ from openapi.yaml
	$(GO) generate ./gen/...

.PHONY: verify
verify: generate sdk-generate docs-bundle ## fail when gen/, the SDK types or the /docs bundle are stale, openapi.yaml has lint problems or breaks the upstream contract
	@changed=$$(git status --porcelain --untracked-files=all -- gen openapi.yaml $(SDK_TYPES) $(REDOC_DIR)); \
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

include make/postcodes.mk
include make/openapi.mk
