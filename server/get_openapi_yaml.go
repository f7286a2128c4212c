package server

import (
	"context"
	"net/http"

	"github.com/customerd/customerd"
	"github.com/customerd/customerd/gen/api"
)

// GetOpenApiYaml answers openapi.yaml as it was written, comments included.
func (s *Server) GetOpenApiYaml(context.Context, api.GetOpenApiYamlRequestObject) (api.GetOpenApiYamlResponseObject, error) {
	return openAPIYAML{contentType: "application/yaml; charset=utf-8", body: customerd.OpenAPIYAML}, nil
}

type openAPIYAML staticBody

func (b openAPIYAML) VisitGetOpenApiYamlResponse(w http.ResponseWriter) error {
	return staticBody(b).write(w)
}
