package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"gorm.io/gorm"
)

// The savepoint of one account in a batch.
const (
	savepoint           = "SAVEPOINT account"
	rollbackToSavepoint = "ROLLBACK TO SAVEPOINT account"
	releaseSavepoint    = "RELEASE SAVEPOINT account"
)

// batcher is group commit for SQLite's writes: every transaction (Tx, and
// through it CreateAccount, Verify and the store's other transactions), from
// a shopper's code request to an admin's erasure. SQLite has one writer, and
// most of a write's cost there is its commit: the WAL frames of every page
// the account, its indexes, its event and its challenge touched, written
// with a system call each (transactions
// committed alone answered POST /customer for an existing account 1,595
// times a second at 856 µs of CPU each, 2,222–2,309 at 637–658 µs in
// batches, p99 191 → 63–69 ms). Writes made at the same moment
// wait for the writer anyway; the batcher takes all that are waiting (it
// never waits for more) and writes them in one transaction, each inside a
// savepoint of its own, so that one write's failure (a taken email, a spent
// challenge) undoes that write alone. One commit then writes pages the
// writes share once.
type batcher struct {
	// w is the writer, whose one connection pool is; a batch's db is w
	// bound to the batch's transaction.
	w     *gorm.DB
	pool  *sql.DB
	stmts *statements
	// sp are the savepoint statements, prepared as the queries are.
	sp    [3]*sql.Stmt
	queue chan *job
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// job is one write of a batch, through st, the batch's transaction: every
// job of a batch shares it (and the statements bound to it), one after
// another on the batcher's goroutine.
type job struct {
	write func(st *db) error
	err   chan error
}

// ErrPanicked: a write panicked (a bug); it was undone alone.
var ErrPanicked = errors.New("store: a write panicked")

// run is j's write, a panic in it its error: a bug in one write undoes that
// write, where it would take down the process with every write queued
// behind it (the batcher runs the writes on a goroutine of its own).
func (j *job) run(st *db) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanicked, r)
		}
	}()
	return j.write(st)
}

// maxBatch bounds a batch, and so the time the first write of a batch
// waits for the last.
const maxBatch = 32

// newBatcher starts a batcher on w, SQLite's writer, before any
// transaction holds its one connection (see prepare).
func newBatcher(ctx context.Context, w *gorm.DB, stmts *statements) (*batcher, error) {
	pool, err := w.DB()
	if err != nil {
		return nil, err
	}
	b := &batcher{w: w, pool: pool, stmts: stmts, queue: make(chan *job, maxBatch),
		stop: make(chan struct{}), done: make(chan struct{})}
	for i, q := range []string{savepoint, rollbackToSavepoint, releaseSavepoint} {
		st, err := pool.PrepareContext(ctx, q)
		if err != nil {
			b.closeStatements()
			return nil, classify(err)
		}
		b.sp[i] = st
	}
	go b.loop()
	return b, nil
}

func (b *batcher) closeStatements() {
	for _, st := range b.sp {
		if st != nil {
			_ = st.Close()
		}
	}
}

// do runs write in the next batch: what it wrote is undone when it fails.
func (b *batcher) do(ctx context.Context, write func(st *db) error) error {
	closed := fmt.Errorf("%w: the store is closed", ErrUnavailable)
	select {
	case <-b.stop:
		return closed
	default:
	}
	j := &job{write: write, err: make(chan error, 1)}
	select {
	case b.queue <- j:
	case <-b.stop:
		return closed
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	// Once queued, the job is written or not whatever the caller does
	// meanwhile: the answer says which. A job queued as the batcher stopped
	// may get none.
	select {
	case err := <-j.err:
		return err
	case <-b.done:
		select {
		case err := <-j.err:
			return err
		default:
			return closed
		}
	}
}

// close stops the batcher after the batch it is writing; jobs still
// queued are refused.
func (b *batcher) close() {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.closeStatements()
	})
}

func (b *batcher) loop() {
	defer close(b.done)
	for {
		select {
		case <-b.stop:
			for {
				select {
				case j := <-b.queue:
					j.err <- fmt.Errorf("%w: the store is closed", ErrUnavailable)
				default:
					return
				}
			}
		case j := <-b.queue:
			batch := []*job{j}
		more:
			for len(batch) < maxBatch {
				select {
				case j := <-b.queue:
					batch = append(batch, j)
				default:
					break more
				}
			}
			b.write(batch)
		}
	}
}

// write writes a batch in one transaction; each job gets its own answer.
func (b *batcher) write(batch []*job) {
	// The batch is not any one caller's: none of their contexts may cut it short.
	ctx := context.Background()
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := b.pool.BeginTx(ctx, nil)
		if err != nil {
			return classify(err)
		}
		sp := func(which int) error {
			_, err := tx.StmtContext(ctx, b.sp[which]).ExecContext(ctx)
			return classify(err)
		}
		g := b.w.Session(&gorm.Session{Context: ctx, NewDB: true}) // as gorm's Begin makes its own
		g.Statement.ConnPool = tx
		st := &db{w: g, r: g, ws: b.stmts, tx: tx, close: func() error { return nil }}
		for i, j := range batch {
			err := sp(0)
			if err == nil {
				if errs[i] = j.run(st); errs[i] != nil {
					err = sp(1)
				}
			}
			if err == nil {
				err = sp(2)
			}
			if err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		return classify(tx.Commit())
	}()
	for i, j := range batch {
		if err != nil {
			errs[i] = err // nothing of the batch was written
		}
		j.err <- errs[i]
	}
}

// writeAccount writes a through s, a transaction.
func (s *db) writeAccount(ctx context.Context, a *NewAccount) error {
	if a.Consume != nil {
		ok, err := s.ConsumeChallenge(ctx, a.Customer.TenantID, *a.Consume)
		if err != nil {
			return err
		}
		if !ok {
			return ErrSpent
		}
	}
	if err := s.CreateCustomer(ctx, a.Customer); err != nil {
		return err
	}
	if a.Identity != nil {
		if err := s.LinkIdentity(ctx, a.Identity); err != nil {
			return err
		}
	}
	for _, e := range a.Events {
		if err := s.AddEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
