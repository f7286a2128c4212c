package admin_test

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/customerd/customerd/store/storetest"
)

// Text the admin API reads from a request (a cursor's bytes, an id in the
// path, a query value) that is not UTF-8 or holds a NUL is refused (400) on
// both databases: PostgreSQL's text cannot hold those bytes, and answered
// 500 where SQLite answered 200 or 404.
func TestAdminTextThatIsNotUTF8AnswersAlikeOnBothDatabases(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, _ := start(t, dbURL, "")
		a := env.Admin(t)
		key := a.Key(t, "*")
		cur := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		for name, path := range map[string]string{
			"tenants after a cursor not UTF-8":    "/admin/tenants?cursor=" + cur("a\xff"),
			"tenants after a cursor with a NUL":   "/admin/tenants?cursor=" + cur("a\x00"),
			"customers after a cursor not UTF-8":  "/admin/tenants/demo/customers?cursor=" + cur("2020-01-01T00:00:00Z|\xff"),
			"customers after a cursor with NUL":   "/admin/tenants/demo/customers?cursor=" + cur("2020-01-01T00:00:00Z|a\x00"),
			"a customer id not UTF-8":             "/admin/tenants/demo/customers/%FF",
			"a customer id with a NUL":            "/admin/tenants/demo/customers/a%00",
			"a tenant id not UTF-8":               "/admin/tenants/%FF",
			"a tenant id with a NUL":              "/admin/tenants/a%00",
			"a tenant's customers not UTF-8":      "/admin/tenants/%FF/customers",
			"audit entries of a tenant not UTF-8": "/admin/audit?tenantId=%FF",
		} {
			// Through the validating client: each 400 is one the operation declares.
			res, body := call(t, a.HTTP, http.MethodGet, a.Server.URL+path, "", "Authorization", "Bearer "+key)
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", name, res.StatusCode, body)
			}
		}
	})
}
