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

func (b docsHTML) VisitGetDocsResponse(w http.ResponseWriter) error {
	return staticBody(b).write(w)
}
