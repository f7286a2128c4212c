package storetest

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/customerd/customerd/store"
)

// Seeding is a day of a service's life, written straight into a migrated
// database (not through the API, which would take hours for a million
// customers): Customers accounts spread over Tenants, each with a verified
// email, a Provider identity and a delivered event, and as many challenges
// of the past day (each used, now expired) with their resend throttles and,
// for one destination in ten, a day's failure counter.
type Seeding struct {
	Customers int
	Tenants   []string
	Provider  string
	// Now is the end of the day seeded; the seeded ids are made from it too.
	Now time.Time
}

// Seeded is the ith seeded customer.
type Seeded struct {
	ID, Tenant, Email, Subject string
}

// Customer is the ith customer Seed writes, for the requests that use it.
func (s Seeding) Customer(i int) Seeded {
	return Seeded{ID: seedID("customer", i, s.at(i)), Tenant: s.Tenants[i%len(s.Tenants)], Email: fmt.Sprintf("seed%d@example.com", i),
		Subject: fmt.Sprintf("9%020d", i)}
}

// seedNamespace makes the seeded ids the same from one run to the next.
var seedNamespace = uuid.MustParse("3b0c4b0e-6c5e-4c64-9a8e-5c1e4f0d6a11")

// seedID is a UUIDv7 of time at, as the service makes them, its random
// bits drawn from kind and i.
func seedID(kind string, i int, at time.Time) string {
	id := uuid.NewSHA1(seedNamespace, []byte(kind+"-"+fmt.Sprint(i)))
	ms := uint64(at.UnixMilli())
	for b := range 6 {
		id[b] = byte(ms >> (40 - 8*b))
	}
	id[6] = 0x70 | id[6]&0x0f // version 7; the variant bits stay SHA1's (RFC 4122)
	return id.String()
}

// at is the time of the ith customer's day: its sign-in some time in the
// past day, at least two minutes ago (its resend throttle is long over).
func (s Seeding) at(i int) time.Time {
	return s.end().Add(-2*time.Minute - time.Duration(uint64(i)*7919%86_000)*time.Second)
}

func (s Seeding) end() time.Time { return s.Now.UTC().Truncate(time.Microsecond) }

// seedProfile is a seeded account's profile, as the account rules make a French shopper's.
const seedProfile = `{"firstName":"Seed","lastName":"Customer","postcode":"75001","city":"Paris","region":"Île-de-France",` +
	`"country":"FR","language":"fr","isProspect":true,"consents_email":false,"consents_sms":false,"consents_post":false,"consents_emailReceipt":false}`

// seedRow is one row of a seeded table.
type seedTable struct {
	name    string
	columns []string
	row     func(i int) []any
	// every: a row for one customer in every (1: each).
	every int
}

