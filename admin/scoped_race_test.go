package admin_test

import (
	"context"
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

// A key of some tenants that sends back a private block as stored, with
// the If-Match of the next version, cannot restore it after a key of every
// tenant removed it between the admin API's check and the write: the write
// is refused (412), the block stays removed.
func TestAScopedKeyCannotRestoreAPrivateBlockRemovedMeanwhile(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		db := env.App.Store.(interface {
			catalog.Store
			admin.Store
		})
		m := &meanwhile{Store: db}
		cat, err := catalog.New(m, make([]byte, 32), func(string, *config.Tenant) error { return nil })
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
		const secret = "0123456789abcdef0123456789abcdef"
		doc := func(private bool) map[string]any {
			return map[string]any{"webhooks": map[string]any{"endpoints": []any{map[string]any{
				"url": "https://crm.acme.example/hook", "secret": secret, "allowPrivateNetwork": private}}}}
		}
		if _, err := cat.Create(ctx, "acme", doc(true)); err != nil { // set by a key of every tenant
			t.Fatal(err)
		}
		key := env.Admin(t).Key(t, "acme")
		c, err := adminclient.NewClientWithResponses(srv.URL, adminclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+key)
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.GetTenantWithResponse(ctx, "acme")
		if err != nil || got.StatusCode() != http.StatusOK {
			t.Fatalf("get: %v %d %s", err, got.StatusCode(), got.Body)
		}
		m.during = func() {
			if _, err := cat.Replace(ctx, "acme", doc(false), 0); err != nil { // the operator removes the private block
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
