package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
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
	qAttempt
	qHolder
	qCharge
	qInsertChallenge
	qConsumeChallenge
	qNewestLive
	qCounted
	qCount
	qThrottle
	qLinked
	qEmailVerified
	numQueries
)

// The columns a Customer and a Challenge are read and written with.
const (
	customerColumns  = "id, tenant_id, email, phone, email_verified, phone_verified, profile, version, created_at, updated_at, deleted_at"
	challengeColumns = "id, tenant_id, channel, destination, customer_id, code_hash, attempts, max_attempts, expires_at, consumed_at, created_at, pending, purpose, token_issued_at, token_kid"
	// customerReadColumns are customerColumns and what only reads need.
	customerReadColumns = customerColumns + ", sessions_revoked_at"
	eventColumns        = "id, tenant_id, customer_id, type, payload, created_at, attempts, next_at, lease_until, delivered_at, dead_at, last_error"
)

// queries are in $n placeholders, which PostgreSQL and SQLite both read.
var queries = [numQueries]string{
	qCustomerByID:    `SELECT ` + customerReadColumns + ` FROM customers WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`,
	qCustomerByEmail: `SELECT ` + customerReadColumns + ` FROM customers WHERE tenant_id = $1 AND email = $2 AND deleted_at IS NULL`,
	qCustomerByPhone: `SELECT ` + customerReadColumns + ` FROM customers WHERE tenant_id = $1 AND phone = $2 AND deleted_at IS NULL`,
	qInsertCustomer:  `INSERT INTO customers (` + customerColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
	qUpdateCustomer: `UPDATE customers SET email = $1, phone = $2, email_verified = $3, phone_verified = $4, profile = $5,
		updated_at = $6, version = version + 1 WHERE tenant_id = $7 AND id = $8 AND version = $9 AND deleted_at IS NULL`,
	qInsertEvent: `INSERT INTO events (` + eventColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
	// An identity and the live account it links, in one read.
	qIdentity: `SELECT i.tenant_id, i.provider, i.subject, i.customer_id, i.created_at, ` + holderColumns + ` FROM identities i
		LEFT JOIN customers h ON h.tenant_id = i.tenant_id AND h.id = i.customer_id AND h.deleted_at IS NULL
		WHERE i.tenant_id = $1 AND i.provider = $2 AND i.subject = $3`,
	qInsertIdentity: `INSERT INTO identities (tenant_id, provider, subject, customer_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
	// SQLite's Verify in one UPDATE (PostgreSQL's is verifyStatement): the
	// attempt is spent only while the challenge is live; a right code ($4)
	// of a plain first sign-in on a channel of $8 (a JSON array), nobody
	// holding the destination, under the counter's limit, uses it up.
	qAttempt: `UPDATE challenges SET attempts = attempts + 1, consumed_at = CASE WHEN code_hash = $4 AND ` + sqliteCounted + ` < $7
			AND customer_id IS NULL AND pending = '' AND channel IN (SELECT value FROM json_each($8))
			AND NOT EXISTS (SELECT 1 FROM customers e WHERE e.tenant_id = challenges.tenant_id AND e.email = challenges.destination AND e.deleted_at IS NULL)
			AND NOT EXISTS (SELECT 1 FROM customers p WHERE p.tenant_id = challenges.tenant_id AND p.phone = challenges.destination AND p.deleted_at IS NULL)
			THEN $3 END
		WHERE tenant_id = $1 AND id = $2 AND consumed_at IS NULL AND attempts < max_attempts AND expires_at > $3
		RETURNING ` + challengeColumns + `, code_hash = $4, ` + sqliteCounted,
	// The live account of tenant $1 whose email or phone number is $2.
	qHolder: `SELECT ` + customerReadColumns + ` FROM customers WHERE tenant_id = $1 AND email = $2 AND deleted_at IS NULL
		UNION ALL SELECT ` + customerReadColumns + ` FROM customers WHERE tenant_id = $1 AND phone = $2 AND deleted_at IS NULL LIMIT 1`,
	// A wrong code's charge, only while the counter is under its limit.
	qCharge: `INSERT INTO counters (tenant_id, key, day, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (tenant_id, key, day) DO UPDATE SET count = counters.count + 1 WHERE counters.count < $4
		RETURNING count`,
	qInsertChallenge: `INSERT INTO challenges (` + challengeColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
	qConsumeChallenge: `UPDATE challenges SET consumed_at = $1
		WHERE tenant_id = $2 AND id = $3 AND consumed_at IS NULL AND attempts <= max_attempts AND expires_at > $1`,
	qNewestLive: `SELECT ` + challengeColumns + ` FROM challenges WHERE tenant_id = $1 AND destination = $2 AND purpose <> $3
		AND consumed_at IS NULL AND attempts < max_attempts AND expires_at > $4 ORDER BY created_at DESC LIMIT 1`,
	qCounted: `SELECT count FROM counters WHERE tenant_id = $1 AND key = $2 AND day = $3`,
	qCount: `INSERT INTO counters (tenant_id, key, day, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (tenant_id, key, day) DO UPDATE SET count = counters.count + 1 RETURNING count`,
	// One statement, so that two replicas racing for the same key cannot both pass.
	// A last use more than an interval ahead of now ($5) was made by a clock
	// that ran ahead and was stepped back: it holds nothing.
	qThrottle: `INSERT INTO throttles (tenant_id, key, last_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, key) DO UPDATE SET last_at = excluded.last_at WHERE throttles.last_at <= $4 OR throttles.last_at > $5`,
	// Whether an identity links the account: every anonymous request naming
	// an account reads it, whatever the account proved (the same work for
	// every address).
	qLinked: `SELECT EXISTS (SELECT 1 FROM identities WHERE tenant_id = $1 AND customer_id = $2)`,
	// Whether an address is an account's verified one, with one answer's
	// work whatever the account holds (its profile is not read).
	qEmailVerified: `SELECT EXISTS (SELECT 1 FROM customers WHERE tenant_id = $1 AND email = $2 AND email_verified AND deleted_at IS NULL)`,
}

// sqliteCounted is, in qAttempt, the challenge's counter ($5 prefix, $6 day).
const sqliteCounted = `COALESCE((SELECT count FROM counters k WHERE k.tenant_id = challenges.tenant_id AND k.key = $5 || challenges.destination AND k.day = $6), 0)`

// holderColumns are customerReadColumns of h, a customer LEFT JOINed (holder scans them).
var holderColumns = "h." + strings.ReplaceAll(customerReadColumns, ", ", ", h.")

// statements are the queries prepared on one pool.
type statements [numQueries]*sql.Stmt

// prepare prepares every query on pool. On SQLite's single writer
// connection this must happen before any transaction: preparing on the pool
// while a transaction holds its one connection would wait forever. Inside a
// transaction a statement is then bound to it (sql.Tx.StmtContext), which
// reuses what the connection prepared.
func prepare(ctx context.Context, pool *sql.DB, postgres bool) (*statements, error) {
	var st statements
	for q, text := range queries {
		if postgres && query(q) == qAttempt {
			continue // SQLite's; PostgreSQL's is verifyStatement
		}
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
		// Bound once per transaction: a batch's jobs share theirs.
		if s.bound == nil {
			s.bound = new(statements)
		}
		if s.bound[q] == nil {
			// Never with its caller's end: a statement bound by a caller that
			// has hung up keeps that error for every later use, and a batch's
			// jobs share their statements.
			s.bound[q] = s.tx.StmtContext(detached(ctx), s.ws[q])
		}
		return s.bound[q]
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
	err := row.Scan(c.fields()...)
	if err != nil {
		return nil, noRow(err)
	}
	return &c, nil
}

// fields are the scan destinations of customerReadColumns.
func (c *Customer) fields() []any {
	return []any{&c.ID, &c.TenantID, &c.Email, &c.Phone, &c.EmailVerified, &c.PhoneVerified, &c.Profile, &c.Version,
		&c.CreatedAt, &c.UpdatedAt, &c.DeletedAt, &c.SessionsRevokedAt}
}

// holder scans holderColumns, which a LEFT JOIN may leave NULL.
type holder struct {
	id, tenant                   sql.NullString
	email, phone                 *string
	emailVerified, phoneVerified sql.NullBool
	profile                      Profile
	version                      sql.NullInt64
	createdAt, updatedAt         sql.NullTime
	deletedAt, revokedAt         *time.Time
}

func (h *holder) fields() []any {
	return []any{&h.id, &h.tenant, &h.email, &h.phone, &h.emailVerified, &h.phoneVerified, &h.profile, &h.version,
		&h.createdAt, &h.updatedAt, &h.deletedAt, &h.revokedAt}
}

// customer is the account scanned, nil when the join found none.
func (h *holder) customer() *Customer {
	if !h.id.Valid {
		return nil
	}
	return &Customer{ID: h.id.String, TenantID: h.tenant.String, Email: h.email, Phone: h.phone, EmailVerified: h.emailVerified.Bool,
		PhoneVerified: h.phoneVerified.Bool, Profile: h.profile, Version: h.version.Int64, CreatedAt: h.createdAt.Time,
		UpdatedAt: h.updatedAt.Time, DeletedAt: h.deletedAt, SessionsRevokedAt: h.revokedAt}
}

// fields are the scan destinations of challengeColumns.
func (c *Challenge) fields() []any {
	return []any{&c.ID, &c.TenantID, &c.Channel, &c.Destination, &c.CustomerID, &c.CodeHash, &c.Attempts, &c.MaxAttempts,
		&c.ExpiresAt, &c.ConsumedAt, &c.CreatedAt, &c.Pending, &c.Purpose, &c.TokenIssuedAt, &c.TokenKID}
}

// noRow is err, ErrNotFound for no row, classified.
func noRow(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return classify(err)
}
