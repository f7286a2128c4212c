package server

import (
	"context"
	"net/http"

	"github.com/customerd/customerd/gen/api"
)

// GetDocs answers the API reference page; Redoc renders it from /openapi.json.
func (s *Server) GetDocs(context.Context, api.GetDocsRequestObject) (api.GetDocsResponseObject, error) {
	return docsHTML{contentType: "text/html; charset=utf-8", body: docsPage}, nil
}

type docsHTML staticBody

// docsPolicy keeps the page to what customerd serves (make docs-bundle points
// the bundle's CDN logo at an inline image, so nothing is refused either).
const docsPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (b docsHTML) VisitGetDocsResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Security-Policy", docsPolicy)
	return staticBody(b).write(w)
}
