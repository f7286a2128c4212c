// Package gen holds only code generated from ../openapi.yaml (api/, client/)
// and ../admin.openapi.yaml (adminapi/, adminclient/); never edit it by hand.
package gen

//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config api/server.cfg.yaml ../openapi.yaml
//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config client/client.cfg.yaml ../openapi.yaml
//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config adminapi/server.cfg.yaml ../admin.openapi.yaml
//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config adminclient/client.cfg.yaml ../admin.openapi.yaml
