package admin_test

import (
	"fmt"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerd/customerd/admin"
	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/sender"
	"github.com/oapi-codegen/nullable"
)

func TestEveryCallNeedsALiveKey(t *testing.T) {
	env := apptest.Start(t, "", "")
	a := env.Admin(t)
	good := a.Key(t, "*")
	id := strings.Split(good, "_")[1]
	wrongSecret := good[:len(good)-4] + "AAAA"
	if wrongSecret == good {
		wrongSecret = good[:len(good)-4] + "BBBB"
	}
	revoked := a.Key(t, "*")
	if err := env.App.AdminKeys.RevokeAdminKey(ctx, strings.Split(revoked, "_")[1], time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, header := range map[string]string{
		"no key":                     "",
		"not a bearer":               "Basic " + good,
		"not a key":                  "Bearer nope",
		"an unknown id":              "Bearer cdk_0123456789abcdef_" + strings.Repeat("A", 43),
		"a known id, another secret": "Bearer " + wrongSecret,
		"a revoked key":              "Bearer " + revoked,
	} {
		t.Run(name, func(t *testing.T) {
			res, body := call(t, a.HTTP, http.MethodGet, a.Server.URL+"/admin/tenants", "", "Authorization", header)
			if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%d %s, want 401 with a Bearer challenge", res.StatusCode, body)
			}
			if strings.Contains(body, id) || strings.Contains(body, "AAAA") {
				t.Fatalf("the answer repeats the key: %s", body)
			}
		})
	}
	if res, body := call(t, a.HTTP, http.MethodGet, a.Server.URL+"/admin/tenants", "", "Authorization", "Bearer "+good); res.StatusCode != http.StatusOK {
		t.Fatalf("a good key: %d %s", res.StatusCode, body)
	}
	for _, path := range []string{"/docs", "/docs/redoc.standalone.js", "/openapi.yaml", "/openapi.json"} {
		if res, body := call(t, a.HTTP, http.MethodGet, a.Server.URL+path, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("%s without a key: %d %.200s", path, res.StatusCode, body)
		}
	}
}

func TestAScopedKeyManagesItsTenantsOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, root := start(t, dbURL, "")
		create(t, root, "acme", `{}`)
		create(t, root, "shop", `{}`)
		a := env.Admin(t)
		acme := a.Client(t, a.Key(t, "acme"))

		if res, err := acme.GetTenantWithResponse(ctx, "acme"); err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("its own tenant: %v %d %s", err, res.StatusCode(), res.Body)
		}
		// Another tenant, existing or not, answers the same: the key learns nothing of it.
		for _, other := range []string{"shop", "nope"} {
			res, err := acme.GetTenantWithResponse(ctx, other)
			if err != nil || res.StatusCode() != http.StatusForbidden || res.ApplicationproblemJSON403 == nil {
				t.Fatalf("tenant %s: %v %d %s", other, err, res.StatusCode(), res.Body)
			}
			for _, call := range []func() (int, error){
				func() (int, error) {
					r, err := acme.DeleteTenantWithResponse(ctx, other, nil)
					return r.StatusCode(), err
				},
				func() (int, error) {
					r, err := acme.ListCustomersWithResponse(ctx, other, nil)
					return r.StatusCode(), err
				},
				func() (int, error) {
					r, err := acme.EraseCustomerWithResponse(ctx, other, "x")
					return r.StatusCode(), err
				},
				func() (int, error) {
					r, err := acme.CreateTenantWithResponse(ctx, adminclientNewTenant(other))
					return r.StatusCode(), err
				},
			} {
				if code, err := call(); err != nil || code != http.StatusForbidden {
					t.Fatalf("tenant %s: %v %d, want 403", other, err, code)
				}
			}
		}
		list, err := acme.ListTenantsWithResponse(ctx, nil)
		if err != nil || list.StatusCode() != http.StatusOK || len(list.JSON200.Items) != 1 || list.JSON200.Items[0].Id != "acme" {
			t.Fatalf("list: %v %s", err, list.Body)
		}
		if _, err := admin.ParseScope("Acme!"); err == nil {
			t.Fatal("a scope with a bad tenant id was accepted")
		}
	})
}

