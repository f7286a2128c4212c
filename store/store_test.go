package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/customerd/customerd/bench/procstat"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return storetest.Open(t, b.URL(t)) })
		})
	}
}

// BenchmarkCodeVerification is the store's part of a code verification that
// creates its account: one Verify spends the attempt, checks the code, uses
// the challenge up and creates the account with its event. On PostgreSQL it
// also reports the WAL each one writes (wal-B/op) and the share of its
// challenge updates that stayed on their page (hot-%): figures that, unlike
// time, do not move with the machine's load, for judging a schema change.
func BenchmarkCodeVerification(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			url := be.URL(b)
			s := storetest.Open(b, url)
			ctx := context.Background()
			now := time.Now().UTC()
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = uuid.NewString()
				c := &store.Challenge{ID: ids[i], TenantID: "acme", Channel: "email", Destination: fmt.Sprintf("b%d@example.com", i),
					CodeHash: "h", MaxAttempts: 5, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
				if err := s.CreateChallenge(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			var wal walMeter
			if be.Name == "postgres" {
				wal = newWALMeter(b, url)
			}
			b.ResetTimer()
			for i := range b.N {
				email := store.Destination
				cu := &store.Customer{ID: uuid.NewString(), TenantID: "acme", Email: &email, EmailVerified: true,
					Profile: store.Profile{"isProspect": true, "country": "FR"}, CreatedAt: now, UpdatedAt: now}
				ev := &store.Event{ID: uuid.NewString(), TenantID: "acme", CustomerID: cu.ID, Type: "Customer:Upserted",
					Payload: `{"type":"Customer:Upserted","email":"\u0000destination\u0000"}`, CreatedAt: now, DeliveredAt: &now}
				v, err := s.Verify(ctx, store.Verification{Attempt: store.Attempt{Tenant: "acme", ID: ids[i], Now: now, CounterPrefix: "fail:",
					Day: now.Format(time.DateOnly), Limit: 100}, CodeHash: "h",
					First: map[string]*store.NewAccount{"email": {Customer: cu, Events: []*store.Event{ev}}}})
				if err != nil || v.Created == nil {
					b.Fatal(v, err)
				}
			}
			b.StopTimer()
			wal.report(b)
		})
	}
}

// walMeter reads the WAL position and the challenges table's update counts
// of a PostgreSQL schema around a benchmark's loop; its zero value reports
// nothing (SQLite).
type walMeter struct {
	db    *sql.DB
	start string
	// cpu is the CPU time of this machine's postgres processes at the
	// start (none when the server runs elsewhere).
	cpu procstat.Sample
}

func newWALMeter(b *testing.B, url string) walMeter {
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	m := walMeter{db: db}
	if err := db.QueryRow("SELECT pg_current_wal_lsn()::text").Scan(&m.start); err != nil {
		b.Fatal(err)
	}
	m.cpu = procstat.Read(procstat.Postgres())
	return m
}

func (m walMeter) report(b *testing.B) {
	if m.db == nil {
		return
	}
	var bytes float64
	if err := m.db.QueryRow("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8", m.start).Scan(&bytes); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(bytes/float64(b.N), "wal-B/op")
	if len(m.cpu) > 0 {
		// The CPU time of the processes named postgres on this machine: the
		// server's own cost of the loop, whichever connection served it.
		ticks := procstat.Read(procstat.Postgres()).Since(m.cpu)
		b.ReportMetric(float64(ticks)*1e6/procstat.TicksPerSecond/float64(b.N), "pg-cpu-µs/op")
	}
	// The statistics reach the view within a second of the last statement.
	var hot, updated float64
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		err := m.db.QueryRow(`SELECT n_tup_hot_upd::float8, n_tup_upd::float8 FROM pg_stat_user_tables
			WHERE relname = 'challenges' AND schemaname = current_schema()`).Scan(&hot, &updated)
		if err != nil {
			b.Fatal(err)
		}
		if updated >= float64(b.N) {
			break
		}
	}
	if updated > 0 {
		b.ReportMetric(100*hot/updated, "hot-%")
	}
}

// A seeded database reads back through the store as if the service had
// written it.
func TestSeed(t *testing.T) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			url := be.URL(t)
			s := storetest.Open(t, url)
			ctx := context.Background()
			seeding := storetest.Seeding{Customers: 2000, Tenants: []string{"t1", "t2", "t3"}, Provider: "google", Now: time.Now()}
			if err := storetest.Seed(ctx, url, seeding); err != nil {
				t.Fatal(err)
			}
			c := seeding.Customer(1234)
			got, err := s.Customer(ctx, c.Tenant, c.ID)
			if err != nil || *got.Email != c.Email || !got.EmailVerified || got.Profile["city"] != "Paris" || got.Version != 1 {
				t.Fatalf("customer: %+v %v", got, err)
			}
			id, err := s.Identity(ctx, c.Tenant, "google", c.Subject)
			if err != nil || id.Account == nil || id.Account.ID != c.ID {
				t.Fatalf("identity: %+v %v", id, err)
			}
			if _, err := s.PeekChallenge(ctx, c.Tenant, c.Email, "contact", time.Now()); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a seeded challenge is live: %v", err)
			}
			if wait, err := s.Throttle(ctx, c.Tenant, "send:"+c.Email, time.Now(), time.Minute); wait != 0 || err != nil {
				t.Fatalf("a seeded throttle holds: %v %v", wait, err)
			}
			evs, err := s.Events(ctx, store.EventQuery{Tenant: c.Tenant, Limit: 1000})
			if err != nil || len(evs) != 667 || evs[0].DeliveredAt == nil || !json.Valid([]byte(evs[0].Payload)) {
				t.Fatalf("events: %d %v", len(evs), err)
			}
			if claimed, err := s.ClaimEvents(ctx, time.Now(), time.Minute, 10); err != nil || len(claimed) != 0 {
				t.Fatalf("a delivered event is due: %v %v", claimed, err)
			}
			if n, err := storetest.Size(ctx, url); err != nil || n < 1<<20 {
				t.Fatalf("size %d %v", n, err)
			}
		})
	}
}

