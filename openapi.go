// Package customerd holds the contracts, openapi.yaml and admin.openapi.yaml, for the service to serve
// as it was written. (The spec gen/api embeds is not it: the generator renames
// its operationIds to Go names.)
package customerd

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"go.yaml.in/yaml/v3"
)

// OpenAPIYAML is openapi.yaml, byte for byte.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// OpenAPIJSON is openapi.yaml as JSON.
var OpenAPIJSON = sync.OnceValues(func() ([]byte, error) { return asJSON("openapi.yaml", OpenAPIYAML) })

// AdminOpenAPIYAML is admin.openapi.yaml, byte for byte: the contract of the
// admin listener.
//
//go:embed admin.openapi.yaml
var AdminOpenAPIYAML []byte

// AdminOpenAPIJSON is admin.openapi.yaml as JSON.
var AdminOpenAPIJSON = sync.OnceValues(func() ([]byte, error) { return asJSON("admin.openapi.yaml", AdminOpenAPIYAML) })

func asJSON(name string, doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return json.Marshal(v)
}
