package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/store/storetest"
)

// Every status an admin operation answers is one admin.openapi.yaml declares
// for it: a.HTTP validates each answer against the contract (apptest's
// Validator, as every admin test's calls), and these are the answers the
// guards before the handlers give (the body guard, the key's check of path
// values, the request validator) that no other test meets on each
// operation. A client generated from the contract has a type for each.
func TestEveryAdminAnswerIsOneItsOperationDeclares(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		create(t, c, "acme", `{}`)
		a := env.Admin(t)
		key := a.Key(t, "*")
		long := strings.Repeat("a", 65) // over the contract's 64 characters
		customer := "/admin/tenants/demo/customers/" + long
		for _, r := range []struct {
			method, path, body string
			header             []string
			want               int
		}{
			{http.MethodGet, "/admin/tenants/" + long, "", nil, http.StatusBadRequest},
			{http.MethodDelete, "/admin/tenants/" + long, "", nil, http.StatusBadRequest},
			{http.MethodDelete, "/admin/tenants/acme", "", []string{"If-Match", `"` + long + `"`}, http.StatusBadRequest},
			{http.MethodGet, customer, "", nil, http.StatusBadRequest},
			{http.MethodDelete, customer, "", nil, http.StatusBadRequest},
			{http.MethodGet, customer + "/export", "", nil, http.StatusBadRequest},
			{http.MethodPost, customer + "/revoke-sessions", "", nil, http.StatusBadRequest},
			// The body guard reads every POST's body, one the operation does not take too.
			{http.MethodPost, "/admin/tenants/demo/customers/c/revoke-sessions", `{"a": "` + strings.Repeat("x", 65<<10) + `"}`, nil,
				http.StatusRequestEntityTooLarge},
			{http.MethodPost, "/admin/tenants/demo/customers/c/revoke-sessions", `a=b`, []string{"Content-Type", "text/plain"},
				http.StatusUnsupportedMediaType},
			{http.MethodPost, "/admin/tenants/demo/customers/c/revoke-sessions", `{"a": `, nil, http.StatusBadRequest},
			// A number no float64 holds: the body guard's 412 for an account's
			// fields is not this API's (its 412 is a stale ETag).
			{http.MethodPost, "/admin/tenants/demo/customers/c/revoke-sessions", `{"a": 1e999}`, nil, http.StatusBadRequest},
			{http.MethodPost, "/admin/tenants", `{"id": "big", "settings": {"otp": {"maxAttempts": 1e999}}}`, nil, http.StatusBadRequest},
			{http.MethodPut, "/admin/tenants/acme", `{"otp": {"maxAttempts": 1e999}}`, nil, http.StatusBadRequest},
		} {
			header := append([]string{"Authorization", "Bearer " + key}, r.header...)
			res, body := call(t, a.HTTP, r.method, a.Server.URL+r.path, r.body, header...)
			if res.StatusCode != r.want {
				t.Errorf("%s %.80s: %d %.300s, want %d", r.method, r.path, res.StatusCode, body, r.want)
			}
		}
	})
}
