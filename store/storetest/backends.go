// Package storetest is the conformance suite every Store backend passes, and
// the helpers that give each test its own SQLite file or PostgreSQL schema.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver for schema set-up

	"github.com/customerd/customerd/store"
)

// PostgresEnv names the variable that points the tests at a PostgreSQL server.
const PostgresEnv = "CUSTOMERD_TEST_POSTGRES_URL"

// Backend is a database the tests run on.
type Backend struct {
	Name string
	// URL returns a database URL of its own for one test, cleaned up after it.
	URL func(t testing.TB) string
}

// Backends is SQLite always, and PostgreSQL when CUSTOMERD_TEST_POSTGRES_URL is set.
func Backends() []Backend {
	b := []Backend{{Name: "sqlite", URL: SQLiteURL}}
	if os.Getenv(PostgresEnv) != "" {
		b = append(b, Backend{Name: "postgres", URL: PostgresURL})
	}
	return b
}

// SQLiteURL is a fresh database file in the test's temporary folder.
func SQLiteURL(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "customerd.db")
}

// PostgresURL creates a schema of its own on the server of
// CUSTOMERD_TEST_POSTGRES_URL and drops it after the test.
func PostgresURL(t testing.TB) string {
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " is not set")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens a migrated store on url and closes it after the test.
func Open(t testing.TB, url string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ForEach runs fn on every backend, each with a database of its own.
func ForEach(t *testing.T, fn func(t *testing.T, dbURL string)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.URL(t)) })
	}
}
