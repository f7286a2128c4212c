package admin_test

import (
	"database/sql"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store/storetest"
)

// eventually polls ok until it holds, for at most limit, and returns how long it took.
func eventually(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestAChangeReachesTheOtherReplicaByNotification(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip("replicas share a PostgreSQL database: set " + storetest.PostgresEnv)
	}
	dbURL := storetest.PostgresURL(t)
	a, admin := start(t, dbURL, "")
	// The other replica never reconciles during the test: only the notification can tell it.
	b := apptest.StartConfig(t, apptest.Config(t, dbURL, ""), app.WithReconcile(time.Hour))

	create(t, admin, "brand", `{}`)
	// Either the notification or the reconcile made once the replica listens tells it.
	took := eventually(t, 10*time.Second, "the other replica serves the new tenant", func() bool {
		r, err := b.Client.GetJwksWithResponse(ctx, "brand")
		return err == nil && r.StatusCode() == http.StatusOK
	})
	t.Logf("a new tenant reached the other replica in %s", took)
	b.SignIn(t, "brand", "ann@example.com") // the tenant works there too

	// The replica listens now: only the notification can tell it of this change.
	if res, err := admin.ReplaceTenantWithResponse(ctx, "brand", nil, settings(t, `{"requiredFields": ["lastName"]}`)); err != nil || res.StatusCode() != http.StatusOK {
		t.Fatalf("replace: %v %s", err, res.Body)
	}
	took = eventually(t, 10*time.Second, "the other replica applies the change", func() bool {
		r, err := b.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("bob@example.com")})
		return err == nil && r.StatusCode() == http.StatusPreconditionFailed
	})
	t.Logf("a change reached the other replica in %s", took)

	if res, err := admin.DeleteTenantWithResponse(ctx, "brand", nil); err != nil || res.StatusCode() != http.StatusNoContent {
		t.Fatalf("delete: %v %s", err, res.Body)
	}
	eventually(t, 10*time.Second, "the other replica stops serving the deleted tenant", func() bool {
		r, err := b.Client.GetJwksWithResponse(ctx, "brand")
		return err == nil && r.StatusCode() == http.StatusNotFound
	})
	if r, _ := a.Client.GetJwksWithResponse(ctx, "brand"); r.StatusCode() != http.StatusNotFound {
		t.Fatalf("the replica that deleted it still serves it: %d", r.StatusCode())
	}
}

func TestAMissedNotificationHealsAtTheNextReconcile(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		_, admin := start(t, dbURL, "")
		b := apptest.StartConfig(t, apptest.Config(t, dbURL, ""), app.WithReconcile(100*time.Millisecond))
		createSeen(t, admin, b, "brand")
		// A change written behind every replica's back: no notification, as when one is lost.
		if _, err := openDB(t, dbURL).Exec(`UPDATE tenants SET settings = replace(settings, '"requiredFields":[]', '"requiredFields":["lastName"]'),
			version = version + 1 WHERE id = 'brand'`); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the change, at the next reconcile", func() bool {
			r, err := b.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("bob@example.com")})
			return err == nil && r.StatusCode() == http.StatusPreconditionFailed
		})
	})
}

// createSeen creates tenant id through admin and waits until replica b serves it.
func createSeen(t *testing.T, admin *adminclient.ClientWithResponses, b *apptest.Env, id string) {
	t.Helper()
	create(t, admin, id, `{}`)
	eventually(t, 10*time.Second, "the new tenant", func() bool {
		r, err := b.Client.GetJwksWithResponse(ctx, id)
		return err == nil && r.StatusCode() == http.StatusOK
	})
}

// Caches on the way to a customer's data: two replicas on one database,
// each with its verified-token cache and its live tenants.

// warm makes the replica cache tok (three GETs, each 200).
func warm(t *testing.T, env *apptest.Env, tenant, tok string) string {
	t.Helper()
	var id string
	for range 3 {
		r, err := env.Client.GetCustomerWithResponse(ctx, tenant, apptest.Bearer(tok))
		if err != nil || r.StatusCode() != http.StatusOK {
			t.Fatalf("GET with a fresh token: %v %d %s", err, r.StatusCode(), r.Body)
		}
		id = r.JSON200.Id.String()
	}
	return id
}

