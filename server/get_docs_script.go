package server

import (
	"context"
	"net/http"

	"github.com/customerd/customerd/gen/api"
)

// GetDocsScript answers the Redoc bundle the reference page runs.
func (s *Server) GetDocsScript(context.Context, api.GetDocsScriptRequestObject) (api.GetDocsScriptResponseObject, error) {
	return docsJS{contentType: "text/javascript; charset=utf-8", body: docsScript}, nil
}

type docsJS staticBody

func (b docsJS) VisitGetDocsScriptResponse(w http.ResponseWriter) error {
	return staticBody(b).write(w)
}
