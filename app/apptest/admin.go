package apptest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/customerd/customerd/admin"
	"github.com/customerd/customerd/gen/adminclient"
)

// Admin is the administration API of a running customerd, on a listener of
// its own as in production.
type Admin struct {
	Server *httptest.Server
	// HTTP validates every response it receives against admin.openapi.yaml.
	HTTP *http.Client
	env  *Env
}

// Admin starts the admin listener of e (once) and returns it.
func (e *Env) Admin(t testing.TB) *Admin {
	t.Helper()
	e.adminOnce.Do(func() {
		srv := httptest.NewServer(e.App.AdminHandler)
		t.Cleanup(srv.Close)
		e.admin = &Admin{Server: srv, env: e,
			HTTP: &http.Client{Transport: &Validator{T: t, Next: http.DefaultTransport, Router: AdminRouter(t)}, Timeout: 30 * time.Second}}
	})
	return e.admin
}

// Key makes an admin API key of scope ("*" or "acme,shop"), as
// `customerd admin-key create` does.
func (a *Admin) Key(t testing.TB, scope string) string {
	t.Helper()
	sc, err := admin.ParseScope(scope)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := admin.CreateKey(context.Background(), a.env.App.AdminKeys, sc, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Client is the generated admin client authenticated with key ("" for none).
func (a *Admin) Client(t testing.TB, key string) *adminclient.ClientWithResponses {
	t.Helper()
	c, err := adminclient.NewClientWithResponses(a.Server.URL, adminclient.WithHTTPClient(a.HTTP),
		adminclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			if key != "" {
				r.Header.Set("Authorization", "Bearer "+key)
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
