package server_test

import (
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
