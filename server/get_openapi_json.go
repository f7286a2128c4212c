package server

import (
	"context"
	"net/http"

	"github.com/customerd/customerd"
	"github.com/customerd/customerd/gen/api"
)

// GetOpenApiJson answers openapi.yaml as JSON.
func (s *Server) GetOpenApiJson(context.Context, api.GetOpenApiJsonRequestObject) (api.GetOpenApiJsonResponseObject, error) {
	raw, err := customerd.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	return openAPIJSON{contentType: "application/json", body: raw}, nil
}

type openAPIJSON staticBody

func (b openAPIJSON) VisitGetOpenApiJsonResponse(w http.ResponseWriter) error {
	return staticBody(b).write(w)
}
