package admin_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/store"
)

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

// start runs customerd with its admin listener and a key of every tenant.
func start(t *testing.T, dbURL, configYAML string) (*apptest.Env, *adminclient.ClientWithResponses) {
	t.Helper()
	env := apptest.Start(t, dbURL, configYAML)
	a := env.Admin(t)
	return env, a.Client(t, a.Key(t, "*"))
}

// settings reads a tenant's settings from JSON.
func settings(t *testing.T, js string) adminclient.TenantSettings {
	t.Helper()
	var s adminclient.TenantSettings
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// create creates tenant id from its settings' JSON, or fails the test.
func create(t *testing.T, c *adminclient.ClientWithResponses, id, js string) *adminclient.Tenant {
	t.Helper()
	res, err := c.CreateTenantWithResponse(ctx, adminclient.NewTenant{Id: id, Settings: settings(t, js)})
	if err != nil || res.StatusCode() != http.StatusCreated {
		t.Fatalf("create tenant %s: %v %d %s", id, err, res.StatusCode(), res.Body)
	}
	return res.JSON201
}

// call sends a raw request through the validating client of h.
func call(t *testing.T, h *http.Client, method, url, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := h.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func adminclientNewTenant(id string) adminclient.NewTenant {
	return adminclient.NewTenant{Id: id, Settings: adminclient.TenantSettings{}}
}

// brandEndpoint is a brand's sign-in endpoint that signals entered when a
// request arrives and answers a subject once release is closed.
func brandEndpoint(t *testing.T, entered chan<- struct{}, release <-chan struct{}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"subject": "member-42"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func storeEvents(tenant string) store.EventQuery {
	return store.EventQuery{Tenant: tenant, Limit: 100000}
}

func adminclientNewTenantOf(t *testing.T, id, js string) adminclient.NewTenant {
	return adminclient.NewTenant{Id: id, Settings: settings(t, js)}
}

// openDB opens the database of dbURL directly, to write behind the
// service's back.
func openDB(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", dbURL
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