// A tenant change is heard only by the replicas of its own schema: two
// deployments (or two test runs) that share a PostgreSQL database in schemas
// of their own share its notification channels too.
func TestTenantChangesAreHeardOnlyInTheirSchema(t *testing.T) {
	type tenants interface {
		CreateTenant(context.Context, *store.TenantRow) error
		WatchTenants(ctx context.Context, listening func(), changed func(id string)) error
	}
	a := storetest.Open(t, storetest.PostgresURL(t)).(tenants)
	b := storetest.Open(t, storetest.PostgresURL(t)).(tenants)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening, heard := make(chan struct{}), make(chan string, 4)
	go func() {
		_ = a.WatchTenants(ctx, func() { close(listening) }, func(id string) { heard <- id })
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch never listened")
	}
	now := time.Now()
	if err := b.CreateTenant(ctx, &store.TenantRow{ID: "elsewhere", Settings: "{}", Secrets: []byte{}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTenant(ctx, &store.TenantRow{ID: "here", Settings: "{}", Secrets: []byte{}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: the first one heard is this
	// schema's, and nothing came before it.
	select {
	case id := <-heard:
		if id != "here" {
			t.Fatalf("heard %q first, want here (the other schema's change was heard)", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("this schema's change was not heard")
	}
}

// The pool's size is the configured one, or the database's default.
func TestPoolSizes(t *testing.T) {
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			url := be.URL(t)
			def := store.DefaultSQLiteReaders
			if be.Name == "postgres" {
				def = store.DefaultPostgresConns
			}
			for _, c := range []struct{ set, want int }{{0, def}, {5, 5}} {
				p, err := store.Connect(url, store.Options{MaxOpenConns: c.set})
				if err != nil {
					t.Fatal(err)
				}
				r, _ := p.R.DB()
				if got := r.Stats().MaxOpenConnections; got != c.want {
					t.Errorf("MaxOpenConns %d: a pool of %d, want %d", c.set, got, c.want)
				}
				_ = p.Close()
			}
		})
	}
}

// hangUp cancels the request's context as soon as PostgreSQL has judged a
// code: a client that hangs up at that moment.
type hangUp struct {
	cancel  context.CancelFunc
	judging bool
}

func (h *hangUp) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	h.judging = strings.Contains(data.SQL, "UPDATE challenges c SET attempts")
	return ctx
}

func (h *hangUp) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {
	if h.judging {
		h.cancel()
	}
}

// A wrong code is counted against its destination even when the caller
// hangs up the moment it is judged: the charge is a second statement on
// PostgreSQL, which the caller's cancellation does not stop.
func TestAWrongCodeIsChargedWhenTheCallerHangsUp(t *testing.T) {
	url := storetest.PostgresURL(t)
	storetest.Open(t, url) // migrated
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := store.Open(ctx, url, store.Options{QueryTracer: &hangUp{cancel: cancel}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	c := &store.Challenge{ID: uuid.NewString(), TenantID: "acme", Channel: "email", Destination: "jane@example.com",
		CodeHash: "h", MaxAttempts: 5, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := s.CreateChallenge(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	day := now.Format(time.DateOnly)
	v, err := s.Verify(ctx, store.Verification{Attempt: store.Attempt{Tenant: "acme", ID: c.ID, Now: now, CounterPrefix: "fail:",
		Day: day, Limit: 10}, CodeHash: "wrong"})
	if err != nil || v.Right || v.Counted != 1 {
		t.Fatalf("verdict %+v, %v", v, err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller never hung up: the test tests nothing")
	}
	if n, err := s.Counted(context.Background(), "acme", "fail:jane@example.com", day); n != 1 || err != nil {
		t.Fatalf("counted %d (%v), want the failure counted", n, err)
	}
}

func TestOpeningWithoutMigratingWritesNothing(t *testing.T) {
	ctx := context.Background()
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		if _, err := store.Open(ctx, dbURL, store.Options{NoMigrate: true}); !errors.Is(err, store.ErrSchemaBehind) {
			t.Fatalf("a database never migrated, opened without migrating: %v, want ErrSchemaBehind", err)
		}
		if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("opening without migrating made the SQLite file: %v", err)
			}
		} else {
			db, err := sql.Open("pgx", dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var tables int
			var names string
			_ = db.QueryRowContext(ctx, "SELECT coalesce(string_agg(tablename, ','), '') FROM pg_tables WHERE schemaname = current_schema()").Scan(&names)
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&tables); err != nil || tables != 0 {
				t.Log(names)
				t.Fatalf("opening without migrating made %d tables (%v)", tables, err)
			}
		}
		storetest.Open(t, dbURL) // migrates
		s, err := store.Open(ctx, dbURL, store.Options{NoMigrate: true})
		if err != nil {
			t.Fatalf("a migrated database, opened without migrating: %v", err)
		}
		_ = s.Close()
	})
}
