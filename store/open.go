package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/libtnb/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	moderncsqlite "modernc.org/sqlite"
)

//go:embed migrations
var migrations embed.FS

// Options tune Open.
type Options struct {
	// MaxOpenConns bounds the PostgreSQL pool and the SQLite readers; 0 is
	// the database's default (DefaultPostgresConns, DefaultSQLiteReaders).
	MaxOpenConns int
	// SQLiteMmap is how many bytes of a SQLite database file each
	// connection reads through a memory mapping of it (PRAGMA mmap_size,
	// at most 2 GiB less 64 KiB); 0 maps none. Unmapped, a page a
	// connection needs and does not hold is read with a system call and
	// copied into its page cache, which on a database larger than the
	// caches is most reads (a reader's cache is emptied by every commit of
	// another connection); mapped, it is a memory access to the kernel's own
	// copy. Measured the same hour on one machine, a million customers: GET
	// customer at 82.9 % of its rate on 500 customers unmapped (163 µs of
	// CPU a request), 91.0 and 94.1 % mapped (124 µs); code verification,
	// the anonymous POST and Google sign-in moved within a run's spread, and
	// so did everything on 500 customers. The cost is memory seen in the
	// process: every page it has read stays mapped in it (the kernel's page
	// cache, which holds the page mapped or not and drops it under
	// pressure), counted in VmRSS once for each connection that read it:
	// 79 → 115–129 MiB in the bench's main scenarios. Hence none unless
	// configured.
	SQLiteMmap int64
	// Logger receives migration progress.
	Logger *slog.Logger
	// NoMigrate applies no migration: Open fails with ErrSchemaBehind when
	// any is pending, or when there is no database yet (a command that must
	// write nothing, a dry run, opens so).
	NoMigrate bool
	// QueryTracer, on PostgreSQL, sees every statement sent, BEGIN and
	// COMMIT included: the tests count and EXPLAIN what requests send.
	QueryTracer pgx.QueryTracer
}