func TestOnlyAKeyOfEveryTenantLetsSettingsReachPrivateNetworks(t *testing.T) {
	env, root := start(t, "", "")
	a := env.Admin(t)
	acme := a.Client(t, a.Key(t, "acme"))
	internal := `{"webhooks": {"endpoints": [{"url": "http://169.254.169.254/latest", "secret": "0123456789abcdef", "allowPrivateNetwork": true}]}}`
	res, err := acme.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "acme", internal))
	if err != nil || res.StatusCode() != http.StatusForbidden || !strings.Contains(string(res.Body), "webhooks.endpoints[]") {
		t.Fatalf("a scoped key's private endpoint: %v %d %s", err, res.StatusCode(), res.Body)
	}
	create(t, root, "acme", `{}`)
	if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, internal)); r.StatusCode() != http.StatusForbidden {
		t.Fatalf("a scoped key's private endpoint on replace: %d %s", r.StatusCode(), r.Body)
	}
	// The operator allows it; the tenant's own key may then send it back as it is, not move it.
	if r, _ := root.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, internal)); r.StatusCode() != http.StatusOK {
		t.Fatalf("a key of every tenant: %d %s", r.StatusCode(), r.Body)
	}
	got, _ := acme.GetTenantWithResponse(ctx, "acme")
	if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, got.JSON200.Settings); r.StatusCode() != http.StatusOK {
		t.Fatalf("the same settings back: %d %s", r.StatusCode(), r.Body)
	}
	moved := got.JSON200.Settings
	(*moved.Webhooks.Endpoints)[0].Url = ptr("http://10.0.0.7/admin")
	(*moved.Webhooks.Endpoints)[0].Secret = nullable.NewNullableWithValue("0123456789abcdef")
	if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, moved); r.StatusCode() != http.StatusForbidden {
		t.Fatalf("moved to another private address: %d %s", r.StatusCode(), r.Body)
	}
}

// A key of one tenant cannot copy the operator's private endpoint: each
// copy was vouched for by the one stored, kept its secret and got every
// event posted to the internal host once more (found by an audit: 1,200
// copies made each sign-up 1,200 requests there). Nor can it list more
// endpoints than a tenant has.
func TestAScopedKeyCannotCopyTheOperatorsPrivateEndpoint(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, root := start(t, dbURL, "")
		a := env.Admin(t)
		acme := a.Client(t, a.Key(t, "acme"))
		create(t, root, "acme", `{"webhooks": {"endpoints": [{"url": "http://10.0.0.7/hook", "secret": "0123456789abcdef", "allowPrivateNetwork": true}]}}`)
		before, _ := acme.GetTenantWithResponse(ctx, "acme")
		unchanged := func(what string) {
			t.Helper()
			now, _ := acme.GetTenantWithResponse(ctx, "acme")
			if now.JSON200.Version != before.JSON200.Version || len(*now.JSON200.Settings.Webhooks.Endpoints) != 1 {
				t.Fatalf("%s: stored version %d with %d endpoints, want version %d with 1", what, now.JSON200.Version,
					len(*now.JSON200.Settings.Webhooks.Endpoints), before.JSON200.Version)
			}
		}

		copies := before.JSON200.Settings
		ep := (*copies.Webhooks.Endpoints)[0]
		copies.Webhooks.Endpoints = &[]adminclient.WebhookEndpoint{ep, ep}
		r, err := acme.ReplaceTenantWithResponse(ctx, "acme", nil, copies)
		if err != nil || r.StatusCode() != http.StatusForbidden || !strings.Contains(string(r.Body), "webhooks.endpoints[]") {
			t.Fatalf("two copies of the operator's private endpoint: %v %d %s, want 403 naming webhooks.endpoints[]", err, r.StatusCode(), r.Body)
		}
		unchanged("two copies")

		many := `{"webhooks": {"endpoints": [`
		for i := range 11 {
			if i > 0 {
				many += ", "
			}
			many += fmt.Sprintf(`{"url": "https://crm.acme.example/hook/%d", "secret": "0123456789abcdef"}`, i)
		}
		many += `]}}`
		r, err = acme.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, many))
		if err != nil || r.StatusCode() != http.StatusUnprocessableEntity || r.ApplicationproblemJSON422 == nil ||
			(*r.ApplicationproblemJSON422.Errors)["webhooks.endpoints"] == nil {
			t.Fatalf("eleven endpoints: %v %d %s, want 422 naming webhooks.endpoints", err, r.StatusCode(), r.Body)
		}
		unchanged("eleven endpoints")
	})
}

