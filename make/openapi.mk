# make/openapi.mk: the contract's tooling for client teams, included from the
# main Makefile and run from the repository root. Needs node and npm; the npm
# packages are pinned in package-lock.json files and installed here with
# `npm ci`, again only when a lock file changes.
#
#   sdk/typescript/   the TypeScript SDK (openapi-typescript + openapi-fetch, tsc)
#   sdk/upstream-client/  a client of the upstream document alone (same toolchain)
#   scripts/openapi/  Redocly (lint), Prism and Ajv (conformance), Redoc (the
#                     /docs bundle) and playwright-core (the browser test)

SDK_DIR     := sdk/typescript
SDK_TYPES   := $(SDK_DIR)/src/schema.gen.ts $(SDK_DIR)/src/admin.gen.ts
UPSTREAM_CLIENT := sdk/upstream-client
OAPI_DIR    := scripts/openapi
OAPI_BIN    := $(OAPI_DIR)/node_modules/.bin
REDOC_DIR   := server/redoc
NPM_CI      := npm ci --ignore-scripts --no-audit --no-fund --silent
CHROMIUM    ?= /usr/bin/chromium

# npm ci writes node_modules/.package-lock.json: newer than the lock file means installed.
$(SDK_DIR)/node_modules/.package-lock.json: $(SDK_DIR)/package-lock.json
	$(NPM_CI) --prefix $(SDK_DIR)
$(OAPI_DIR)/node_modules/.package-lock.json: $(OAPI_DIR)/package-lock.json
	$(NPM_CI) --prefix $(OAPI_DIR)
$(UPSTREAM_CLIENT)/node_modules/.package-lock.json: $(UPSTREAM_CLIENT)/package-lock.json
	$(NPM_CI) --prefix $(UPSTREAM_CLIENT)

.PHONY: sdk-generate
sdk-generate: $(SDK_DIR)/node_modules/.package-lock.json ## regenerate the TypeScript SDK's types from openapi.yaml and admin.openapi.yaml
	@cd $(SDK_DIR) && node_modules/.bin/openapi-typescript ../../openapi.yaml --output src/schema.gen.ts --silent
	@cd $(SDK_DIR) && node_modules/.bin/openapi-typescript ../../admin.openapi.yaml --output src/admin.gen.ts --silent

.PHONY: sdk
sdk: sdk-generate build ## regenerate and build the TypeScript SDK, and run its journey against a fresh customerd
	cd $(SDK_DIR) && rm -rf dist && node_modules/.bin/tsc -p .
	cd $(SDK_DIR) && CUSTOMERD_BIN=$(CURDIR)/bin/customerd node --test --test-reporter=spec dist/test/*.test.js

.PHONY: upstream-client
upstream-client: build $(OAPI_DIR)/node_modules/.package-lock.json $(UPSTREAM_CLIENT)/node_modules/.package-lock.json ## generate a client from the upstream document alone and run its journey through Prism (upstream, --errors) against a fresh customerd
	cd $(UPSTREAM_CLIENT) && node_modules/.bin/openapi-typescript ../../$(UPSTREAM) --output src/upstream.gen.ts --silent
	cd $(UPSTREAM_CLIENT) && rm -rf dist && node_modules/.bin/tsc -p .
	cd $(UPSTREAM_CLIENT) && CUSTOMERD_BIN=$(CURDIR)/bin/customerd node --test --test-reporter=spec dist/journey.test.js

.PHONY: spec-lint
spec-lint: $(OAPI_DIR)/node_modules/.package-lock.json ## lint openapi.yaml and admin.openapi.yaml with Redocly and redocly.yaml: zero problems
	@for spec in openapi.yaml admin.openapi.yaml; do \
	out=$$($(OAPI_BIN)/redocly lint $$spec --config redocly.yaml --format stylish 2>&1); rc=$$?; \
	problems=$$(grep -cE '^\s*[0-9]+:[0-9]+\s+(error|warning)' <<<"$$out"); \
	if [ $$rc -ne 0 ] || [ "$$problems" -ne 0 ]; then grep -vE 'Node.js|║|╔|╚' <<<"$$out"; echo "spec-lint: $$spec: $$problems problem(s)"; exit 1; fi; \
	echo "spec-lint: $$spec has no errors and no warnings"; done

# The bundle's one outside request, its footer logo, becomes an empty inline
# image: the page's policy then has nothing to refuse (the footer's text stays).
REDOC_LOGO  := data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E

.PHONY: docs-bundle
docs-bundle: $(OAPI_DIR)/node_modules/.package-lock.json ## copy the pinned Redoc bundle that /docs serves into server/redoc (its CDN logo inlined)
	@sed 's#https://cdn\.redoc\.ly/redoc/logo-mini\.svg#$(REDOC_LOGO)#' $(OAPI_DIR)/node_modules/redoc/bundles/redoc.standalone.js > $(REDOC_DIR)/redoc.standalone.js
	@cp $(OAPI_DIR)/node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt $(REDOC_DIR)/redoc.standalone.js.LICENSE.txt
	@cp $(OAPI_DIR)/node_modules/redoc/LICENSE $(REDOC_DIR)/LICENSE

# Debian's chromium: installed when missing; the package lists are refreshed
# only when the install cannot find it.
.PHONY: chromium
chromium: ## install Debian's chromium for the docs test when it is missing
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y --no-install-recommends chromium || \
	{ $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium; }

.PHONY: docs-test
docs-test: build chromium $(OAPI_DIR)/node_modules/.package-lock.json ## load /docs in headless Chromium and find the three customer operations
	CHROMIUM=$(CHROMIUM) node $(OAPI_DIR)/docs-browser.mjs

.PHONY: conformance
conformance: build $(OAPI_DIR)/node_modules/.package-lock.json ## replay the journey and bad input through Prism, and check the upstream contract
	node $(OAPI_DIR)/conformance.mjs