// Open connects to postgres://… or sqlite://PATH and applies the migrations.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if path, ok := strings.CutPrefix(rawURL, "sqlite://"); ok && opts.NoMigrate {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: no database at %s", ErrSchemaBehind, path)
		}
	}
	p, err := Connect(rawURL, opts)
	if err != nil {
		return nil, err
	}
	s := &db{w: p.W, r: p.R, close: p.Close, url: rawURL}
	if s.wdb, err = p.W.DB(); err != nil {
		_ = s.Close()
		return nil, err
	}
	// Under ctx: a database that accepts the connection and never answers
	// does not hold start-up past Ctrl-C.
	if p.Postgres {
		if err := s.wdb.PingContext(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	dialect := goose.DialectSQLite3
	if p.Postgres {
		dialect = goose.DialectPostgres
	}
	if err := migrate(ctx, s, dialect, opts.Logger, opts.NoMigrate); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.prepareAll(ctx, p.Postgres); err != nil {
		_ = s.Close()
		return nil, err
	}
	if !p.Postgres {
		if err := s.startBatcher(ctx); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Pools are a database's GORM handles as customerd uses them: W takes every
// write, R every read outside a transaction (one pool on PostgreSQL; on
// SQLite, one writer connection and a pool of readers).
type Pools struct {
	W, R     *gorm.DB
	Postgres bool
	Close    func() error
}

// Connect opens the pools of postgres://… or sqlite://PATH without touching
// the schema (PostgreSQL is reached at the first use); the load benchmark's
// floor servers open theirs with it too.
func Connect(rawURL string, opts Options) (*Pools, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		TranslateError:         true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return openPostgres(rawURL, cfg, opts)
	case strings.HasPrefix(rawURL, "sqlite://"):
		return openSQLite(strings.TrimPrefix(rawURL, "sqlite://"), cfg, opts)
	}
	return nil, errors.New("database url: want postgres://… or sqlite://PATH")
}

func openPostgres(dsn string, cfg *gorm.Config, opts Options) (*Pools, error) {
	cfg.DisableAutomaticPing = true // gorm pings without a context: Open pings under its own
	dialector := postgres.Config{DSN: dsn}
	if tracer := opts.QueryTracer; tracer != nil {
		dialector.OptionOpenDB = []stdlib.OptionOpenDB{stdlib.OptionBeforeConnect(func(_ context.Context, c *pgx.ConnConfig) error {
			c.Tracer = tracer
			return nil
		})}
	}
	g, err := gorm.Open(postgres.New(dialector), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	n := cmp.Or(max(opts.MaxOpenConns, 0), DefaultPostgresConns)
	sqlDB.SetMaxOpenConns(n)
	sqlDB.SetMaxIdleConns(n)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return &Pools{W: g, R: g, Postgres: true, Close: sqlDB.Close}, nil
}

// sqlitePragmas make SQLite fit a server: WAL so readers never wait for the
// writer, a busy timeout instead of immediate SQLITE_BUSY, foreign keys on,
// deleted content zeroed where that costs no I/O (secure_delete FAST: an
// erased customer's cells and index entries stayed in the pages' free
// space; an erasure zeroes the pages it frees too, EraseCustomer), and
// (with _txlock) write transactions that take the write lock at BEGIN.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=secure_delete(" + secureDeleteFast + ")&_txlock=immediate" +
	"&_time_format=sqlite" // times as 2006-01-02 15:04:05.999999999-07:00, the text they have always been stored as

// secureDeleteFast is SQLite's secure_delete mode but during an erasure.
const secureDeleteFast = "FAST"

// The driver is modernc.org/sqlite (through github.com/libtnb/sqlite, its
// GORM dialector), which keeps a prepared statement compiled; the store
// prepares its hot queries itself (prepared.go) rather than through GORM's
// PrepareStmt, whose statements prepared inside a transaction are compiled
// again in every later one.
func openSQLite(path string, cfg *gorm.Config, opts Options) (*Pools, error) {
	if path == "" {
		return nil, errors.New("database url: sqlite:// needs a path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create database folder: %w", err)
		}
	}
	// The file holds every customer's data, the tenants' sealed secrets and
	// the admin keys' hashes: it is the service's user's only, whatever the
	// umask, and SQLite gives its -wal and -shm files its mode. An existing
	// file readable by others is the operator's to mend: said, not changed.
	switch fi, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create database file: %w", err)
		}
		if f != nil {
			_ = f.Close()
		}
	case err == nil && fi.Mode().Perm()&0o077 != 0 && opts.Logger != nil:
		opts.Logger.Warn("the database file is readable or writable by other users of this machine: chmod 600 it",
			"path", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas
	mmap := max(opts.SQLiteMmap, 0)
	// The writer never checkpoints (wal_autocheckpoint 0): a checkpoint
	// copies pages into the database file and syncs it, and would do so
	// inside a commit, holding the one writer. The checkpointer does it beside.
	// Its temporary files stay in memory (temp_store): above all the
	// sub-journal of the savepoint every write of a group commit has (the
	// pages it changed, as they were), which SQLite would otherwise write to
	// a file on disk, a system call a page, once it passes 64 KiB.
	// When the WAL starts again from its beginning, its file is cut back to
	// walSizeLimit (journal_size_limit).
	// Its page cache is writerCacheKiB.
	// Its statements run to their end whatever their callers do (detachedDriver).
	registerDetachedDriver()
	w, err := gorm.Open(sqlite.New(sqlite.Config{DriverName: writerDriverName, DSN: dsn + fmt.Sprintf("&_pragma=wal_autocheckpoint(0)&_pragma=cache_size(-%d)&_pragma=temp_store(MEMORY)&_pragma=journal_size_limit(%d)&_pragma=mmap_size(%d)",
		writerCacheKiB, walSizeLimit, mmap)}), cfg)
	if err != nil {
		return nil, err
	}
	wDB, err := w.DB()
	if err != nil {
		return nil, err
	}
	wDB.SetMaxOpenConns(1)
	wDB.SetMaxIdleConns(1)
	wDB.SetConnMaxIdleTime(0)
	wDB.SetConnMaxLifetime(0)
	// A reader's page cache is emptied whenever another connection commits
	// (WAL mode), so under writes it holds the pages of one read; 512 KiB
	// instead of SQLite's 2 MiB keeps the readers' memory small.
	r, err := gorm.Open(sqlite.Open(dsn+fmt.Sprintf("&_pragma=query_only(1)&_pragma=cache_size(-%d)&_pragma=mmap_size(%d)", readerCacheKiB, mmap)), cfg)
	if err != nil {
		_ = wDB.Close()
		return nil, err
	}
	rDB, err := r.DB()
	if err != nil {
		_ = wDB.Close()
		return nil, err
	}
	n := cmp.Or(max(opts.MaxOpenConns, 0), DefaultSQLiteReaders)
	rDB.SetMaxOpenConns(n)
	rDB.SetMaxIdleConns(n)
	stopCheckpoints, err := checkpointer(dsn, checkpointEvery, opts.Logger)
	if err != nil {
		_ = errors.Join(rDB.Close(), wDB.Close())
		return nil, err
	}
	return &Pools{W: w, R: r, Close: func() error { return errors.Join(stopCheckpoints(), rDB.Close(), wDB.Close()) }}, nil
}

// DefaultPostgresConns is the PostgreSQL pool's size unless configured: a
// request waiting for a connection is handed one at random among the
// waiters (database/sql), so a pool much smaller than the concurrent
// requests makes the slowest of them wait several turns. With 64 clients
// on 2 CPUs, 32 connections answered a code verification's 99th
// percentile in 52–57 ms where 16 took 80–107 ms, at the same throughput
// (64 gave no more and cost PostgreSQL more CPU per request).
const DefaultPostgresConns = 32

// DefaultSQLiteReaders is the number of SQLite readers unless configured:
// reads are local and short, and each reader keeps a page cache, its own
// copy of the schema and its prepared statements (about 0.9 MiB resident
// under the benchmark). Eight instead of sixteen took customerd's peak
// from 97.2–97.4 to 90.4–91.7 MiB on SQLite, in turns in one hour, at the
// same rates: GET 157 and 167 % of its floor (151, 155 % with sixteen),
// code verification 88 and 100 % (94, 96 %), Google sign-in 90 and 91 %
// (88, 83 %). With 64 clients on 2 CPUs, eight reads at once are more
// than the CPUs run.
const DefaultSQLiteReaders = 8

// readerCacheKiB is the page cache of each SQLite reader.
const readerCacheKiB = 512

// writerCacheKiB is the page cache of the SQLite writer, the one connection
// whose cache no other connection's commit empties. SQLite's 2 MiB held
// too few pages on a database of a million customers: each write reads
// the leaf pages of the indexes it changes, spread over the file, and
// those pushed out the interior pages above them, read again from the file
// at the next write. 8 MiB keeps those interior pages. With it, a code
// verification there kept 85.5 and 85.7 % of its rate on 500 customers,
// against 80.6–81.0 % in three runs with 2 MiB (the scale scenario), for
// about 10 MiB more at the whole benchmark's peak (92–94 MiB on SQLite).
const writerCacheKiB = 8 << 10

// checkpointEvery is how often the checkpointer copies the WAL's committed
// pages into the database file.
const checkpointEvery = 100 * time.Millisecond

// walRestartFrames is how long (in pages) the WAL may be after a checkpoint
// before the checkpointer makes it start again from its beginning:
// walSizeLimit in 4 KiB pages. Each restart holds the writer while it copies
// what the last PASSIVE checkpoint left, syncs the database file and waits
// for the readers of the WAL to finish, so it is not asked for at every tick.
var walRestartFrames = walSizeLimit / 4096

// walSizeLimit is the size the WAL's file is cut back to when it starts
// again. 256 MiB: on a database of a million customers each sign-in changes
// pages all over the file, the WAL reached 64 MiB every 0.3–0.5 s, and each
// restart then held the writer for 40–80 ms (copying and syncing pages
// scattered over 2 GB), about a sixth of the time; at 256 MiB a restart
// holds it 100–140 ms every 1.5 s or so. Code verification there: 73 % of
// its rate on a small database before, 82, 74 and 78 % in three runs after
// (each run's spread is several points). A reader looks a page up only in
// the part of the WAL not yet copied back, so a longer WAL costs reads
// nothing.
const walSizeLimit = 256 << 20

// restartWait bounds how long a RESTART checkpoint first waits for the
// readers of the WAL to finish, holding writers meanwhile. When they do not
// (readers descheduled mid-read on a busy machine), the next tick tries
// again with twice the wait, up to maxRestartWait, so that the WAL does
// start again in the end; a restart brings the wait back down.
const (
	restartWait    = 20 * time.Millisecond
	maxRestartWait = time.Second
)

// checkpointer runs a PASSIVE checkpoint every interval on a connection of
// its own: it copies what readers no longer need from the WAL into the
// database file without blocking the writer or the readers. That alone does
// not keep the WAL short: the writer starts it again from its beginning only
// when no reader is reading from it, and under steady reads and writes one
// always is, so it grew without end (2.4 GB while the load benchmark
// prepared its data), and every read looked its pages up in a longer WAL
// index. Past walRestartFrames the checkpointer asks for a RESTART, which
// waits (up to restartWait) for the readers of the WAL to finish; they are
// short. The returned function stops it.
func checkpointer(dsn string, every time.Duration, log *slog.Logger) (func() error, error) {
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	wait := restartWait
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				restarted, err := checkpoint(ctx, conn, wait)
				if err != nil && ctx.Err() == nil && log != nil {
					log.Warn("sqlite checkpoint", "error", err.Error())
				}
				switch {
				case restarted:
					wait = restartWait
				case err == nil:
					wait = min(2*wait, maxRestartWait)
				}
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		return conn.Close()
	}, nil
}

// checkpoint copies the WAL's pages that no reader needs into the database
// file, and makes the WAL start again when it has grown past
// walRestartFrames, waiting up to wait for its readers: restarted reports
// whether it did, and is true too when the WAL is short.
func checkpoint(ctx context.Context, conn *sql.DB, wait time.Duration) (restarted bool, err error) {
	var busy, frames, copied int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil || frames < walRestartFrames {
		return err == nil, err
	}
	c, err := conn.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds())); err != nil {
		return false, err
	}
	if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &frames, &copied); err != nil {
		return false, err
	}
	return busy == 0, nil
}

