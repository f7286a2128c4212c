package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"

	moderncsqlite "modernc.org/sqlite"
)

// detachedDriver is SQLite's driver for the one writer: a statement there
// runs to its end whatever its caller's context does. The driver interrupts
// a statement whose context ends (sqlite3_interrupt), and SQLite answers an
// interrupted INSERT, UPDATE or DELETE inside a transaction by rolling the
// whole transaction back: in a group commit (batcher) that was every other
// write of the batch, so a client hanging up at the right moment failed the
// sign-ins of everyone written with it (TestAHangUpFailsNoOtherWriteOfItsBatch).
// A caller whose context has ended is still stopped before its next
// statement (database/sql checks the context first), and its own write is
// undone alone (its savepoint). Statements on the writer are short; the
// longest, the janitor's, delete a bounded batch.
type detachedDriver struct{ inner driver.Driver }

// writerDriverName is the name detachedDriver is registered under.
const writerDriverName = "customerd-sqlite-writer"

var registerWriterDriver sync.Once

func registerDetachedDriver() {
	registerWriterDriver.Do(func() {
		sql.Register(writerDriverName, detachedDriver{inner: &moderncsqlite.Driver{}})
	})
}

func (d detachedDriver) Open(name string) (driver.Conn, error) {
	c, err := d.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return detachedConn{c}, nil
}

// detached is ctx without its end (and so with no interrupt set up for it).
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// detachedConn is the driver's connection with every context detached. The
// driver's connection implements each interface asserted here.
type detachedConn struct{ driver.Conn }

func (c detachedConn) Prepare(query string) (driver.Stmt, error) {
	st, err := c.Conn.Prepare(query)
	if err != nil {
		return nil, err
	}
	return detachedStmt{st}, nil
}

func (c detachedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(detached(ctx), query)
	if err != nil {
		return nil, err
	}
	return detachedStmt{st}, nil
}

func (c detachedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(detached(ctx), opts)
}

func (c detachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(detached(ctx), query, args)
}

func (c detachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(detached(ctx), query, args)
}

func (c detachedConn) Ping(ctx context.Context) error {
	return c.Conn.(driver.Pinger).Ping(detached(ctx))
}

func (c detachedConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(detached(ctx))
}

func (c detachedConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// detachedStmt is a prepared statement of a detachedConn.
type detachedStmt struct{ driver.Stmt }

func (s detachedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.Stmt.(driver.StmtExecContext).ExecContext(detached(ctx), args)
}

func (s detachedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.(driver.StmtQueryContext).QueryContext(detached(ctx), args)
}

var (
	_ driver.ConnPrepareContext = detachedConn{}
	_ driver.ConnBeginTx        = detachedConn{}
	_ driver.ExecerContext      = detachedConn{}
	_ driver.QueryerContext     = detachedConn{}
	_ driver.Pinger             = detachedConn{}
	_ driver.SessionResetter    = detachedConn{}
	_ driver.Validator          = detachedConn{}
	_ driver.StmtExecContext    = detachedStmt{}
	_ driver.StmtQueryContext   = detachedStmt{}
)