// A key of one tenant cannot let a provider reach private networks by
// spelling allowPrivateNetwork in another case, which encoding/json would
// have decoded into the setting past the check of its exact name (found by
// an audit: the service then called a loopback server for the tenant).
func TestAScopedKeyCannotReachPrivateNetworksWithAnotherSpelling(t *testing.T) {
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"subject": "internal-service"}`))
	}))
	t.Cleanup(internal.Close)

	env, _ := start(t, "", "")
	a := env.Admin(t)
	key := a.Key(t, "acme")
	for _, spelling := range []string{"AllowPrivateNetwork", "allowprivatenetwork", "ALLOWPRIVATENETWORK"} {
		t.Run(spelling, func(t *testing.T) {
			hits.Store(0)
			body := `{"id": "acme", "settings": {"providers": {"brand": {"type": "webhook", "url": "` + internal.URL + `/admin",
				"secret": "0123456789abcdef0123456789abcdef", "` + spelling + `": true}}}}`
			res, out := call(t, a.HTTP, http.MethodPost, a.Server.URL+"/admin/tenants", body, "Authorization", "Bearer "+key)
			if res.StatusCode == http.StatusCreated {
				// Show the consequence: the service now calls the loopback server.
				auth, _ := env.Client.AuthenticateCustomerWithBodyWithResponse(ctx, "acme",
					&client.AuthenticateCustomerParams{Provider: ptr("brand")}, "application/json", strings.NewReader(`{"login":"x"}`))
				_, _ = call(t, a.HTTP, http.MethodDelete, a.Server.URL+"/admin/tenants/acme", "", "Authorization", "Bearer "+key)
				t.Fatalf("a key of tenant acme set %q on a provider: %d %s; then authenticate answered %d and the loopback server was reached %d times",
					spelling, res.StatusCode, out, auth.StatusCode(), hits.Load())
			}
			if res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d %s, want 403 (or 422)", res.StatusCode, out)
			}
		})
	}
}

// A key of one tenant cannot name a file of the service's host (smtp.rootCAs,
// read when the tenant is built: its answer told which files exist, and a
// FIFO held the call) nor turn certificate checks off; a key of every tenant
// can, and the tenant's key may then send the same block back.
func TestOnlyAKeyOfEveryTenantNamesTheHostsFiles(t *testing.T) {
	env, root := start(t, "", "")
	a := env.Admin(t)
	acme := a.Client(t, a.Key(t, "acme"))
	pem := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pem, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	smtp := func(extra string) string {
		return `{"senders": {"email": {"type": "smtp", "smtp": {"host": "smtp.example.com", "from": "no-reply@example.com"` + extra + `}}}}`
	}
	for _, extra := range []string{`, "rootCAs": "` + pem + `"`, `, "rootCAs": "/nonexistent"`, `, "insecureSkipVerify": true`, `, "RootCAs": "/dev/zero"`} {
		res, err := acme.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "acme", smtp(extra)))
		if err != nil || res.StatusCode() != http.StatusForbidden || !strings.Contains(string(res.Body), "senders.email.smtp") ||
			strings.Contains(string(res.Body), "no such file") || strings.Contains(string(res.Body), "PEM") {
			t.Fatalf("a scoped key's %s: %v %d %s", extra, err, res.StatusCode(), res.Body)
		}
	}
	create(t, root, "acme", `{}`)
	if r, _ := root.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, smtp(`, "insecureSkipVerify": true`))); r.StatusCode() != http.StatusOK {
		t.Fatalf("a key of every tenant: %d %s", r.StatusCode(), r.Body)
	}
	got, _ := acme.GetTenantWithResponse(ctx, "acme")
	if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, got.JSON200.Settings); r.StatusCode() != http.StatusOK {
		t.Fatalf("the same settings back: %d %s", r.StatusCode(), r.Body)
	}
	if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, smtp(`, "insecureSkipVerify": true, "rootCAs": "`+pem+`"`))); r.StatusCode() != http.StatusForbidden {
		t.Fatalf("rootCAs added by the tenant's key: %d %s", r.StatusCode(), r.Body)
	}
}

// A key of one tenant cannot have its codes cross the internet in clear:
// tls: none needs allowPrivateNetwork, which only a key of every tenant
// sets (found by an audit: a brand's key switched its relay to plain text,
// and every code then travelled to smtp.brand.example in clear).
func TestAKeyOfSomeTenantsCannotSwitchItsSMTPToPlainText(t *testing.T) {
	env, root := start(t, "", "")
	a := env.Admin(t)
	acme := a.Client(t, a.Key(t, "acme"))
	smtp := func(host, extra string) string {
		return `{"senders": {"email": {"type": "smtp", "smtp": {"host": "` + host + `", "from": "no-reply@brand.example"` + extra + `}}}}`
	}
	refused := []struct {
		settings string
		status   int
	}{
		{smtp("smtp.brand.example", `, "tls": "none"`), http.StatusUnprocessableEntity},
		{smtp("smtp.brand.example", `, "tls": "none", "allowPrivateNetwork": true`), http.StatusForbidden},
	}
	for _, c := range refused {
		res, err := acme.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "acme", c.settings))
		if err != nil || res.StatusCode() != c.status || !strings.Contains(string(res.Body), "senders.email.smtp") {
			t.Fatalf("a scoped key's tenant %s: %v %d %s, want %d", c.settings, err, res.StatusCode(), res.Body, c.status)
		}
	}
	create(t, acme, "acme", smtp("smtp.brand.example", ""))
	for _, c := range refused {
		if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, c.settings)); r.StatusCode() != c.status {
			t.Fatalf("a scoped key's replace with %s: %d %s, want %d", c.settings, r.StatusCode(), r.Body, c.status)
		}
	}
	// The operator's relay inside its network: the tenant's key may send it
	// back as it is, not switch it to plain text.
	if r, _ := root.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, smtp("relay.internal", `, "allowPrivateNetwork": true`))); r.StatusCode() != http.StatusOK {
		t.Fatalf("a key of every tenant: %d %s", r.StatusCode(), r.Body)
	}
	got, _ := acme.GetTenantWithResponse(ctx, "acme")
	if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, got.JSON200.Settings); r.StatusCode() != http.StatusOK {
		t.Fatalf("the same settings back: %d %s", r.StatusCode(), r.Body)
	}
	plain := smtp("relay.internal", `, "tls": "none", "allowPrivateNetwork": true`)
	if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, plain)); r.StatusCode() != http.StatusForbidden {
		t.Fatalf("the operator's relay switched to plain text by the tenant's key: %d %s", r.StatusCode(), r.Body)
	}
	if r, _ := root.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, plain)); r.StatusCode() != http.StatusOK {
		t.Fatalf("a key of every tenant switches its private relay to plain text: %d %s", r.StatusCode(), r.Body)
	}
}

// A scoped key pages through its tenants: every one of them, once, and the
// last page has no cursor. Found by an audit: a page that filled up inside
// the catalog's last short batch was answered as the last, and the rest of
// the batch never listed.
func TestAScopedKeyListsEveryTenantOfItsScopeAcrossPages(t *testing.T) {
	env, root := start(t, "", "") // "demo" is there already, outside the scope
	for _, id := range []string{"t1", "t3", "t4", "t5"} {
		create(t, root, id, `{}`)
	}
	a := env.Admin(t)
	k := a.Client(t, a.Key(t, "t1,t3,t4,t5"))
	var seen []string
	var cursor *string
	for range 10 {
		res, err := k.ListTenantsWithResponse(ctx, &adminclient.ListTenantsParams{Limit: ptr(3), Cursor: cursor})
		if err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("list: %v %d %s", err, res.StatusCode(), res.Body)
		}
		for _, it := range res.JSON200.Items {
			seen = append(seen, it.Id)
		}
		if cursor = res.JSON200.NextCursor; cursor == nil {
			break
		}
	}
	if cursor != nil {
		t.Fatalf("still a cursor after 10 pages: %v", seen)
	}
	if want := []string{"t1", "t3", "t4", "t5"}; !slices.Equal(seen, want) {
		t.Fatalf("listed %v, want %v", seen, want)
	}
}

// A key of some tenants lists its own tenants by reading them alone: the
// work of its list is bounded by its scope, never by the catalog (a brand's
// key listed a page by reading and unsealing every tenant before its own,
// limit rows a statement), and another tenant's row that cannot be read
// (its secrets sealed for another tenant) does not fail its list. On
// PostgreSQL, every statement on tenants that a page sends reads one
// tenant of the scope.
func TestAScopedKeysListReadsOnlyItsTenants(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		rec := &storetest.Recorder{}
		env := apptest.StartConfig(t, apptest.Config(t, dbURL, ""), app.WithQueryTracer(rec), app.WithReconcile(time.Hour))
		a := env.Admin(t)
		root := a.Client(t, a.Key(t, "*"))
		for i := range 40 {
			create(t, root, fmt.Sprintf("t%02d", i), `{}`)
		}
		if _, err := openDB(t, dbURL).Exec(`UPDATE tenants SET secrets = (SELECT secrets FROM tenants WHERE id = 't11') WHERE id = 't10'`); err != nil {
			t.Fatal(err)
		}
		scope := []string{"gone", "t05", "t20", "t35"} // gone does not exist
		k := a.Client(t, a.Key(t, strings.Join(scope, ",")))
		var seen []string
		var cursor *string
		for range 10 {
			rec.Start()
			res, err := k.ListTenantsWithResponse(ctx, &adminclient.ListTenantsParams{Limit: ptr(1), Cursor: cursor})
			statements := rec.Stop()
			if err != nil || res.StatusCode() != http.StatusOK {
				t.Fatalf("list after %v: %v %d %s", seen, err, res.StatusCode(), res.Body)
			}
			reads := 0
			for _, st := range statements {
				if q := strings.Join(strings.Fields(st.SQL), " "); strings.Contains(q, `"tenants"`) && !strings.HasPrefix(q, "SELECT id, version") {
					reads++
					if !slices.ContainsFunc(st.Args, func(a any) bool { id, ok := a.(string); return ok && slices.Contains(scope, id) }) {
						t.Errorf("a page of %v read %q %v", scope, q, st.Args)
					}
				}
			}
			if reads > len(scope) {
				t.Errorf("a page of %v read tenants %d times", scope, reads)
			}
			for _, it := range res.JSON200.Items {
				seen = append(seen, it.Id)
			}
			if cursor = res.JSON200.NextCursor; cursor == nil {
				break
			}
		}
		if want := []string{"t05", "t20", "t35"}; !slices.Equal(seen, want) || cursor != nil {
			t.Fatalf("listed %v (cursor %v), want %v", seen, cursor, want)
		}
	})
}

// An address in another spelling (127.1, 2130706433) is what curl and C's
// resolver read as loopback: a key cannot slip one past the check that
// refuses it written as an address, with or without allowPrivateNetwork.
func TestAnAddressInAnotherSpellingIsRefused(t *testing.T) {
	env, root := start(t, "", "")
	a := env.Admin(t)
	acme := a.Client(t, a.Key(t, "acme"))
	for i, c := range []struct {
		key  string
		body string
	}{
		{"acme", `{"senders": {"email": {"type": "smtp", "smtp": {"host": "smtp.example.com", "from": "no-reply@example.com"}}},
			"webhooks": {"endpoints": [{"url": "https://2130706433/hook", "secret": "0123456789abcdef"}]}}`},
		{"*", `{"webhooks": {"endpoints": [{"url": "https://169.254.169.254./latest", "secret": "0123456789abcdef"}]}}`},
		{"*", `{"webhooks": {"endpoints": [{"url": "http://127.1:8080/hook", "secret": "0123456789abcdef", "allowPrivateNetwork": true}]}}`},
	} {
		cl, id := root, fmt.Sprintf("shop%d", i)
		if c.key == "acme" {
			cl, id = acme, "acme"
		}
		res, err := cl.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, id, c.body))
		if err != nil || res.StatusCode() < 400 || res.StatusCode() >= 500 || !strings.Contains(string(res.Body), "ends in a number") {
			t.Errorf("%s: %v %d %s", c.body, err, res.StatusCode(), res.Body)
		}
	}
}

// A tenant's own key cannot have its shoppers' one-time codes written to the
// service's log, where whoever reads the log signs in as any of them: a log
// sender, named or by leaving senders out (their default), is a key of every
// tenant's to set, as a private network is, and the tenant's key may then
// send it back as it is. A tenant given one at runtime is warned about in
// the log as serve warns at start-up about the file's.
func TestOnlyAKeyOfEveryTenantHasCodesWrittenToTheLog(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, root := start(t, dbURL, "")
		a := env.Admin(t)
		acme := a.Client(t, a.Key(t, "acme"))
		const smtp = `{"type": "smtp", "smtp": {"host": "smtp.example.com", "from": "no-reply@example.com"}}`
		logged := []string{`{}`, `{"senders": {}}`, `{"senders": {"email": {"type": "log"}}}`,
			`{"senders": {"email": ` + smtp + `, "sms": {"type": "log"}}}`}
		for _, js := range logged {
			res, err := acme.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "acme", js))
			if err != nil || res.StatusCode() != http.StatusForbidden || !strings.Contains(string(res.Body), "senders.") {
				t.Fatalf("a scoped key's tenant %s: %v %d %s, want 403", js, err, res.StatusCode(), res.Body)
			}
		}
		create(t, acme, "acme", `{"senders": {"email": `+smtp+`}}`)
		for _, js := range logged {
			if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, js)); r.StatusCode() != http.StatusForbidden {
				t.Fatalf("a scoped key's replace with %s: %d %s, want 403", js, r.StatusCode(), r.Body)
			}
		}
		if strings.Contains(env.Logs.String(), sender.LogWarning) {
			t.Fatalf("warned before any tenant wrote its codes to the log:\n%s", env.Logs.String())
		}
		// The operator's choice, warned about; the tenant's key may send it back as it is.
		if r, _ := root.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, `{"senders": {"email": {"type": "log"}}}`)); r.StatusCode() != http.StatusOK {
			t.Fatalf("a key of every tenant: %d %s", r.StatusCode(), r.Body)
		}
		warned := false
		for _, l := range env.Logs.Lines() {
			warned = warned || l["msg"] == sender.LogWarning && l["tenant"] == "acme" && l["channel"] == "email" && l["level"] == "WARN"
		}
		if !warned {
			t.Fatalf("no warning that acme's codes go to the log:\n%s", env.Logs.String())
		}
		got, _ := acme.GetTenantWithResponse(ctx, "acme")
		if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, got.JSON200.Settings); r.StatusCode() != http.StatusOK {
			t.Fatalf("the same settings back: %d %s", r.StatusCode(), r.Body)
		}
		if r, _ := acme.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, `{}`)); r.StatusCode() != http.StatusForbidden {
			t.Fatalf("the sms channel's codes added to the log by the tenant's key: %d %s", r.StatusCode(), r.Body)
		}
	})
}

// A scope may name an id before its tenant exists, or outlive the tenant it
// was made for: creating a deleted tenant again serves its shoppers again
// (their data, their tokens), which only a key of every tenant decides.
func TestAScopedKeyCannotGiveADeletedTenantsShoppersBack(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, root := start(t, dbURL, "")
		create(t, root, "acme", `{}`)
		tok := env.SignIn(t, "acme", "ann@example.com")
		a := env.Admin(t)
		scoped := a.Client(t, a.Key(t, "acme,fresh"))
		// Settings a key of some tenants may write (no log sender).
		mailed := `{"senders": {"email": {"type": "smtp", "smtp": {"host": "smtp.example.com", "from": "no-reply@example.com"}}}}`

		if r, err := scoped.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "acme", mailed)); err != nil || r.StatusCode() != http.StatusConflict {
			t.Fatalf("a tenant that serves: %v %d %s, want 409", err, r.StatusCode(), r.Body)
		}
		if r, _ := root.DeleteTenantWithResponse(ctx, "acme", nil); r.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.StatusCode(), r.Body)
		}
		r, err := scoped.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "acme", mailed))
		if err != nil || r.StatusCode() != http.StatusForbidden || r.ApplicationproblemJSON403 == nil ||
			!strings.Contains(string(r.Body), "was deleted and its customers are still stored") {
			t.Fatalf("the deleted tenant again: %v %d %s, want 403", err, r.StatusCode(), r.Body)
		}
		if me, _ := env.Client.GetCustomerWithResponse(ctx, "acme", apptest.Bearer(tok)); me.StatusCode() == http.StatusOK {
			t.Fatalf("the deleted tenant's shopper still signed in: %s", me.Body)
		}
		// An id that left nobody behind is the key's to create.
		if r, err := scoped.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "fresh", mailed)); err != nil || r.StatusCode() != http.StatusCreated {
			t.Fatalf("a new id: %v %d %s", err, r.StatusCode(), r.Body)
		}
		// The operator's key gives the shoppers back, as README says.
		create(t, root, "acme", `{}`)
		if me, err := env.Client.GetCustomerWithResponse(ctx, "acme", apptest.Bearer(tok)); err != nil || me.StatusCode() != http.StatusOK {
			t.Fatalf("restored by a key of every tenant: %v %d %s", err, me.StatusCode(), me.Body)
		}
	})
}