// ErrSchemaBehind: the database lacks migrations this customerd has, and
// was opened to write nothing.
var ErrSchemaBehind = errors.New("the database's schema is behind this customerd's: run `customerd migrate` first")

// migrate applies the pending migrations or, checkOnly, fails with
// ErrSchemaBehind when there are any.
func migrate(ctx context.Context, s *db, dialect goose.Dialect, log *slog.Logger, checkOnly bool) error {
	dir := "migrations/sqlite"
	var opts []goose.ProviderOption
	if dialect == goose.DialectPostgres {
		dir = "migrations/postgres"
		// Replicas starting together take turns.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return err
	}
	sqlDB, err := s.w.DB()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, sqlDB, fsys, append(opts, goose.WithDisableGlobalRegistry(true))...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if checkOnly {
		// goose makes its table before reading it: a database customerd
		// never migrated is told by that table's absence.
		exists := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version'"
		if dialect == goose.DialectPostgres {
			exists = "SELECT count(*) FROM (SELECT to_regclass('goose_db_version') AS t) v WHERE t IS NOT NULL"
		}
		var n int
		if err := sqlDB.QueryRowContext(ctx, exists).Scan(&n); err != nil {
			return classify(err)
		}
		if n == 0 {
			return fmt.Errorf("%w: it has no customerd schema", ErrSchemaBehind)
		}
		if pending, err := p.HasPending(ctx); err != nil || pending {
			return cmp.Or(err, ErrSchemaBehind)
		}
		return nil
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", classify(err))
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// prepareAll prepares the hot queries on the writer and the reader pools,
// and closes them with the store.
func (s *db) prepareAll(ctx context.Context, postgres bool) error {
	pools := []*gorm.DB{s.w}
	if !postgres { // one pool on PostgreSQL
		pools = append(pools, s.r)
	}
	var sets []*statements
	for _, g := range pools {
		pool, err := g.DB()
		if err != nil {
			return err
		}
		st, err := prepare(ctx, pool, postgres)
		if err != nil {
			for _, done := range sets {
				_ = closeStatements(done)
			}
			return err
		}
		sets = append(sets, st)
	}
	s.ws, s.rs = sets[0], sets[len(sets)-1]
	closePools := s.close
	s.close = func() error {
		var errs []error
		for _, st := range sets {
			errs = append(errs, closeStatements(st))
		}
		return errors.Join(append(errs, closePools())...)
	}
	return nil
}

// startBatcher starts the group commit of SQLite's writes, stopped first
// when the store closes.
func (s *db) startBatcher(ctx context.Context) error {
	b, err := newBatcher(ctx, s.w, s.ws)
	if err != nil {
		return err
	}
	s.batch = b
	closeRest := s.close
	s.close = func() error {
		b.close()
		return closeRest()
	}
	return nil
}

// isSQLiteUnique reports a UNIQUE or PRIMARY KEY constraint failure.
func isSQLiteUnique(e *moderncsqlite.Error) bool {
	code := e.Code()
	return code == 2067 || code == 1555 // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
}

func isSQLiteBusy(err error) bool {
	var e *moderncsqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	code := e.Code() & 0xff // primary result code
	return code == 5 || code == 6
}
