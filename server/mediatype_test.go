package server_test

import (
	"encoding/json"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
)

// The contract takes application/json, text/json and application/*+json bodies.
func TestJSONMediaTypes(t *testing.T) {
	env := apptest.Start(t, "", "")
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "text/json", "application/vnd.customer+json", "application/ld+json"} {
		t.Run(ct+" is taken", func(t *testing.T) {
			email := strings.NewReplacer("/", ".", "+", ".", ";", "", " ", "", "=", ".").Replace(ct) + "@example.com"
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"`+email+`"}`), "Content-Type", ct)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", r.StatusCode, r.body)
			}
		})
	}
	r := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"xml@example.com"}`), "Content-Type", "application/xml")
	mustProblem(t, r, http.StatusUnsupportedMediaType)
}

// An error is application/problem+json unless Accept prefers application/json
// or text/json to it; then the same body as application/json.
func TestProblemMediaType(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		for _, tc := range []struct{ accept, want string }{
			{"", "application/problem+json"},
			{"*/*", "application/problem+json"},
			{"application/*", "application/problem+json"},
			{"application/problem+json", "application/problem+json"},
			{"application/problem+json, application/json", "application/problem+json"},
			{"application/json, application/problem+json", "application/problem+json"},
			{"text/html", "application/problem+json"},
			{"application/json;q=0", "application/problem+json"},
			{"application/json;q=0.5, */*", "application/problem+json"},
			{"application/json;q=0.5, application/problem+json;q=0.9", "application/problem+json"},
			{"application/json", "application/json"},
			{"text/json", "application/json"},
			{"application/json, text/plain, */*", "application/json"},
			{"application/*, application/json", "application/json"},
			{"application/json, application/problem+json;q=0.5", "application/json"},
			{"application/problem+json;q=0, application/json", "application/json"},
			{"application/json;q=0.2, text/plain;q=0.1", "application/json"},
		} {
			t.Run("Accept "+tc.accept, func(t *testing.T) {
				for _, call := range []struct {
					method, path, body string
					status             int
				}{
					{http.MethodGet, "/api/nobody/customer", "", http.StatusNotFound},
					{http.MethodGet, "/api/demo/customer", "", http.StatusUnauthorized},
					{http.MethodPost, "/api/demo/customer", `{"email":"not-an-email"}`, http.StatusPreconditionFailed},
					{http.MethodPost, "/api/demo/customer/authenticate", `{"email":"a@example.com"}`, http.StatusBadRequest},
					{http.MethodGet, "/no/such/path", "", http.StatusNotFound},
				} {
					var body io.Reader
					if call.body != "" {
						body = strings.NewReader(call.body)
					}
					r := rawCall(t, env, call.method, call.path, body, "Accept", tc.accept)
					if r.StatusCode != call.status {
						t.Fatalf("%s %s → %d, want %d: %s", call.method, call.path, r.StatusCode, call.status, r.body)
					}
					if ct := r.Header.Get("Content-Type"); ct != tc.want {
						t.Errorf("%s %s: Content-Type %q, want %q", call.method, call.path, ct, tc.want)
					}
					var p map[string]any
					if err := json.Unmarshal(r.body, &p); err != nil || p["status"] != float64(call.status) || p["type"] == nil {
						t.Errorf("%s %s: not the problem: %s", call.method, call.path, r.body)
					}
				}
			})
		}
	})
}
