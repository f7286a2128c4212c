package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver for schema set-up
	"gorm.io/gorm"

	"github.com/customerd/customerd/store"
)

// postgresEnv points the bench (like the tests) at a PostgreSQL server.
const postgresEnv = "CUSTOMERD_TEST_POSTGRES_URL"

// database is one database kind the bench runs on: a fresh database for
// customerd and another for the floor servers, both removed by cleanup.
type database struct {
	name         string // sqlite or postgres
	customerdURL string
	floorURL     string
	cleanup      func()
	// another makes one more empty database of the kind, removed by cleanup.
	another func() (string, error)
	// otherBackends lists the PostgreSQL backends serving others than the
	// bench (tests of other work on the same server); nil on SQLite.
	otherBackends func() map[int]bool
}

// pgAppName marks the bench's PostgreSQL connections (customerd's and the floors').
const pgAppName = "loadbench"

// newSQLite makes two database files in dir.
func newSQLite(dir string) (*database, error) {
	d := filepath.Join(dir, "sqlite")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	return &database{
		name:         "sqlite",
		customerdURL: "sqlite://" + filepath.Join(d, "customerd.db"),
		floorURL:     "sqlite://" + filepath.Join(d, "floor.db"),
		cleanup:      func() { _ = os.RemoveAll(d) },
		another:      func() (string, error) { return "sqlite://" + filepath.Join(d, "scale.db"), nil },
	}, nil
}

// newPostgres makes two private schemas on the server of base, as
// storetest.PostgresURL does, and drops them in cleanup.
func newPostgres(ctx context.Context, base string) (*database, error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", postgresEnv, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("parse %s: %w", postgresEnv, err)
	}
	var schemas []string
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, s := range schemas {
			_, _ = admin.ExecContext(dctx, "DROP SCHEMA "+s+" CASCADE")
		}
		_ = admin.Close()
	}
	mk := func() (string, error) {
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "bench_" + hex.EncodeToString(b[:])
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(cctx, "CREATE SCHEMA "+schema); err != nil {
			return "", fmt.Errorf("create schema: %w", err)
		}
		schemas = append(schemas, schema)
		v := *u
		q := v.Query()
		q.Set("search_path", schema)
		q.Set("application_name", pgAppName)
		v.RawQuery = q.Encode()
		return v.String(), nil
	}
	cURL, err := mk()
	if err != nil {
		drop()
		return nil, err
	}
	fURL, err := mk()
	if err != nil {
		drop()
		return nil, err
	}
	others := func() map[int]bool {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		rows, err := admin.QueryContext(qctx, `SELECT pid FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND coalesce(application_name, '') <> $1 AND pid <> pg_backend_pid()`, pgAppName)
		if err != nil {
			return nil
		}
		defer rows.Close()
		m := map[int]bool{}
		for rows.Next() {
			var pid int
			if rows.Scan(&pid) == nil {
				m[pid] = true
			}
		}
		return m
	}
	return &database{name: "postgres", customerdURL: cURL, floorURL: fURL, cleanup: drop, another: mk, otherBackends: others}, nil
}

// floorDB is a database opened the way store.Open opens customerd's: on
// PostgreSQL one pool for everything; on SQLite one writer connection
// (WAL, busy_timeout, _txlock=immediate) and a pool of query-only readers.
type floorDB struct {
	w, r     *gorm.DB
	postgres bool
	close    func() error
}

// openFloorDB opens a floor's database exactly as customerd opens its own.
func openFloorDB(rawURL string) (*floorDB, error) {
	p, err := store.Connect(rawURL, store.Options{})
	if err != nil {
		return nil, err
	}
	return &floorDB{w: p.W, r: p.R, postgres: p.Postgres, close: p.Close}, nil
}