// refusedEverywhere: GET, POST and DELETE /customer with tok on env answer 401 at once.
func refusedEverywhere(t *testing.T, env *apptest.Env, tenant, tok, what string) {
	t.Helper()
	if r, err := env.Client.GetCustomerWithResponse(ctx, tenant, apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusUnauthorized {
		t.Errorf("%s: GET on the other replica: %v %d %s", what, err, r.StatusCode(), r.Body)
	}
	if r, err := env.Client.UpsertCustomerWithResponse(ctx, tenant, nil, client.UpsertCustomerJSONRequestBody{FirstName: ptr("Mallory")},
		apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusUnauthorized {
		t.Errorf("%s: POST on the other replica: %v %d %s", what, err, r.StatusCode(), r.Body)
	}
	if r, err := env.Client.DeleteCustomerWithResponse(ctx, tenant, apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusUnauthorized {
		t.Errorf("%s: DELETE on the other replica: %v %d %s", what, err, r.StatusCode(), r.Body)
	}
}

func TestRevocationAndErasureReachTheOtherReplicaAtOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		a, admin := start(t, dbURL, "")
		b := apptest.Start(t, dbURL, "")

		// Revocation on a: b's cached token is refused at once.
		tok := b.SignIn(t, "demo", "revoked@example.com")
		id := warm(t, b, "demo", tok)
		if r, err := admin.RevokeCustomerSessionsWithResponse(ctx, "demo", id); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %v %d", err, r.StatusCode())
		}
		refusedEverywhere(t, b, "demo", tok, "revoked")

		// Erasure by the admin API on a.
		tok = b.SignIn(t, "demo", "erased@example.com")
		id = warm(t, b, "demo", tok)
		if r, err := admin.EraseCustomerWithResponse(ctx, "demo", id); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("erase: %v %d", err, r.StatusCode())
		}
		refusedEverywhere(t, b, "demo", tok, "erased by admin")

		// Erasure by the shopper on a, with a token b cached.
		tok = b.SignIn(t, "demo", "self@example.com")
		warm(t, b, "demo", tok)
		if r, err := a.Client.DeleteCustomerWithResponse(ctx, "demo", apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("DELETE /customer on a: %v %d", err, r.StatusCode())
		}
		refusedEverywhere(t, b, "demo", tok, "erased by its owner")
	})
}

// A tenant deleted on a: b's cached token opens nothing there once b learns
// (at once by notification on PostgreSQL; at the reconcile on SQLite).
func TestADeletedTenantsTokenOnTheOtherReplica(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		_, admin := start(t, dbURL, "")
		b := apptest.StartConfig(t, apptest.Config(t, dbURL, ""), app.WithReconcile(100*time.Millisecond))
		createSeen(t, admin, b, "brand")
		tok := b.SignIn(t, "brand", "ann@example.com")
		warm(t, b, "brand", tok)
		if res, err := admin.DeleteTenantWithResponse(ctx, "brand", nil); err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %v %s", err, res.Body)
		}
		eventually(t, 10*time.Second, "b refuses the deleted tenant's token", func() bool {
			r, err := b.Client.GetCustomerWithResponse(ctx, "brand", apptest.Bearer(tok))
			return err == nil && r.StatusCode() == http.StatusNotFound
		})
	})
}

// A tenant deleted and created again with the same id starts again at
// version 1. A replica that did not see the two apart must still serve the
// new settings, not the deleted tenant's: on SQLite, both between two of its
// reconciles; on PostgreSQL, both while its listener reconnects (the
// connection killed), healed by the reconcile it makes once listening again.
func TestATenantCreatedAgainIsServedWithItsNewSettings(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		_, admin := start(t, dbURL, "")
		pg := strings.HasPrefix(dbURL, "postgres://")
		reconcile := time.Second // SQLite: its only way to learn
		if pg {
			reconcile = time.Hour // PostgreSQL: notifications and the reconcile after a reconnection only
		}
		b := apptest.StartConfig(t, apptest.Config(t, dbURL, ""), app.WithReconcile(reconcile))
		createSeen(t, admin, b, "brand")
		// b builds it (version 1: nothing required).
		if r, err := b.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("ann@example.com")}); err != nil || r.StatusCode() != http.StatusOK {
			t.Fatalf("create on b: %v %d %s", err, r.StatusCode(), r.Body)
		}
		if pg {
			db, err := sql.Open("pgx", dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = current_database() AND query ILIKE 'listen%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil || n == 0 {
				t.Fatalf("kill the listeners: %v (%d)", err, n)
			}
		}
		if res, err := admin.DeleteTenantWithResponse(ctx, "brand", nil); err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %v %s", err, res.Body)
		}
		create(t, admin, "brand", `{"requiredFields": ["lastName"]}`)
		eventually(t, 5*time.Second, "b serves the tenant created again with its own settings", func() bool {
			r, err := b.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("bob@example.com")})
			return err == nil && r.StatusCode() == http.StatusPreconditionFailed
		})
	})
}

// The same through the admin API: delete and create at once on a, b only
// listening (no reconcile during the test).
func TestATenantCreatedAgainThroughTheAdminAPIReachesTheOtherReplica(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip("replicas share a PostgreSQL database: set " + storetest.PostgresEnv)
	}
	dbURL := storetest.PostgresURL(t)
	_, admin := start(t, dbURL, "")
	b := apptest.StartConfig(t, apptest.Config(t, dbURL, ""), app.WithReconcile(time.Hour))
	for i := range 5 {
		email := func(s string) *string { return ptr(s + string(rune('a'+i)) + "@example.com") }
		create(t, admin, "brand", `{}`)
		eventually(t, 10*time.Second, "the new tenant", func() bool {
			r, err := b.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: email("ann")})
			return err == nil && r.StatusCode() == http.StatusOK
		})
		if res, err := admin.DeleteTenantWithResponse(ctx, "brand", nil); err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %v %s", err, res.Body)
		}
		create(t, admin, "brand", `{"requiredFields": ["lastName"]}`)
		eventually(t, 5*time.Second, "b serves the tenant created again with its own settings", func() bool {
			r, err := b.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: email("bob")})
			return err == nil && r.StatusCode() == http.StatusPreconditionFailed
		})
		if res, err := admin.DeleteTenantWithResponse(ctx, "brand", nil); err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %v %s", err, res.Body)
		}
	}
}
