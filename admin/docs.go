package admin

import (
	"context"
	"net/http"

	"github.com/customerd/customerd"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/server"
)

// The admin listener serves its own contract and reference, as the public
// one serves the customer API's.

// GetAdminOpenApiYaml answers admin.openapi.yaml as it was written.
func (s *Server) GetAdminOpenApiYaml(context.Context, adminapi.GetAdminOpenApiYamlRequestObject) (adminapi.GetAdminOpenApiYamlResponseObject, error) {
	return contract{ContentType: "application/yaml; charset=utf-8", Body: customerd.AdminOpenAPIYAML}, nil
}

// GetAdminOpenApiJson answers admin.openapi.yaml as JSON.
func (s *Server) GetAdminOpenApiJson(context.Context, adminapi.GetAdminOpenApiJsonRequestObject) (adminapi.GetAdminOpenApiJsonResponseObject, error) {
	raw, err := customerd.AdminOpenAPIJSON()
	if err != nil {
		return nil, err
	}
	return contract{ContentType: "application/json", Body: raw}, nil
}

type contract server.Static

func (c contract) VisitGetAdminOpenApiYamlResponse(w http.ResponseWriter) error {
	return server.Static(c).Write(w)
}

func (c contract) VisitGetAdminOpenApiJsonResponse(w http.ResponseWriter) error {
	return server.Static(c).Write(w)
}

// GetAdminDocs answers the reference page.
func (s *Server) GetAdminDocs(context.Context, adminapi.GetAdminDocsRequestObject) (adminapi.GetAdminDocsResponseObject, error) {
	return reference{}, nil
}

// GetAdminDocsScript answers the Redoc bundle the reference page runs.
func (s *Server) GetAdminDocsScript(context.Context, adminapi.GetAdminDocsScriptRequestObject) (adminapi.GetAdminDocsScriptResponseObject, error) {
	return reference{}, nil
}

type reference struct{}

func (reference) VisitGetAdminDocsResponse(w http.ResponseWriter) error {
	return server.WriteDocsPage(w)
}

func (reference) VisitGetAdminDocsScriptResponse(w http.ResponseWriter) error {
	return server.WriteDocsScript(w)
}
