package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/admin"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/privacy"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
	"github.com/customerd/customerd/tenant"
)

// hangUp is the database of an admin server whose writes wait, once done,
// until the caller has hung up: what the handler does next runs with a
// request context that is cancelled, as when an operator's curl times out
// or is interrupted right after the write committed.
type hangUp struct {
	admin.Store
	written chan struct{}
}

func (h *hangUp) wait(ctx context.Context) {
	close(h.written)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
}

func (h *hangUp) RevokeSessions(ctx context.Context, tenant, id string, at time.Time) error {
	err := h.Store.RevokeSessions(ctx, tenant, id, at)
	h.wait(ctx)
	return err
}

func (h *hangUp) EraseCustomer(ctx context.Context, e store.Erasure) error {
	err := h.Store.(privacy.Store).EraseCustomer(ctx, e)
	h.wait(ctx)
	return err
}

type oneTenant struct{}

func (oneTenant) Tenant(_ context.Context, id string) (*tenant.Tenant, error) {
	return &tenant.Tenant{ID: id}, nil
}

// Every admin write is in the audit log, even when its caller hung up once
// it was done: an erasure (or a revocation) that happened is recorded.
func TestAnAdminWriteIsAuditedWhenItsCallerHangsUp(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		a := env.Admin(t)
		key := a.Key(t, "*")
		db := env.App.Store.(admin.Store)
		for _, action := range []string{"customer.revoke-sessions", "customer.erase"} {
			t.Run(action, func(t *testing.T) {
				tok := env.SignIn(t, "demo", strings.ReplaceAll(action, ".", "")+"@example.com")
				me, _ := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok))
				id := me.JSON200.Id.String()
				h := &hangUp{Store: db, written: make(chan struct{})}
				srvHandler, err := admin.New(admin.Options{Store: h, Catalog: env.App.Catalog, Tenants: oneTenant{},
					Changed: func(context.Context, string) error { return nil }, Privacy: privacy.New(hangUpPrivacy{h}, nil), Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(srvHandler)
				t.Cleanup(srv.Close)
				method, path := http.MethodPost, "/admin/tenants/demo/customers/"+id+"/revoke-sessions"
				if action == "customer.erase" {
					method, path = http.MethodDelete, "/admin/tenants/demo/customers/"+id
				}
				reqCtx, cancel := context.WithCancel(ctx)
				req, _ := http.NewRequestWithContext(reqCtx, method, srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				go func() { <-h.written; cancel() }()
				if res, err := http.DefaultClient.Do(req); err == nil {
					res.Body.Close()
				}
				time.Sleep(200 * time.Millisecond) // the handler finishes
				c, err := db.Customer(ctx, "demo", id)
				switch {
				case action == "customer.erase" && errors.Is(err, store.ErrNotFound):
					c = &store.Customer{} // erased: live customers only are read
				case err != nil:
					t.Fatal(err)
				case c.SessionsRevokedAt == nil:
					t.Fatal("the write did not happen")
				}
				entries, err := db.Audit(ctx, store.AuditQuery{Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.Action == action && e.Target == id {
						return
					}
				}
				t.Fatalf("%s of %s happened and the audit log has no entry for it", action, id)
			})
		}
	})
}

// hangUpPrivacy is the privacy store of h: its erasure waits for the hang-up.
type hangUpPrivacy struct{ h *hangUp }

func (p hangUpPrivacy) CustomerRecord(ctx context.Context, tenant, id string) (*store.Record, error) {
	return p.h.Store.(privacy.Store).CustomerRecord(ctx, tenant, id)
}

func (p hangUpPrivacy) EraseCustomer(ctx context.Context, e store.Erasure) error {
	return p.h.EraseCustomer(ctx, e)
}

// A customer's export tells nothing of others: a contact change it asked
// to an address verified on another account (withheld, under checkInPolicy
// full) shows as one to a free address would, its address as asked.
func TestAnExportDoesNotTellAContactChangeWasWithheld(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, root := start(t, dbURL, `
tenants:
  full: {checkInPolicy: full}
`)
		const taken = "known.customer@example.com"
		env.SignIn(t, "full", taken)
		export := func(changeTo string) adminclient.ExportedChallenge {
			t.Helper()
			env.Clock.Advance(61 * time.Second)
			tok := env.SignIn(t, "full", "prober."+strings.Split(changeTo, "@")[0]+"@example.com")
			me, _ := env.Client.GetCustomerWithResponse(ctx, "full", apptest.Bearer(tok))
			res, _ := call(t, env.HTTP, http.MethodPost, env.Server.URL+"/api/full/customer", `{"email":"`+changeTo+`"}`,
				"Authorization", "Bearer "+tok)
			if res.StatusCode != http.StatusAccepted {
				t.Fatalf("contact change to %s: %d", changeTo, res.StatusCode)
			}
			ex, err := root.ExportCustomerWithResponse(ctx, "full", me.JSON200.Id.String())
			if err != nil || ex.StatusCode() != http.StatusOK {
				t.Fatalf("export: %v %s", err, ex.Body)
			}
			for _, ch := range ex.JSON200.Challenges {
				if ch.ConsumedAt == nil {
					return ch
				}
			}
			b, _ := json.Marshal(ex.JSON200.Challenges)
			t.Fatalf("no live challenge in the export: %s", b)
			return adminclient.ExportedChallenge{}
		}
		free := export("nobody.here@example.com")
		if free.Destination != "nobody.here@example.com" {
			t.Fatalf("a free address's change: destination %q", free.Destination)
		}
		if got := export(taken); got.Destination != taken {
			t.Fatalf("the export of a contact change to another account's verified address shows destination %q (a free one's: %q): it tells the customer who has an account",
				got.Destination, free.Destination)
		}
	})
}

// serve applies the configuration file's tenants at every start, as
// `customerd tenants apply` does: a change it makes (here, undoing an admin
// API change to where a tenant's webhooks go) is in the audit log as the
// command's is.
func TestATenantChangeMadeByServeIsAudited(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		if dbURL == "" {
			dbURL = storetest.SQLiteURL(t)
		}
		yaml := `
tenants:
  acme:
    webhooks:
      endpoints: [{url: "https://crm.acme.example/h", secret: "acme-webhook-secret-0123"}]
`
		first := apptest.StartConfig(t, apptest.Config(t, dbURL, yaml))
		a := first.Admin(t)
		root := a.Client(t, a.Key(t, "*"))
		res, err := root.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t,
			`{"webhooks": {"endpoints": [{"url": "https://hooks.acme.example/new", "secret": "acme-new-secret-0123456"}]}}`))
		if err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("replace: %v %s", err, res.Body)
		}
		before, _ := root.ListAuditEntriesWithResponse(ctx, &adminclient.ListAuditEntriesParams{TenantId: ptr("acme")})

		// A restart (another replica starting) with the same file.
		second := apptest.StartConfig(t, apptest.Config(t, dbURL, yaml))
		got, err := second.App.Catalog.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if got.Version <= res.JSON200.Version {
			t.Fatalf("serve did not apply the file: version %d", got.Version)
		}
		after, _ := root.ListAuditEntriesWithResponse(ctx, &adminclient.ListAuditEntriesParams{TenantId: ptr("acme")})
		if len(after.JSON200.Items) == len(before.JSON200.Items) {
			t.Fatalf("serve replaced tenant acme (version %d -> %d, webhooks back to the file's) and the audit log says nothing:\n%s",
				res.JSON200.Version, got.Version, after.Body)
		}
	})
}
