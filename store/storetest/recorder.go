package storetest

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Statement is one statement sent to PostgreSQL, with its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// Recorder keeps the statements PostgreSQL is sent while it records
// (store.Options.QueryTracer, app.WithQueryTracer): every one is a round
// trip, BEGIN and COMMIT included.
type Recorder struct {
	mu        sync.Mutex
	recording bool
	got       []Statement
}

var _ pgx.QueryTracer = (*Recorder)(nil)

// Start forgets what was recorded and records from now on.
func (r *Recorder) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recording, r.got = true, nil
}

// Stop stops recording and returns what was recorded since Start.
func (r *Recorder) Stop() []Statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recording = false
	return r.got
}

// TraceQueryStart records a statement.
func (r *Recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recording {
		r.got = append(r.got, Statement{SQL: data.SQL, Args: data.Args})
	}
	return ctx
}

// TraceQueryEnd is nothing to record.
func (r *Recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
