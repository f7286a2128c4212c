package server

import (
	_ "embed"
	"net/http"
)

// The Redoc bundle is copied from the redoc package pinned in
// scripts/openapi/package-lock.json by `make docs-bundle`; `make verify`
// fails when it differs from the pinned one.
var (
	//go:embed redoc/index.html
	docsPage []byte
	//go:embed redoc/redoc.standalone.js
	docsScript []byte
)

// docsCache lets browsers and proxies keep the contract and its reference for
// a few minutes: a deploy changes them.
const docsCache = "public, max-age=300"

// staticBody answers fixed bytes with their media type; it is the response of
// the documentation operations.
type staticBody struct {
	contentType string
	body        []byte
}

func (b staticBody) write(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", b.contentType)
	w.Header().Set("Cache-Control", docsCache)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b.body)
	return err
}
