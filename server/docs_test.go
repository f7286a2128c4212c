package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/customerd/customerd"
	"github.com/customerd/customerd/app/apptest"
)

func get(t *testing.T, env *apptest.Env, path string) (*http.Response, []byte) {
	t.Helper()
	res, err := env.HTTP.Get(env.Server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
	return res, body
}

func TestDocs(t *testing.T) {
	env := apptest.Start(t, "", "")

	t.Run("the YAML contract is openapi.yaml byte for byte", func(t *testing.T) {
		res, body := get(t, env, "/openapi.yaml")
		if !bytes.Equal(body, customerd.OpenAPIYAML) || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/yaml") {
			t.Fatalf("GET /openapi.yaml: %s, %d bytes", res.Header.Get("Content-Type"), len(body))
		}
	})

	t.Run("the JSON contract says what the YAML says", func(t *testing.T) {
		_, body := get(t, env, "/openapi.json")
		fromJSON, err := openapi3.NewLoader().LoadFromData(body)
		if err != nil {
			t.Fatal(err)
		}
		fromYAML, err := openapi3.NewLoader().LoadFromData(customerd.OpenAPIYAML)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(fromJSON)
		y, _ := json.Marshal(fromYAML)
		if !bytes.Equal(j, y) {
			t.Fatal("/openapi.json and openapi.yaml differ")
		}
	})

	t.Run("the reference page loads its script and the contract from the service", func(t *testing.T) {
		res, page := get(t, env, "/docs")
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
			!bytes.Contains(page, []byte(`spec-url="openapi.json"`)) || !bytes.Contains(page, []byte(`src="docs/redoc.standalone.js"`)) {
			t.Fatalf("GET /docs: %s\n%s", res.Header.Get("Content-Type"), page)
		}
		if bytes.Contains(page, []byte("http://")) || bytes.Contains(page, []byte("https://")) {
			t.Fatal("the page loads something from elsewhere")
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "img-src 'self' data:") {
			t.Fatalf("Content-Security-Policy: %q", csp)
		}
		res, script := get(t, env, "/docs/redoc.standalone.js")
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || !bytes.Contains(script, []byte("Redoc")) {
			t.Fatalf("GET /docs/redoc.standalone.js: %s, %d bytes", res.Header.Get("Content-Type"), len(script))
		}
		// Its footer logo is inlined (make docs-bundle): the policy has nothing to refuse.
		if bytes.Contains(script, []byte("cdn.redoc.ly")) {
			t.Fatal("the Redoc bundle still loads its logo from cdn.redoc.ly")
		}
	})

	t.Run("/docs/ leads to the page", func(t *testing.T) {
		// Not in the contract: a plain client, which does not follow the redirect.
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := hc.Get(env.Server.URL + "/docs/")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "../docs" {
			t.Fatalf("GET /docs/: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
		}
		res, err = http.Get(env.Server.URL + "/docs/")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/docs" {
			t.Fatalf("following /docs/: %d at %s", res.StatusCode, res.Request.URL)
		}
	})
}

// operationIDs are the contract's operationIds. Generated clients name their
// methods after them: renaming or removing one breaks every client, so this
// list only grows.
var operationIDs = []string{
	"authenticateCustomer", "deleteCustomer", "getCustomer", "getDocs", "getDocsScript", "getHealth", "getJwks",
	"getMetrics", "getOpenApiJson", "getOpenApiYaml", "getReadiness", "upsertCustomer",
}

func TestOperationIDsAreStable(t *testing.T) {
	spec, err := openapi3.NewLoader().LoadFromData(customerd.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			have = append(have, op.OperationID)
		}
	}
	sort.Strings(have)
	got := map[string]bool{}
	for _, id := range have {
		got[id] = true
	}
	for _, id := range operationIDs {
		if !got[id] {
			t.Errorf("operationId %q is gone: generated clients lose their method (have %v)", id, have)
		}
	}
	if len(have) != len(operationIDs) {
		t.Errorf("operationIds %v: add a new one to operationIDs, never rename one", have)
	}
}