func (s Seeding) tables() []seedTable {
	at, day := s.at, s.end().Format(time.DateOnly)
	customerColumns := strings.Split("id, tenant_id, email, phone, email_verified, phone_verified, profile, version, created_at, updated_at, deleted_at", ", ")
	return []seedTable{
		{name: "customers", columns: customerColumns, every: 1, row: func(i int) []any {
			c := s.Customer(i)
			return []any{c.ID, c.Tenant, c.Email, nil, true, false, seedProfile, 1, at(i), at(i), nil}
		}},
		{name: "identities", columns: []string{"tenant_id", "provider", "subject", "customer_id", "created_at"}, every: 1, row: func(i int) []any {
			c := s.Customer(i)
			return []any{c.Tenant, s.Provider, c.Subject, c.ID, at(i)}
		}},
		{name: "challenges", columns: strings.Split("id, tenant_id, channel, destination, customer_id, code_hash, attempts, max_attempts, "+
			"expires_at, consumed_at, created_at, pending, purpose", ", "), every: 1, row: func(i int) []any {
			c := s.Customer(i)
			h := uuid.NewSHA1(seedNamespace, []byte(c.ID))
			return []any{seedID("challenge", i, at(i)), c.Tenant, "email", c.Email, nil, hex.EncodeToString(h[:]) + hex.EncodeToString(h[:]),
				1, 5, at(i).Add(10 * time.Minute), at(i).Add(30 * time.Second), at(i), "", "signin"}
		}},
		{name: "throttles", columns: []string{"tenant_id", "key", "last_at"}, every: 1, row: func(i int) []any {
			c := s.Customer(i)
			return []any{c.Tenant, "send:" + c.Email, at(i)}
		}},
		{name: "counters", columns: []string{"tenant_id", "key", "day", "count"}, every: 10, row: func(i int) []any {
			c := s.Customer(i)
			return []any{c.Tenant, "fail:" + c.Email, day, 1 + i%3}
		}},
		{name: "events", columns: strings.Split("id, tenant_id, customer_id, type, payload, created_at, attempts, next_at, lease_until, "+
			"delivered_at, dead_at, last_error", ", "), every: 1, row: func(i int) []any {
			c := s.Customer(i)
			id := seedID("event", i, at(i))
			payload := fmt.Sprintf(`{"id":%q,"type":"Customer:Upserted","tenantId":%q,"customerId":%q,"occurredAt":%q,"data":%s}`,
				id, c.Tenant, c.ID, at(i).Format(time.RFC3339Nano), strings.Replace(seedProfile, "{", fmt.Sprintf(`{"id":%q,"email":%q,`, c.ID, c.Email), 1))
			delivered := at(i).Add(time.Second)
			return []any{id, c.Tenant, c.ID, "Customer:Upserted", payload, at(i), 1, at(i), nil, delivered, nil, ""}
		}},
	}
}

// Seed writes s into the migrated database at url.
func Seed(ctx context.Context, url string, s Seeding) error {
	if s.Customers <= 0 || len(s.Tenants) == 0 || s.Provider == "" || s.Now.IsZero() {
		return errors.New("seed: customers, tenants, a provider and the time, please")
	}
	if strings.HasPrefix(url, "sqlite://") {
		return seedSQLite(ctx, url, s)
	}
	return seedPostgres(ctx, url, s)
}

// seedPostgres copies every table in (COPY), then analyzes them as
// autovacuum would have by then.
func seedPostgres(ctx context.Context, url string, s Seeding) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, t := range s.tables() {
		n := s.Customers / t.every
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i >= n {
				return nil, nil
			}
			row := t.row(i * t.every)
			i++
			return row, nil
		})
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, src); err != nil {
			return fmt.Errorf("seed %s: %w", t.name, err)
		}
	}
	_, err = conn.Exec(ctx, "ANALYZE")
	return err
}

// seedSQLite inserts every table in transactions of its one writer.
func seedSQLite(ctx context.Context, url string, s Seeding) error {
	p, err := store.Connect(url, store.Options{})
	if err != nil {
		return err
	}
	defer p.Close()
	w, err := p.W.DB()
	if err != nil {
		return err
	}
	const perTx = 50_000
	for _, t := range s.tables() {
		n := s.Customers / t.every
		marks := make([]string, len(t.columns))
		for i := range marks {
			marks[i] = fmt.Sprintf("$%d", i+1)
		}
		q := "INSERT INTO " + t.name + " (" + strings.Join(t.columns, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
		for from := 0; from < n; from += perTx {
			err := func() error {
				tx, err := w.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer func() { _ = tx.Rollback() }()
				st, err := tx.PrepareContext(ctx, q)
				if err != nil {
					return err
				}
				for i := from; i < min(from+perTx, n); i++ {
					if _, err := st.ExecContext(ctx, t.row(i*t.every)...); err != nil {
						return err
					}
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				// Fold the WAL into the database file now: written as fast as
				// this, it would outgrow the database many times over.
				_, err = w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
				return err
			}()
			if err != nil {
				return fmt.Errorf("seed %s: %w", t.name, err)
			}
		}
	}
	return nil
}

// Size is the space the database at url takes: its files on SQLite, its
// schema's tables and indexes on PostgreSQL.
func Size(ctx context.Context, url string) (int64, error) {
	if path, ok := strings.CutPrefix(url, "sqlite://"); ok {
		var n int64
		for _, f := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				n += fi.Size()
			}
		}
		return n, nil
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
	return n, err
}
