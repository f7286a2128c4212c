package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
	qAttemptByID
	qAttemptByDestination
	qCharge
	qInsertChallenge
	qConsumeChallenge
	qRefund
	qCounted
	qCount
	qThrottle
	numQueries
)

// The columns a Customer and a Challenge are read and written with.
const (
	customerColumns  = "id, tenant_id, email, phone, email_verified, phone_verified, profile, version, created_at, updated_at, deleted_at"
	challengeColumns = "id, tenant_id, channel, destination, customer_id, code_hash, attempts, max_attempts, expires_at, consumed_at, created_at, pending, purpose"
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
	qInsertEvent:    `INSERT INTO events (` + eventColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
	qIdentity:       `SELECT tenant_id, provider, subject, customer_id, created_at FROM identities WHERE tenant_id = $1 AND provider = $2 AND subject = $3`,
	qInsertIdentity: `INSERT INTO identities (tenant_id, provider, subject, customer_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
	// One attempt, in one statement: the challenge's attempt is spent only
	// while it is live, the counter is charged only while under its limit
	// (the row locks make concurrent attempts wait and re-check), and the
	// account holding the destination comes back with them.
	qAttemptByID:          attemptStatement(`c.tenant_id = $1 AND c.id = $2`),
	qAttemptByDestination: attemptStatement(`c.tenant_id = $1 AND c.id = (` + newestLive + `)`),
	qCharge:               `SELECT 1`, // SQLite only (below)
	qInsertChallenge:      `INSERT INTO challenges (` + challengeColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
	// The successful attempt's counter unit is given back in the same statement.
	qConsumeChallenge: `WITH used AS (UPDATE challenges SET consumed_at = $1
		WHERE tenant_id = $2 AND id = $3 AND consumed_at IS NULL AND attempts <= max_attempts AND expires_at > $1 RETURNING id),
		refund AS (UPDATE counters SET count = count - 1
		WHERE tenant_id = $2 AND key = $4 AND day = $5 AND count > 0 AND EXISTS (SELECT 1 FROM used))
		SELECT count(*) FROM used`,
	qRefund:  `SELECT 1`, // SQLite only (below)
	qCounted: `SELECT count FROM counters WHERE tenant_id = $1 AND key = $2 AND day = $3`,
	qCount: `INSERT INTO counters (tenant_id, key, day, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (tenant_id, key, day) DO UPDATE SET count = counters.count + 1 RETURNING count`,
	// One statement, so that two replicas racing for the same key cannot both pass.
	qThrottle: `INSERT INTO throttles (tenant_id, key, last_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, key) DO UPDATE SET last_at = excluded.last_at WHERE throttles.last_at <= $4`,
}

// newestLive is the id of the newest live challenge of tenant $1 to
// destination $2 whose purpose is not $3 (now is $5).
const newestLive = `SELECT l.id FROM challenges l WHERE l.tenant_id = $1 AND l.destination = $2 AND l.purpose <> $3
	AND l.consumed_at IS NULL AND l.attempts < l.max_attempts AND l.expires_at > $5 ORDER BY l.created_at DESC LIMIT 1`

// attemptStatement is PostgreSQL's attempt on the challenge that where
// selects; its parameters are $1 tenant, $2 id or destination, $3 the
// purpose excluded, $4 counter prefix, $5 now, $6 day, $7 limit.
func attemptStatement(where string) string {
	return `WITH c AS (UPDATE challenges c SET attempts = c.attempts + 1
		WHERE ` + where + ` AND CAST($3 AS text) IS NOT NULL
		AND c.consumed_at IS NULL AND c.attempts < c.max_attempts AND c.expires_at > $5
		RETURNING c.id, c.tenant_id, c.channel, c.destination, c.customer_id, c.code_hash, c.attempts, c.max_attempts,
		c.expires_at, c.consumed_at, c.created_at, c.pending, c.purpose),
	n AS (INSERT INTO counters (tenant_id, key, day, count) SELECT c.tenant_id, CAST($4 AS text) || c.destination, $6, 1 FROM c
		ON CONFLICT (tenant_id, key, day) DO UPDATE SET count = counters.count + 1 WHERE counters.count < $7
		RETURNING count)
	SELECT c.id, c.tenant_id, c.channel, c.destination, c.customer_id, c.code_hash, c.attempts, c.max_attempts,
		c.expires_at, c.consumed_at, c.created_at, c.pending, c.purpose, (SELECT n.count FROM n),
		h.id, h.tenant_id, h.email, h.phone, h.email_verified, h.phone_verified, h.profile, h.version, h.created_at, h.updated_at, h.deleted_at
	FROM c LEFT JOIN customers h ON h.id = COALESCE(
		(SELECT e.id FROM customers e WHERE e.tenant_id = c.tenant_id AND e.email = c.destination AND e.deleted_at IS NULL),
		(SELECT p.id FROM customers p WHERE p.tenant_id = c.tenant_id AND p.phone = c.destination AND p.deleted_at IS NULL))`
}

// sqliteQueries replace queries on SQLite, which has no data-modifying
// WITH: an attempt is a few statements in one transaction of its single
// writer, which is as atomic.
var sqliteQueries = map[query]string{
	qAttemptByID: `UPDATE challenges SET attempts = attempts + 1
		WHERE tenant_id = $1 AND id = $2 AND CAST($3 AS text) IS NOT NULL
		AND consumed_at IS NULL AND attempts < max_attempts AND expires_at > $4
		RETURNING ` + challengeColumns,
	qAttemptByDestination: `UPDATE challenges SET attempts = attempts + 1
		WHERE tenant_id = $1 AND id = (` + strings.ReplaceAll(newestLive, "$5", "$4") + `)
		AND consumed_at IS NULL AND attempts < max_attempts AND expires_at > $4
		RETURNING ` + challengeColumns,
	qCharge: `INSERT INTO counters (tenant_id, key, day, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (tenant_id, key, day) DO UPDATE SET count = counters.count + 1 WHERE counters.count < $4
		RETURNING count`,
	qConsumeChallenge: `UPDATE challenges SET consumed_at = $1
		WHERE tenant_id = $2 AND id = $3 AND consumed_at IS NULL AND attempts <= max_attempts AND expires_at > $1`,
	qRefund: `UPDATE counters SET count = count - 1 WHERE tenant_id = $1 AND key = $2 AND day = $3 AND count > 0`,
}

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
		if alt, ok := sqliteQueries[query(q)]; ok && !postgres {
			text = alt
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
		&c.CreatedAt, &c.UpdatedAt, &c.DeletedAt, &c.SessionsRevokedAt)
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
