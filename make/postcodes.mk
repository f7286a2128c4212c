# make/postcodes.mk: regenerates account/postcode/fr.tsv, the French postcode
# table embedded by the Go package account/postcode, from the npm package
# codes-postaux pinned in scripts/postcodes/package-lock.json. Included from the
# main Makefile; run from the repository root. Needs node and npm. The output is
# byte-identical for the same package version, so a diff after `make postcodes`
# means the pinned data (or the converter) changed.

POSTCODES_DIR := scripts/postcodes
POSTCODES_TSV := account/postcode/fr.tsv

.PHONY: postcodes
postcodes: ## regenerate account/postcode/fr.tsv from the pinned npm package codes-postaux
	@npm ci --prefix $(POSTCODES_DIR) --ignore-scripts --no-audit --no-fund --silent
	@node $(POSTCODES_DIR)/convert.mjs > $(POSTCODES_TSV).tmp || { rm -f $(POSTCODES_TSV).tmp; exit 1; }
	@mv $(POSTCODES_TSV).tmp $(POSTCODES_TSV)
