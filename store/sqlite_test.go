package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

func TestSQLitePragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s, err := Open(context.Background(), "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.(*db)
	for _, pool := range []struct {
		name string
		db   func() (*sql.DB, error)
	}{{"writer", d.w.DB}, {"reader", d.r.DB}} {
		sqlDB, _ := pool.db()
		var mode string
		var timeout, fk int
		if err := sqlDB.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s journal_mode %q %v, want wal", pool.name, mode, err)
		}
		if err := sqlDB.QueryRow("PRAGMA busy_timeout").Scan(&timeout); err != nil || timeout < 5000 {
			t.Errorf("%s busy_timeout %d %v, want >= 5000", pool.name, timeout, err)
		}
		if err := sqlDB.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s foreign_keys %d %v, want 1", pool.name, fk, err)
		}
	}
	wDB, _ := d.w.DB()
	if n := wDB.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool has %d connections, want 1", n)
	}

	// A write transaction takes the write lock at BEGIN (immediate): while it is
	// open, another connection cannot begin one, even before the first writes.
	tx, err := wDB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec("BEGIN IMMEDIATE"); err == nil {
		t.Fatal("a second writer began while the first transaction was open: _txlock=immediate is not in effect")
	}
}
