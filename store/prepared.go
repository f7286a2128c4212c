package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// query is one of the statements of the hot paths (sign-in, GET, update,
// sending a code). They are prepared once per connection and kept: SQLite
// then compiles each statement once instead of at every call, which is most
// of the cost of a short statement, and PostgreSQL plans it once.
type query int

const (
	qCustomerByID query = iota
	qCustomerByEmail
	qCustomerByPhone
	qInsertCustomer
	qUpdateCustomer
	qInsertEvent
	qIdentity
	qInsertIdentity
	qChallenge
	qInsertChallenge
	qConsumeChallenge
	qCounted
	qCount
	qThrottle
	numQueries
)

// The columns a Customer and a Challenge are read and written with.
const (
	customerColumns  = "id, tenant_id, email, phone, email_verified, phone_verified, profile, version, created_at, updated_at, deleted_at"
	challengeColumns = "id, tenant_id, channel, destination, customer_id, code_hash, attempts, max_attempts, expires_at, consumed_at, created_at, pending"
	eventColumns     = "id, tenant_id, customer_id, type, payload, created_at, attempts, next_at, lease_until, delivered_at, dead_at, last_error"
)

// queries are in $n placeholders, which PostgreSQL and SQLite both read.
var queries = [numQueries]string{
	qCustomerByID:    `SELECT ` + customerColumns + ` FROM customers WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`,
	qCustomerByEmail: `SELECT ` + customerColumns + ` FROM customers WHERE tenant_id = $1 AND email = $2 AND deleted_at IS NULL`,
	qCustomerByPhone: `SELECT ` + customerColumns + ` FROM customers WHERE tenant_id = $1 AND phone = $2 AND deleted_at IS NULL`,
	qInsertCustomer:  `INSERT INTO customers (` + customerColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
	qUpdateCustomer: `UPDATE customers SET email = $1, phone = $2, email_verified = $3, phone_verified = $4, profile = $5,
		updated_at = $6, version = version + 1 WHERE tenant_id = $7 AND id = $8 AND version = $9 AND deleted_at IS NULL`,
	qInsertEvent:    `INSERT INTO events (` + eventColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
	qIdentity:       `SELECT tenant_id, provider, subject, customer_id, created_at FROM identities WHERE tenant_id = $1 AND provider = $2 AND subject = $3`,
	qInsertIdentity: `INSERT INTO identities (tenant_id, provider, subject, customer_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
	// The challenge with the counter of $1 || its destination on day $2, and
	// the account whose email or phone number is its destination (an email
	// is never a phone number: at most one of the two matches).
	qChallenge: `SELECT c.id, c.tenant_id, c.channel, c.destination, c.customer_id, c.code_hash, c.attempts, c.max_attempts,
		c.expires_at, c.consumed_at, c.created_at, c.pending,
		COALESCE((SELECT n.count FROM counters n WHERE n.tenant_id = c.tenant_id AND n.key = CAST($1 AS text) || c.destination AND n.day = $2), 0),
		h.id, h.tenant_id, h.email, h.phone, h.email_verified, h.phone_verified, h.profile, h.version, h.created_at, h.updated_at, h.deleted_at
		FROM challenges c LEFT JOIN customers h ON h.id = COALESCE(
			(SELECT e.id FROM customers e WHERE e.tenant_id = c.tenant_id AND e.email = c.destination AND e.deleted_at IS NULL),
			(SELECT p.id FROM customers p WHERE p.tenant_id = c.tenant_id AND p.phone = c.destination AND p.deleted_at IS NULL))
		WHERE c.tenant_id = $3 AND c.id = $4`,
	qInsertChallenge: `INSERT INTO challenges (` + challengeColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
	qConsumeChallenge: `UPDATE challenges SET consumed_at = $1
		WHERE tenant_id = $2 AND id = $3 AND consumed_at IS NULL AND attempts < max_attempts AND expires_at > $1`,
	qCounted: `SELECT count FROM counters WHERE tenant_id = $1 AND key = $2 AND day = $3`,
	qCount: `INSERT INTO counters (tenant_id, key, day, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (tenant_id, key, day) DO UPDATE SET count = counters.count + 1 RETURNING count`,
	// One statement, so that two replicas racing for the same key cannot both pass.
	qThrottle: `INSERT INTO throttles (tenant_id, key, last_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, key) DO UPDATE SET last_at = excluded.last_at WHERE throttles.last_at <= $4`,
}

// statements are the queries prepared on one pool.
type statements [numQueries]*sql.Stmt

// prepare prepares every query on pool. On SQLite's single writer
// connection this must happen before any transaction: preparing on the pool
// while a transaction holds its one connection would wait forever. Inside a
// transaction a statement is then bound to it (sql.Tx.StmtContext), which
// reuses what the connection prepared.
func prepare(ctx context.Context, pool *sql.DB) (*statements, error) {
	var st statements
	for q, text := range queries {
		p, err := pool.PrepareContext(ctx, text)
		if err != nil {
			closeStatements(&st)
			return nil, fmt.Errorf("prepare statement %d: %w", q, classify(err))
		}
		st[q] = p
	}
	return &st, nil
}

func closeStatements(st *statements) error {
	var errs []error
	for _, p := range st {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	return errors.Join(errs...)
}

// stmt is query q for this store: bound to the transaction inside Tx, else
// on the writer pool for writes and the reader pool for reads.
func (s *db) stmt(ctx context.Context, q query, write bool) *sql.Stmt {
	switch {
	case s.tx != nil:
		return s.tx.StmtContext(ctx, s.ws[q])
	case write:
		return s.ws[q]
	}
	return s.rs[q]
}

func (s *db) exec(ctx context.Context, q query, args ...any) (int64, error) {
	res, err := s.stmt(ctx, q, true).ExecContext(ctx, args...)
	if err != nil {
		return 0, classify(err)
	}
	n, err := res.RowsAffected()
	return n, classify(err)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanCustomer(row scanner) (*Customer, error) {
	var c Customer
	err := row.Scan(&c.ID, &c.TenantID, &c.Email, &c.Phone, &c.EmailVerified, &c.PhoneVerified, &c.Profile, &c.Version,
		&c.CreatedAt, &c.UpdatedAt, &c.DeletedAt)
	if err != nil {
		return nil, noRow(err)
	}
	return &c, nil
}

// noRow is err, ErrNotFound for no row, classified.
func noRow(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return classify(err)
}
