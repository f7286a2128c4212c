package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"gorm.io/gorm"
	moderncsqlite "modernc.org/sqlite"
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
	// No connection maps the file unless configured.
	wantMmapSize(t, d, 0)
	rDB, _ := d.r.DB()
	var cache int
	if err := rDB.QueryRow("PRAGMA cache_size").Scan(&cache); err != nil || cache != -readerCacheKiB {
		t.Errorf("reader cache_size %d %v, want -%d (KiB)", cache, err, readerCacheKiB)
	}
	wDB, _ := d.w.DB()
	if err := wDB.QueryRow("PRAGMA cache_size").Scan(&cache); err != nil || cache != -writerCacheKiB {
		t.Errorf("writer cache_size %d %v, want -%d (KiB)", cache, err, writerCacheKiB)
	}
	if n := wDB.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool has %d connections, want 1", n)
	}
	// The writer's savepoint sub-journals stay in memory (2: MEMORY).
	var temp int
	if err := wDB.QueryRow("PRAGMA temp_store").Scan(&temp); err != nil || temp != 2 {
		t.Errorf("writer temp_store %d %v, want 2 (memory)", temp, err)
	}

	// The WAL's file is cut back when it starts again.
	var limit int
	if err := wDB.QueryRow("PRAGMA journal_size_limit").Scan(&limit); err != nil || limit != walSizeLimit {
		t.Errorf("writer journal_size_limit %d %v, want %d", limit, err, walSizeLimit)
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

// With the file mapped, every connection maps it, and a reader sees each
// commit whether its pages are still in the WAL or were copied back into
// the mapped file by a checkpoint.
func TestSQLiteMappedReadsSeeEveryCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	const mapped = 64 << 20
	s, err := Open(ctx, "sqlite://"+path, Options{SQLiteMmap: mapped})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.(*db)
	wantMmapSize(t, d, mapped)
	wDB, _ := d.w.DB()
	at := time.Now().UTC().Truncate(time.Second)
	c := &Customer{ID: "c1", TenantID: "acme", Profile: Profile{"n": 0}, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		if n%2 == 0 { // the page copied back into the file
			if _, err := wDB.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Customer(ctx, "acme", "c1")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Profile["n"]) != fmt.Sprint(n-1) {
			t.Fatalf("read %d: profile %v, want n = %d", n, got.Profile, n-1)
		}
		got.Profile["n"] = n
		if err := s.UpdateCustomer(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
}

// wantMmapSize checks how much of the file the writer and a reader map.
func wantMmapSize(t *testing.T, d *db, want int64) {
	t.Helper()
	for name, pool := range map[string]*gorm.DB{"writer": d.w, "reader": d.r} {
		sqlDB, _ := pool.DB()
		var got int64
		if err := sqlDB.QueryRow("PRAGMA mmap_size").Scan(&got); err != nil || got != want {
			t.Errorf("%s mmap_size %d %v, want %d", name, got, err, want)
		}
	}
}

// Times are stored as the text they have always been stored as (SQLite
// compares them as text): 2006-01-02 15:04:05.999999999-07:00, in UTC.
func TestSQLiteTimeText(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := Open(ctx, "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 11, 26, 12, 30, 5, 120000000, time.FixedZone("CET", 3600))
	c := &Customer{ID: "c1", TenantID: "acme", Profile: Profile{}, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	var text string
	r, _ := s.(*db).r.DB()
	// The driver reads text that looks like a time back as a time: prefixed, it does not.
	if err := r.QueryRow("SELECT '=' || created_at FROM customers WHERE id = 'c1'").Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := "=2026-11-26 11:30:05.12+00:00"; text != want {
		t.Fatalf("created_at stored as %q, want %q", text, want)
	}
	got, err := s.Customer(ctx, "acme", "c1")
	if err != nil || !got.CreatedAt.Equal(at) {
		t.Fatalf("read back %v %v, want %v", got, err, at)
	}
}

// Migration 3 rebuilds SQLite's events table without AUTOINCREMENT: every
// event and its seq survive it, both ways, and new events go after them.
func TestSQLiteEventsRowidMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	p, err := Connect("sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := p.W.DB()
	fsys, _ := fs.Sub(migrations, "migrations/sqlite")
	gp, err := goose.NewProvider(goose.DialectSQLite3, sqlDB, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gp.UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"e1", "e2", "e3"} {
		if _, err := sqlDB.Exec(`INSERT INTO events (id, tenant_id, customer_id, type, payload, created_at, next_at)
			VALUES ($1, 'acme', 'c', 't', '{}', $2, $2)`, id, time.Now().UTC()); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := sqlDB.Exec(`DELETE FROM events WHERE id = 'e2'`); err != nil {
		t.Fatal(err)
	}
	seqs := func() map[string]int64 {
		t.Helper()
		rows, err := sqlDB.Query(`SELECT id, seq FROM events`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string]int64{}
		for rows.Next() {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				t.Fatal(err)
			}
			m[id] = seq
		}
		return m
	}
	before := seqs()
	if _, err := gp.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got := seqs(); len(got) != 2 || got["e1"] != before["e1"] || got["e3"] != before["e3"] {
		t.Fatalf("after up: %v, before %v", got, before)
	}
	var ddl string
	if err := sqlDB.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'events'`).Scan(&ddl); err != nil || strings.Contains(ddl, "AUTOINCREMENT") {
		t.Fatalf("events table: %q %v", ddl, err)
	}
	if _, err := gp.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if got := seqs(); len(got) != 2 || got["e1"] != before["e1"] || got["e3"] != before["e3"] {
		t.Fatalf("after down: %v, before %v", got, before)
	}
	if _, err := gp.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddEvent(ctx, &Event{ID: "e4", TenantID: "acme", CustomerID: "c", Type: "t", Payload: "{}", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, EventQuery{})
	if err != nil || len(evs) != 3 || evs[2].ID != "e4" || evs[2].Seq <= before["e3"] {
		t.Fatalf("events after a new one: %+v %v", evs, err)
	}
}

// The writer does not checkpoint; the checkpointer copies committed pages
// into the database file beside it.
func TestSQLiteCheckpointer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wDB, _ := s.(*db).w.DB()
	var auto int
	if err := wDB.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint %d %v, want 0", auto, err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	now := time.Now()
	for i := range 300 {
		c := &Customer{ID: fmt.Sprintf("c%d", i), TenantID: "acme", Profile: Profile{"pad": strings.Repeat("x", 500)}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the database file stayed at %d bytes: nothing was checkpointed", before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One batch of new accounts: each account gets its own answer, and a failed
// one leaves nothing of itself while the others of its batch are written.
func TestSQLiteAccountBatch(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "b.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.(*db)
	now := time.Now().UTC()
	account := func(id, email string) *NewAccount {
		ch := &Challenge{ID: "ch-" + id, TenantID: "acme", Channel: "email", Destination: email, CodeHash: "h",
			MaxAttempts: 5, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
		if err := s.CreateChallenge(ctx, ch); err != nil {
			t.Fatal(err)
		}
		c := &Customer{ID: id, TenantID: "acme", Email: &email, Profile: Profile{}, CreatedAt: now, UpdatedAt: now}
		return &NewAccount{Customer: c, Consume: &ChallengeUse{ID: ch.ID, At: now},
			Events: []*Event{{ID: "ev-" + id, TenantID: "acme", CustomerID: id, Type: "t", Payload: "{}", CreatedAt: now}}}
	}
	good, taken, twice := account("a", "a@example.com"), account("b", "a@example.com"), account("c", "c@example.com")
	twice.Consume = good.Consume
	var jobs []*job
	for _, a := range []*NewAccount{good, taken, twice} {
		jobs = append(jobs, &job{write: func(st *db) error { return st.writeAccount(ctx, a) }, err: make(chan error, 1)})
	}
	d.batch.write(jobs)
	if err := <-jobs[0].err; err != nil {
		t.Fatalf("good account: %v", err)
	}
	if err := <-jobs[1].err; !errors.Is(err, ErrConflict) {
		t.Fatalf("taken email: %v", err)
	}
	if err := <-jobs[2].err; !errors.Is(err, ErrSpent) {
		t.Fatalf("challenge used earlier in the batch: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", "a"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "c"} {
		if _, err := s.Customer(ctx, "acme", id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("account %s written: %v", id, err)
		}
	}
	if ch, err := s.Challenge(ctx, "acme", "ch-b"); err != nil || ch.ConsumedAt != nil {
		t.Fatalf("the taken email's challenge was used: %+v %v", ch, err)
	}
	evs, err := s.Events(ctx, EventQuery{})
	if err != nil || len(evs) != 1 || evs[0].ID != "ev-a" {
		t.Fatalf("events: %+v %v", evs, err)
	}
	s.Close()
	late := &NewAccount{Customer: &Customer{ID: "z", TenantID: "acme", Profile: Profile{}, CreatedAt: now, UpdatedAt: now}}
	if err := d.CreateAccount(ctx, late); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after close: %v", err)
	}
}

// walFrames is the length of the WAL in pages, as a PASSIVE checkpoint
// reports it.
func walFrames(t *testing.T, path string) int {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var busy, frames, copied int
	if err := conn.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	return frames
}

// Under steady reads and writes the WAL starts again from its beginning:
// some reader always reads from it, so the writer alone never would, and it
// grew without end.
func TestTheWALStaysShortUnderSteadyReads(t *testing.T) {
	defer func(n int) { walRestartFrames = n }(walRestartFrames)
	walRestartFrames = 200
	ctx, cancel := context.WithCancel(context.Background())
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(ctx, "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if err := s.CreateCustomer(ctx, &Customer{ID: "read", TenantID: "acme", Profile: Profile{}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// Four readers, one always inside a read.
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for ctx.Err() == nil {
				_, _ = s.Customer(ctx, "acme", "read")
			}
		}()
	}
	written := 0
	for i := range 3000 {
		c := &Customer{ID: fmt.Sprintf("c%d", i), TenantID: "acme", Profile: Profile{"pad": strings.Repeat("x", 500)}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
		written++
	}
	time.Sleep(3 * checkpointEvery)
	frames := walFrames(t, path)
	cancel()
	for range 4 {
		<-done
	}
	// The 3,000 commits write about 12,000 pages; a WAL that starts again
	// holds those written since (a few checkpointer ticks' worth at most).
	if frames > 6000 {
		t.Fatalf("after %d writes under steady reads the WAL is %d pages long: it never started again", written, frames)
	}
}

// The database holds every customer's personal data, the tenants' sealed
// secrets and the admin keys' hashes: its files are the service's user's
// only, whatever the umask (here the common 022) and whatever folder holds
// them, as ./data/secret is (0600). Found by an audit: they were 0644.
func TestSQLiteFilesAreNotReadableByOthers(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // a folder others may enter, as the service's working folder often is
		t.Fatal(err)
	}
	path := filepath.Join(dir, "customerd.db")
	s, err := Open(context.Background(), "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is %04o: readable beyond the service's user", filepath.Base(f), perm)
		}
	}
	// The folder the store creates for the database is the service's too.
	nested := filepath.Join(dir, "new", "customerd.db")
	s2, err := Open(context.Background(), "sqlite://"+nested, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if fi, err := os.Stat(filepath.Dir(nested)); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the database folder it created: %v %v", fi.Mode().Perm(), err)
	}
}

func TestAPanickingWriteFailsAloneInItsBatch(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "p.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.(*db)
	now := time.Now().UTC()
	email := "kept@example.com"
	kept := &Customer{ID: "kept", TenantID: "acme", Email: &email, Profile: Profile{}, CreatedAt: now, UpdatedAt: now}
	jobs := []*job{
		{write: func(*db) error { var c *Customer; _ = c.ID; return nil }, err: make(chan error, 1)}, // a nil dereference
		{write: func(st *db) error { return st.writeAccount(ctx, &NewAccount{Customer: kept}) }, err: make(chan error, 1)},
	}
	d.batch.write(jobs)
	if err := <-jobs[0].err; !errors.Is(err, ErrPanicked) {
		t.Fatalf("the panicking write: %v, want ErrPanicked", err)
	}
	if err := <-jobs[1].err; err != nil {
		t.Fatalf("the write after it: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", "kept"); err != nil {
		t.Fatalf("the write after it was not kept: %v", err)
	}
	// The batcher goes on.
	if err := d.batch.do(ctx, func(*db) error { return nil }); err != nil {
		t.Fatalf("a write after the panic: %v", err)
	}
}

// A client that hangs up while its write's statement runs in a group
// commit undoes its own write at most: SQLite rolls a whole transaction
// back when a statement in it is interrupted, and the driver interrupted
// one whose context ended, which undid every write of the batch.
func TestAHangUpFailsNoOtherWriteOfItsBatch(t *testing.T) {
	ctx := context.Background()
	s, d := openTestSQLite(t)
	started := make(chan struct{})
	hungUp, hangUp := context.WithCancel(ctx)
	defer hangUp()
	go func() { <-started; time.Sleep(20 * time.Millisecond); hangUp() }()
	jobs := []*job{
		{write: func(st *db) error { return st.writeAccount(ctx, testAccount("before")) }, err: make(chan error, 1)},
		{write: func(st *db) error {
			// A write long enough for the hang-up to land while it runs.
			close(started)
			_, err := st.tx.ExecContext(hungUp, `INSERT INTO counters (tenant_id, key, day, count)
				SELECT 'acme', 'hung-up', 'd', count(*) FROM (WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 1000000) SELECT i FROM r)`)
			return err
		}, err: make(chan error, 1)},
		{write: func(st *db) error { return st.writeAccount(ctx, testAccount("after")) }, err: make(chan error, 1)},
	}
	d.batch.write(jobs)
	for i, id := range []string{"before", "after"} {
		if err := <-jobs[2*i].err; err != nil {
			t.Errorf("the write %s the hang-up: %v", id, err)
		}
		if _, err := s.Customer(ctx, "acme", id); err != nil {
			t.Errorf("the account written %s the hang-up: %v", id, err)
		}
	}
	// The hung-up write itself: written if and only if it was answered so.
	answer := <-jobs[1].err
	n, err := s.Counted(ctx, "acme", "hung-up", "d")
	if err != nil || (answer == nil) != (n > 0) {
		t.Fatalf("the hung-up write answered %v and counted %d (%v)", answer, n, err)
	}
}

// A transaction on SQLite is a write of the next group commit, whether
// asked with Tx or made by a store method's own (RetireSigningKeys here):
// one that fails is undone alone, the others of its batch are kept.
func TestSQLiteTransactionsAreGroupCommitted(t *testing.T) {
	ctx := context.Background()
	s, d := openTestSQLite(t)
	now := time.Now().UTC()
	for _, kid := range []string{"old", "new"} {
		if err := s.AddSigningKey(ctx, &SigningKey{TenantID: "acme", KID: kid, Alg: "ES256", PrivateKey: []byte("sealed"), PublicJWK: "{}", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	// Hold the writer so that the transactions below queue for one batch.
	held, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = d.batch.do(ctx, func(*db) error { close(held); <-release; return nil })
	}()
	<-held
	failed := errors.New("the transaction's own failure")
	errs := make(chan error, 3)
	retired := make(chan int, 1)
	go func() {
		n, err := s.RetireSigningKeys(ctx, "acme", "new", now)
		retired <- n
		errs <- err
	}()
	for _, id := range []string{"kept", "undone"} {
		go func() {
			errs <- s.Tx(ctx, func(tx Store) error {
				email := id + "@example.com"
				if err := tx.CreateCustomer(ctx, &Customer{ID: id, TenantID: "acme", Email: &email, Profile: Profile{}, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
				if id == "undone" {
					return failed
				}
				return nil
			})
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); len(d.batch.queue) < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d of the three transactions queued for the group commit", len(d.batch.queue))
		}
	}
	close(release)
	var got []error
	for range 3 {
		got = append(got, <-errs)
	}
	if slices.IndexFunc(got, func(err error) bool { return err != nil && !errors.Is(err, failed) }) >= 0 ||
		!slices.ContainsFunc(got, func(err error) bool { return errors.Is(err, failed) }) {
		t.Fatalf("answers %v: want two successes and the failure", got)
	}
	if n := <-retired; n != 1 {
		t.Fatalf("retired %d keys, want the old one", n)
	}
	keys, err := s.SigningKeys(ctx, "acme")
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	for _, k := range keys {
		if (k.RetiredAt != nil) != (k.KID == "old") {
			t.Fatalf("key %s retired at %v", k.KID, k.RetiredAt)
		}
	}
	if _, err := s.Customer(ctx, "acme", "kept"); err != nil {
		t.Fatalf("the kept transaction's write: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", "undone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed transaction's write: %v", err)
	}
}

// The driver's connections and statements implement every interface
// detachedConn and detachedStmt pass their calls on to (a driver upgrade
// dropping one would panic at the first such call).
func TestTheWritersDriverImplementsWhatDetachedAsserts(t *testing.T) {
	c, err := (&moderncsqlite.Driver{}).Open("file:" + filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, ok := range map[string]bool{
		"ConnPrepareContext": is[driver.ConnPrepareContext](c), "ConnBeginTx": is[driver.ConnBeginTx](c),
		"ExecerContext": is[driver.ExecerContext](c), "QueryerContext": is[driver.QueryerContext](c),
		"Pinger": is[driver.Pinger](c), "SessionResetter": is[driver.SessionResetter](c), "Validator": is[driver.Validator](c),
	} {
		if !ok {
			t.Errorf("the driver's connection is no %s", name)
		}
	}
	st, err := c.Prepare("SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !is[driver.StmtExecContext](st) || !is[driver.StmtQueryContext](st) {
		t.Errorf("the driver's statement %T has no ExecContext or QueryContext", st)
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

// A write whose caller has hung up before it runs fails alone: the first
// write of a batch to use a statement binds it to the batch's transaction
// for the others, and one bound with an ended context kept that error for
// all of them.
func TestAHungUpWriteBindsNoStatementForTheRestOfItsBatch(t *testing.T) {
	ctx := context.Background()
	s, d := openTestSQLite(t)
	hungUp, hangUp := context.WithCancel(ctx)
	hangUp()
	jobs := []*job{
		{write: func(st *db) error { return st.writeAccount(hungUp, testAccount("hung-up")) }, err: make(chan error, 1)},
		{write: func(st *db) error { return st.writeAccount(ctx, testAccount("kept")) }, err: make(chan error, 1)},
	}
	d.batch.write(jobs)
	if err := <-jobs[0].err; err == nil {
		t.Error("the hung-up write was answered as written")
	}
	if err := <-jobs[1].err; err != nil {
		t.Fatalf("the write after it: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", "kept"); err != nil {
		t.Fatalf("the write after it was not kept: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", "hung-up"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the hung-up write: %v", err)
	}
}

// An erasure zeroes the pages it frees (secure_delete ON,
// TestAnErasureLeavesNothingOfARowLargerThanAPageInTheSQLiteFile) and
// leaves the writer's one connection as it found it, however it ends:
// every other write keeps FAST, which costs no I/O.
func TestOnlyAnErasureZeroesThePagesItFrees(t *testing.T) {
	ctx := context.Background()
	errUnreadable := errors.New("scrub event: unreadable")
	s, d := openTestSQLite(t)
	var hangUp context.CancelFunc
	for _, c := range []struct {
		id    string
		scrub func(string) (string, error)
		want  error
	}{
		{"erased", func(p string) (string, error) { return p, nil }, nil},
		{"missing", nil, ErrNotFound},
		{"unreadable", func(string) (string, error) { return "", errUnreadable }, errUnreadable},
		{"panicking", func(string) (string, error) { panic("a bug") }, ErrPanicked},
		// Found by a review: the reset ran under the caller's context,
		// which a caller hanging up mid-erasure had cancelled.
		{"hung-up", func(p string) (string, error) { hangUp(); return p, nil }, context.Canceled},
	} {
		if c.id != "missing" {
			if err := s.CreateAccount(ctx, testAccount(c.id)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(ctx)
		hangUp = cancel
		err := d.EraseCustomer(ctx, Erasure{TenantID: "acme", CustomerID: c.id, At: time.Now(), Scrub: c.scrub})
		cancel()
		// A caller that left gets what the statements came to.
		if c.want != context.Canceled && !errors.Is(err, c.want) {
			t.Errorf("erasing %s: %v, want %v", c.id, err, c.want)
		}
		wDB, _ := d.w.DB()
		var mode int
		if err := wDB.QueryRow("PRAGMA secure_delete").Scan(&mode); err != nil || mode != 2 {
			t.Errorf("after erasing %s the writer's secure_delete is %d (%v), want 2 (FAST)", c.id, mode, err)
		}
	}
}

// openTestSQLite opens a new SQLite store for a test, closed with it.
func openTestSQLite(t *testing.T) (Store, *db) {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "t.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, s.(*db)
}

// testAccount is a new account of tenant acme with id's email and one event.
func testAccount(id string) *NewAccount {
	now := time.Now().UTC()
	email := id + "@example.com"
	return &NewAccount{Customer: &Customer{ID: id, TenantID: "acme", Email: &email, Profile: Profile{}, CreatedAt: now, UpdatedAt: now},
		Events: []*Event{{ID: "ev-" + id, TenantID: "acme", CustomerID: id, Type: "t", Payload: "{}", CreatedAt: now}}}
}
