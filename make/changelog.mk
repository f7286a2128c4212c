# make/changelog.mk: what changed for clients in openapi.yaml, as oasdiff's
# changelog (breaking changes, "error", first). Included from the main
# Makefile; run from the repository root.
#
#   make changelog                 origin/main (else main~1, else HEAD) → the working tree
#   make changelog BASE=v1.2.0     any git revision, or a file: BASE=api/upstream/customer-api.openapi.json
#   make changelog SPEC=other.yaml compare another document than openapi.yaml

SPEC ?= openapi.yaml
BASE ?= $(shell git rev-parse -q --verify origin/main >/dev/null && echo origin/main || \
	{ git rev-parse -q --verify main~1 >/dev/null && echo main~1; } || echo HEAD)

.PHONY: changelog
changelog: ## client-facing changes of openapi.yaml since BASE (default origin/main, else main~1, else HEAD), breaking first
	@base="$(BASE)"; \
	if [ ! -f "$$base" ]; then \
		tmp=$$(mktemp --suffix=.yaml); trap 'rm -f "$$tmp"' EXIT; \
		git show "$$base:openapi.yaml" > "$$tmp" 2>/dev/null || { echo "changelog: $$base has no openapi.yaml" >&2; exit 1; }; \
		base="$$tmp"; \
	fi; \
	echo "openapi.yaml: changes from $(BASE) to $(SPEC)"; \
	out=$$($(OASDIFF) changelog --flatten-allof --color never "$$base" "$(SPEC)") || { echo "$$out"; exit 1; }; \
	if [ -z "$$out" ]; then echo "no client-facing change"; else echo "$$out"; fi

# changelog-check proves make changelog reports a change: a scratch copy of
# the contract without GET /openapi.json must show that breaking change; and
# the contract against the upstream document must show nothing breaking.
.PHONY: changelog-check
changelog-check: ## make changelog reports a deliberate change, and nothing breaking against upstream
	@scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	sed '/^  \/openapi.json:/,/^  \/docs:/{/^  \/docs:/!d}' openapi.yaml > "$$scratch/openapi.yaml"; \
	out=$$($(MAKE) --no-print-directory changelog BASE=HEAD SPEC="$$scratch/openapi.yaml") || { echo "$$out"; exit 1; }; \
	grep -q '^error	\[api-path-removed-without-deprecation\]' <<<"$$out" && grep -q 'GET /openapi.json' <<<"$$out" || \
		{ echo "$$out"; echo "changelog-check: the removed GET /openapi.json is not reported as breaking"; exit 1; }; \
	out=$$($(MAKE) --no-print-directory changelog BASE=$(UPSTREAM)) || { echo "$$out"; exit 1; }; \
	if grep -q '^error' <<<"$$out"; then echo "$$out"; echo "changelog-check: breaking changes against upstream"; exit 1; fi; \
	echo "changelog-check: a removed operation is reported as breaking; nothing breaks upstream's clients"
