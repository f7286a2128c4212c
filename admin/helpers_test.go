package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

// forEachBackend runs fn on SQLite, and on PostgreSQL when it is configured.
func forEachBackend(t *testing.T, fn func(t *testing.T, dbURL string)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.URL(t)) })
	}
}

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

func bearer(tok string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

// signIn runs the otp journey for email on tenant and returns the token.
func signIn(t *testing.T, env *apptest.Env, tenant, email string) string {
	t.Helper()
	start, err := env.Client.AuthenticateCustomerWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: ptr("otp")},
		client.AuthenticateCustomerJSONRequestBody{Email: ptr(email)})
	if err != nil || start.StatusCode() != http.StatusAccepted {
		t.Fatalf("ask for a code: %v %d %s", err, start.StatusCode(), start.Body)
	}
	code := env.Logs.Code(email)
	id := start.JSON202.ChallengeId.String()
	res, err := env.Client.AuthenticateCustomerWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: ptr("otp")},
		client.AuthenticateCustomerJSONRequestBody{ChallengeId: &id, Code: &code})
	if err != nil || res.StatusCode() != http.StatusOK || res.JSON200 == nil {
		t.Fatalf("exchange the code: %v %d %s", err, res.StatusCode(), res.Body)
	}
	return *res.JSON200
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
