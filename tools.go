//go:build tools

// This file pins the versions of the code generator, the contract checker and
// the linter in go.mod; the Makefile runs them with `go run`.

package customerd

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
	_ "github.com/oasdiff/oasdiff"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
