package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/admin"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

// meanwhile is the database of a catalog that runs during, once armed, the
// second read of a tenant (a replace's own read, after the admin API's)
// a change another key makes at that moment.
type meanwhile struct {
	catalog.Store
	mu      sync.Mutex
	armed   bool
	reads   int
	running bool
	during  func()
}

func (m *meanwhile) Tenant(ctx context.Context, id string) (*store.TenantRow, error) {
	m.mu.Lock()
	run := false
	if m.armed && !m.running {
		m.reads++
		if m.reads == 2 {
			m.running, run = true, true
		}
	}
	m.mu.Unlock()
	if run {
		m.during()
	}
	return m.Store.Tenant(ctx, id)
}

// startRacing serves the admin API over a catalog whose database runs, once
// armed, another key's change between a write's reads (meanwhile) or
// before a deletion (deleting), and returns those and a client holding a
// key of tenant acme.
func startRacing(t *testing.T, dbURL string) (*meanwhile, *deleting, *catalog.Catalog, *adminclient.ClientWithResponses) {
	env := apptest.Start(t, dbURL, "")
	db := env.App.Store.(interface {
		catalog.Store
		admin.Store
	})
	m := &meanwhile{Store: db}
	d := &deleting{meanwhile: m}
	cat, err := catalog.New(d, make([]byte, 32), func(string, *config.Tenant) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Options{Store: db, Catalog: cat, Changed: func(context.Context, string) error { return nil },
		Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	key := env.Admin(t).Key(t, "acme")
	c, err := adminclient.NewClientWithResponses(srv.URL, adminclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+key)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return m, d, cat, c
}

// A key of some tenants that sends back a private block as stored, with
// the If-Match of the next version, cannot restore it after a key of every
// tenant removed it between the admin API's check and the write: the write
// is refused (412), the block stays removed.
func TestAScopedKeyCannotRestoreAPrivateBlockRemovedMeanwhile(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		m, _, cat, c := startRacing(t, dbURL)
		const secret = "0123456789abcdef0123456789abcdef"
		doc := func(private bool) map[string]any {
			return map[string]any{"webhooks": map[string]any{"endpoints": []any{map[string]any{
				"url": "https://crm.acme.example/hook", "secret": secret, "allowPrivateNetwork": private}}}}
		}
		if _, err := cat.Create(ctx, "acme", doc(true)); err != nil { // set by a key of every tenant
			t.Fatal(err)
		}
		got, err := c.GetTenantWithResponse(ctx, "acme")
		if err != nil || got.StatusCode() != http.StatusOK {
			t.Fatalf("get: %v %d %s", err, got.StatusCode(), got.Body)
		}
		m.during = func() {
			if _, err := cat.Replace(ctx, "acme", doc(false), store.Stamp{}); err != nil { // the operator removes the private block
				t.Error(err)
			}
		}
		m.armed = true
		next := `"2"`
		res, err := c.ReplaceTenantWithResponse(ctx, "acme", &adminclient.ReplaceTenantParams{IfMatch: &next}, got.JSON200.Settings)
		if err != nil {
			t.Fatal(err)
		}
		now, err := cat.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		ep := now.Settings["webhooks"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)
		if res.StatusCode() == http.StatusOK || ep["allowPrivateNetwork"] == true {
			t.Fatalf("the scoped key's write: %d; allowPrivateNetwork now %v (version %d), want 412 and false", res.StatusCode(), ep["allowPrivateNetwork"], now.Version)
		}
	})
}

// deleting is the database of a catalog that runs during, once armed, just
// before a tenant's deletion, a change another key makes at that moment.
type deleting struct {
	*meanwhile
	armed  bool
	during func()
}

func (d *deleting) DeleteTenant(ctx context.Context, id string, at store.Stamp) error {
	d.mu.Lock()
	run := d.armed
	d.armed = false
	d.mu.Unlock()
	if run {
		d.during()
	}
	return d.meanwhile.DeleteTenant(ctx, id, at)
}

// A tenant deleted and created again starts at version 1 anew: a write
// judged on the deleted one (its tag, or a key of some tenants' write
// pinned to the version it was judged on) never goes over its replacement,
// even when the replacement is made between the admin API's read and the
// write, and a deletion with the deleted one's tag never deletes it. Found
// by an audit: the writes compared the version only, which the replacement
// has too (the ETag, which holds the creation, was compared to the first
// read only), so the replacement's settings were lost to a change prepared
// for the tenant it replaced, or the replacement deleted.
func TestAWriteJudgedOnADeletedTenantNeverReachesItsReplacement(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		m, d, cat, c := startRacing(t, dbURL)
		doc := func(language string) map[string]any { return map[string]any{"defaultLanguage": language} }
		again := func() { // the operator deletes the tenant and creates it again
			if err := cat.Delete(ctx, "acme", store.Stamp{}); err != nil {
				t.Error(err)
			}
			if _, err := cat.Create(ctx, "acme", doc("de")); err != nil {
				t.Error(err)
			}
		}
		language := func() any {
			now, err := cat.Get(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			return now.Settings["defaultLanguage"]
		}
		body, err := json.Marshal(doc("en")) // the brand's change, prepared on the first tenant
		if err != nil {
			t.Fatal(err)
		}
		for _, withTag := range []bool{true, false} {
			if err := cat.Delete(ctx, "acme", store.Stamp{}); err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			if _, err := cat.Create(ctx, "acme", doc("fr")); err != nil {
				t.Fatal(err)
			}
			got, err := c.GetTenantWithResponse(ctx, "acme")
			if err != nil || got.StatusCode() != http.StatusOK {
				t.Fatalf("get: %v %d %s", err, got.StatusCode(), got.Body)
			}
			params := &adminclient.ReplaceTenantParams{}
			if withTag {
				tag := got.HTTPResponse.Header.Get("ETag")
				params.IfMatch = &tag
			}
			m.mu.Lock()
			m.during, m.armed, m.reads, m.running = again, true, 0, false
			m.mu.Unlock()
			res, err := c.ReplaceTenantWithBodyWithResponse(ctx, "acme", params, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			m.mu.Lock()
			m.armed = false
			m.mu.Unlock()
			if lang := language(); res.StatusCode() != http.StatusPreconditionFailed || lang != "de" {
				t.Errorf("the change (with its tag: %v) over the tenant created again: %d %s; its language now %v, want 412 and de",
					withTag, res.StatusCode(), res.Body, lang)
			}
		}

		// A deletion with a tag of the tenant deleted and created again.
		again()
		got, err := c.GetTenantWithResponse(ctx, "acme")
		if err != nil || got.StatusCode() != http.StatusOK {
			t.Fatalf("get: %v %d %s", err, got.StatusCode(), got.Body)
		}
		tag := got.HTTPResponse.Header.Get("ETag")
		d.mu.Lock()
		d.during, d.armed = again, true
		d.mu.Unlock()
		res, err := c.DeleteTenantWithResponse(ctx, "acme", &adminclient.DeleteTenantParams{IfMatch: &tag})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode() != http.StatusPreconditionFailed {
			t.Errorf("a deletion with the deleted tenant's tag: %d %s, want 412", res.StatusCode(), res.Body)
		}
		if lang := language(); lang != "de" {
			t.Errorf("the tenant created again: language %v, want it kept", lang)
		}
	})
}
