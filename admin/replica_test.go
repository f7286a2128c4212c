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
		create(t, admin, "brand", `{}`)
		eventually(t, 10*time.Second, "the new tenant", func() bool {
			r, err := b.Client.GetJwksWithResponse(ctx, "brand")
			return err == nil && r.StatusCode() == http.StatusOK
		})
		// A change written behind every replica's back: no notification, as when one is lost.
		raw := strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite://"), "postgres://")
		driver, dsn := "sqlite", raw
		if strings.HasPrefix(dbURL, "postgres://") {
			driver, dsn = "pgx", dbURL
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`UPDATE tenants SET settings = replace(settings, '"requiredFields":[]', '"requiredFields":["lastName"]'),
			version = version + 1 WHERE id = 'brand'`); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the change, at the next reconcile", func() bool {
			r, err := b.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("bob@example.com")})
			return err == nil && r.StatusCode() == http.StatusPreconditionFailed
		})
	})
}
