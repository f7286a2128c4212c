// Package gen holds only code generated from ../openapi.yaml; never edit it by hand.
package gen

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config api/server.cfg.yaml ../openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config client/client.cfg.yaml ../openapi.yaml
