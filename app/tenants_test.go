package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to hold a lock

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// Replicas started together with a new configuration file, then with a
// changed one, all start, and the tenants end as the file says: each applies
// the file after reading the tenants, so one's write lands between another's
// read and write. The writes wait on a lock of the tenants table until both
// replicas have read (PostgreSQL shows who waits), so they cross every time.
func TestReplicasStartingTogetherWithANewOrChangedFileAllStart(t *testing.T) {
	dbURL := storetest.PostgresURL(t) // skips without PostgreSQL
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The schema first: its migrations wait on the lock too.
	a, err := app.New(context.Background(), apptest.Config(t, dbURL, "tenants:\n  other: {}\n"), discard, app.WithoutConfigTenants())
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	file := func(country string) string {
		var b strings.Builder
		b.WriteString("tenants:\n")
		for i := range 30 {
			fmt.Fprintf(&b, "  t%02d: {defaultCountry: %s}\n", i, country)
		}
		return b.String()
	}
	for _, country := range []string{"BE", "NL"} { // new tenants, then changed ones
		ctx := context.Background()
		lock, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lock.ExecContext(ctx, "LOCK TABLE tenants IN EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		type started struct {
			app *app.App
			err error
		}
		done := make(chan started, 2)
		for range 2 {
			cfg := apptest.Config(t, dbURL, file(country))
			go func() {
				a, err := app.New(ctx, cfg, discard)
				done <- started{a, err}
			}()
		}
		// Both have read the tenants and wait to write the first.
		for waiting := 0; waiting < 2; time.Sleep(time.Millisecond) {
			if len(done) > 0 {
				t.Fatalf("%s: a replica started before the other wrote", country)
			}
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks
				WHERE NOT granted AND relation = 'tenants'::regclass`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
		}
		if err := lock.Rollback(); err != nil {
			t.Fatal(err)
		}
		var apps []*app.App
		for range 2 {
			s := <-done
			if s.err != nil {
				t.Errorf("%s: a replica did not start: %v", country, s.err)
				continue
			}
			apps = append(apps, s.app)
		}
		for _, a := range apps {
			defer a.Close()
		}
		if t.Failed() {
			t.FailNow()
		}
		for i := range 30 {
			id := fmt.Sprintf("t%02d", i)
			tc, _, err := apps[0].Catalog.Settings(ctx, id)
			if err != nil || tc.DefaultCountry != country {
				t.Fatalf("%s: tenant %s: %v %v", country, id, tc, err)
			}
		}
	}
}
