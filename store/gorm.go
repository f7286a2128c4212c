package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	moderncsqlite "modernc.org/sqlite"
)

// db implements Store with GORM. w takes every write; r every read outside a
// transaction. On PostgreSQL they are one pool; on SQLite w is a single
// connection (writers queue in Go instead of spinning on SQLITE_BUSY) and r
// a pool of readers that WAL lets run beside it.
type db struct {
	w, r *gorm.DB
	// ws and rs are the hot queries prepared on w and r (one set on
	// PostgreSQL); tx is set inside Tx, where every query goes through ws.
	ws, rs *statements
	tx     *sql.Tx
	// bound are ws bound to tx, as they are first used.
	bound *statements
	// wdb is w's pool, for the statements that are not prepared queries.
	wdb *sql.DB
	// batch is SQLite's group commit, which every transaction goes through.
	batch *batcher
	close func() error
	// url is the database's address, for connections outside the pool (WatchTenants).
	url string
}

var _ Store = (*db)(nil)

func (s *db) Tx(ctx context.Context, fn func(Store) error) error {
	if s.batch != nil && s.tx == nil {
		// SQLite: in the next group commit, inside a savepoint of its own
		// (batcher), on the one writer a transaction would wait for anyway.
		return classify(s.batch.do(ctx, func(st *db) error { return fn(st) }))
	}
	err := s.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
		if !ok {
			return fmt.Errorf("transaction: unexpected connection %T", tx.Statement.ConnPool)
		}
		return fn(&db{w: tx, r: tx, ws: s.ws, tx: sqlTx, close: func() error { return nil }})
	})
	return classify(err)
}

// transaction runs fn in a transaction (Tx: on SQLite a job of the group
// commit), with GORM's handle of it.
func (s *db) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.Tx(ctx, func(st Store) error { return fn(st.(*db).w.WithContext(ctx)) })
}

func (s *db) Ping(ctx context.Context) error {
	for _, g := range []*gorm.DB{s.w, s.r} {
		sqlDB, err := g.DB()
		if err != nil {
			return classify(err)
		}
		if err := sqlDB.PingContext(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

func (s *db) Close() error { return s.close() }

func customerValues(c *Customer) []any {
	if c.Version == 0 {
		c.Version = 1
	}
	return []any{c.ID, c.TenantID, c.Email, c.Phone, c.EmailVerified, c.PhoneVerified, c.Profile, c.Version,
		c.CreatedAt.UTC(), c.UpdatedAt.UTC(), utcOrNil(c.DeletedAt)}
}

func eventValues(e *Event) []any {
	e.CreatedAt = e.CreatedAt.UTC()
	if e.NextAt.IsZero() {
		e.NextAt = e.CreatedAt
	}
	e.NextAt = e.NextAt.UTC()
	return []any{e.ID, e.TenantID, e.CustomerID, e.Type, e.Payload, e.CreatedAt, e.Attempts, e.NextAt,
		utcOrNil(e.LeaseUntil), utcOrNil(e.DeliveredAt), utcOrNil(e.DeadAt), e.LastError}
}

func utcOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

func (s *db) CreateCustomer(ctx context.Context, c *Customer) error {
	_, err := s.exec(ctx, qInsertCustomer, customerValues(c)...)
	return err
}

func (s *db) CreateAccount(ctx context.Context, a *NewAccount) error {
	switch {
	case s.postgres():
		return s.createAccountStatement(ctx, a)
	}
	return s.Tx(ctx, func(tx Store) error { return tx.(*db).writeAccount(ctx, a) })
}

// createAccountStatement is CreateAccount on PostgreSQL as one statement, so
// one round trip: each write of the chain happens only when the one before
// it did (the account only when the challenge was consumed), and a unique
// violation anywhere undoes them all.
func (s *db) createAccountStatement(ctx context.Context, a *NewAccount) error {
	var ch chain
	from := ""
	if u := a.Consume; u != nil {
		at := ch.param("timestamptz", u.At.UTC())
		ch.with("consumed", `UPDATE challenges SET consumed_at = `+at+` WHERE tenant_id = `+ch.param("text", a.Customer.TenantID)+
			` AND id = `+ch.param("text", u.ID)+` AND consumed_at IS NULL AND attempts <= max_attempts AND expires_at > `+at+` RETURNING id`)
		from = " FROM consumed"
	}
	ch.account(a, from)
	var n int
	if err := s.queryRow(ctx, ch.String()+" SELECT count(*) FROM customer", ch.args...).Scan(&n); err != nil {
		return classify(err)
	}
	if n == 0 {
		return ErrSpent
	}
	return nil
}

// chain is one PostgreSQL statement of data-modifying WITH queries, each
// writing only when the one it reads from returned a row.
type chain struct {
	q    strings.Builder
	args []any
}

// param adds a parameter, cast: PostgreSQL infers no type for the
// parameters of a SELECT list or of VALUES.
func (ch *chain) param(typ string, v any) string {
	ch.args = append(ch.args, v)
	return "CAST($" + strconv.Itoa(len(ch.args)) + " AS " + typ + ")"
}

func (ch *chain) params(types []string, values []any) string {
	parts := make([]string, len(types))
	for i, typ := range types {
		parts[i] = ch.param(typ, values[i])
	}
	return strings.Join(parts, ", ")
}

// with adds the query name AS (body).
func (ch *chain) with(name, body string) {
	if ch.q.Len() == 0 {
		ch.q.WriteString("WITH ")
	} else {
		ch.q.WriteString(", ")
	}
	ch.q.WriteString(name + " AS (" + body + ")")
}

func (ch *chain) String() string { return ch.q.String() }

// The types of customerValues and eventValues.
var (
	customerTypes = []string{"text", "text", "text", "text", "boolean", "boolean", "jsonb", "bigint", "timestamptz", "timestamptz", "timestamptz"}
	eventTypes    = []string{"text", "text", "text", "text", "text", "timestamptz", "integer", "timestamptz", "timestamptz", "timestamptz",
		"timestamptz", "text"}
)

// account adds the writes of a's account, its identity and its events as
// customer, identity and outbox, written only when from (a FROM clause of
// the queries before, or "") returns a row. a.Consume is not part of them.
func (ch *chain) account(a *NewAccount, from string) {
	ch.with("customer", `INSERT INTO customers (`+customerColumns+`) SELECT `+ch.params(customerTypes, customerValues(a.Customer))+
		from+` RETURNING id`)
	if id := a.Identity; id != nil {
		ch.with("identity", `INSERT INTO identities (tenant_id, provider, subject, customer_id, created_at) SELECT `+
			ch.params([]string{"text", "text", "text"}, []any{id.TenantID, id.Provider, id.Subject})+`, customer.id, `+
			ch.param("timestamptz", id.CreatedAt.UTC())+` FROM customer`)
	}
	if len(a.Events) > 0 {
		rows := make([]string, len(a.Events))
		for i, e := range a.Events {
			rows[i] = "(" + ch.params(eventTypes, eventValues(e)) + ")"
		}
		ch.with("outbox", `INSERT INTO events (`+eventColumns+`) SELECT e.* FROM customer, (VALUES `+strings.Join(rows, ", ")+
			`) AS e (`+eventColumns+`)`)
	}
}

// raw is where a statement that is not one of the prepared queries runs:
// the transaction inside Tx, else the writer (pgx prepares it once per
// connection all the same).
func (s *db) raw() interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
} {
	if s.tx != nil {
		return s.tx
	}
	return s.wdb
}

func (s *db) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.raw().QueryRowContext(ctx, q, args...)
}

func (s *db) UpdateCustomer(ctx context.Context, c *Customer) error {
	n, err := s.exec(ctx, qUpdateCustomer, c.Email, c.Phone, c.EmailVerified, c.PhoneVerified, c.Profile, c.UpdatedAt.UTC(),
		c.TenantID, c.ID, c.Version)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrStale
	}
	c.Version++
	return nil
}

func (s *db) Customer(ctx context.Context, tenant, id string) (*Customer, error) {
	return scanCustomer(s.stmt(ctx, qCustomerByID, false).QueryRowContext(ctx, tenant, id))
}

func (s *db) CustomerByEmail(ctx context.Context, tenant, email string) (*Customer, error) {
	return scanCustomer(s.stmt(ctx, qCustomerByEmail, false).QueryRowContext(ctx, tenant, email))
}

func (s *db) CustomerByPhone(ctx context.Context, tenant, phone string) (*Customer, error) {
	return scanCustomer(s.stmt(ctx, qCustomerByPhone, false).QueryRowContext(ctx, tenant, phone))
}

func (s *db) DeleteCustomer(ctx context.Context, tenant, id string, at time.Time) error {
	res := s.w.WithContext(ctx).Model(&Customer{}).
		Where("tenant_id = ? AND id = ? AND deleted_at IS NULL", tenant, id).
		Update("deleted_at", at.UTC())
	if err := classify(res.Error); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *db) LinkIdentity(ctx context.Context, id *Identity) error {
	_, err := s.exec(ctx, qInsertIdentity, id.TenantID, id.Provider, id.Subject, id.CustomerID, id.CreatedAt.UTC())
	return err
}

func (s *db) Identity(ctx context.Context, tenant, provider, subject string) (*Identity, error) {
	var (
		id Identity
		h  holder
	)
	err := s.stmt(ctx, qIdentity, false).QueryRowContext(ctx, tenant, provider, subject).
		Scan(append([]any{&id.TenantID, &id.Provider, &id.Subject, &id.CustomerID, &id.CreatedAt}, h.fields()...)...)
	if err != nil {
		return nil, noRow(err)
	}
	id.Account = h.customer()
	return &id, nil
}

func (s *db) Linked(ctx context.Context, tenant, customer string) (bool, error) {
	return s.exists(ctx, qLinked, tenant, customer)
}

func (s *db) EmailVerified(ctx context.Context, tenant, email string) (bool, error) {
	return s.exists(ctx, qEmailVerified, tenant, email)
}

// exists answers q, a SELECT EXISTS.
func (s *db) exists(ctx context.Context, q query, args ...any) (bool, error) {
	var ok bool
	err := s.stmt(ctx, q, false).QueryRowContext(ctx, args...).Scan(&ok)
	return ok, classify(err)
}

func (s *db) UnlinkIdentity(ctx context.Context, tenant, provider, subject string) error {
	return classify(s.w.WithContext(ctx).
		Where("tenant_id = ? AND provider = ? AND subject = ?", tenant, provider, subject).Delete(&Identity{}).Error)
}

func (s *db) CreateChallenge(ctx context.Context, c *Challenge) error {
	_, err := s.exec(ctx, qInsertChallenge, c.ID, c.TenantID, c.Channel, c.Destination, c.CustomerID, c.CodeHash, c.Attempts,
		c.MaxAttempts, c.ExpiresAt.UTC(), utcOrNil(c.ConsumedAt), c.CreatedAt.UTC(), c.Pending, c.Purpose, utcOrNil(c.TokenIssuedAt),
		c.TokenKID)
	return err
}

func (s *db) LiveChallenge(ctx context.Context, tenant, destination, purpose string, now time.Time) (*Challenge, error) {
	var c Challenge
	q := s.r.WithContext(ctx).
		Where("tenant_id = ? AND destination = ? AND consumed_at IS NULL AND attempts < max_attempts AND expires_at > ?",
			tenant, destination, now.UTC())
	if purpose != "" {
		q = q.Where("purpose = ?", purpose)
	}
	err := q.Order("created_at DESC").Take(&c).Error
	if err != nil {
		return nil, classify(err)
	}
	return &c, nil
}

func (s *db) ExpireChallenge(ctx context.Context, tenant, id string) error {
	return classify(s.w.WithContext(ctx).Where("tenant_id = ? AND id = ?", tenant, id).Delete(&Challenge{}).Error)
}

func (s *db) RehashChallenge(ctx context.Context, tenant, id, codeHash string) error {
	res := s.w.WithContext(ctx).Model(&Challenge{}).Where("tenant_id = ? AND id = ?", tenant, id).Update("code_hash", codeHash)
	if err := classify(res.Error); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *db) Challenge(ctx context.Context, tenant, id string) (*Challenge, error) {
	var c Challenge
	if err := s.r.WithContext(ctx).Where("tenant_id = ? AND id = ?", tenant, id).Take(&c).Error; err != nil {
		return nil, classify(err)
	}
	return &c, nil
}

func scanChallenge(row scanner) (*Challenge, error) {
	var c Challenge
	if err := row.Scan(c.fields()...); err != nil {
		return nil, noRow(err)
	}
	return &c, nil
}

func (s *db) ConsumeChallenge(ctx context.Context, tenant string, u ChallengeUse) (bool, error) {
	n, err := s.exec(ctx, qConsumeChallenge, u.At.UTC(), tenant, u.ID)
	return n == 1, err
}

func (s *db) Throttle(ctx context.Context, tenant, key string, now time.Time, interval time.Duration) (time.Duration, error) {
	now = now.UTC()
	n, err := s.exec(ctx, qThrottle, tenant, key, now, now.Add(-interval), now.Add(interval))
	if err != nil {
		return 0, err
	}
	if n == 1 {
		return 0, nil
	}
	var last time.Time
	if err := s.w.WithContext(ctx).Raw(`SELECT last_at FROM throttles WHERE tenant_id = ? AND key = ?`,
		tenant, key).Row().Scan(&last); err != nil {
		return 0, classify(err)
	}
	// Never longer than the interval, whatever clock wrote last_at.
	return min(max(last.Add(interval).Sub(now), time.Nanosecond), interval), nil
}

func (s *db) Unthrottle(ctx context.Context, tenant, key string, at time.Time) error {
	return classify(s.w.WithContext(ctx).
		Exec(`DELETE FROM throttles WHERE tenant_id = ? AND key = ? AND last_at = ?`, tenant, key, at.UTC()).Error)
}

func (s *db) Count(ctx context.Context, tenant, key, day string) (int, error) {
	var n int
	if err := s.stmt(ctx, qCount, true).QueryRowContext(ctx, tenant, key, day).Scan(&n); err != nil {
		return 0, classify(err)
	}
	return n, nil
}

func (s *db) Counted(ctx context.Context, tenant, key, day string) (int, error) {
	var n int
	err := s.stmt(ctx, qCounted, false).QueryRowContext(ctx, tenant, key, day).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, classify(err)
}

func (s *db) AddSigningKey(ctx context.Context, k *SigningKey) error {
	return classify(s.w.WithContext(ctx).Create(k).Error)
}

func (s *db) NewestSigningKey(ctx context.Context) (*SigningKey, error) {
	var k SigningKey
	err := s.r.WithContext(ctx).Order(clause.OrderByColumn{Column: clause.Column{Name: "created_at"}, Desc: true}).Take(&k).Error
	if err != nil {
		return nil, classify(err)
	}
	return &k, nil
}

func (s *db) RetireSigningKeys(ctx context.Context, tenant, keep string, at time.Time) (int, error) {
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&SigningKey{}).Where("tenant_id = ? AND kid <> ? AND retired_at IS NULL", tenant, keep).
			Update("retired_at", at.UTC())
		if n = res.RowsAffected; res.Error != nil {
			return res.Error
		}
		// A contact change is asked with a token, which a retired key may
		// have signed: it does not outlive it.
		return tx.Exec("DELETE FROM challenges WHERE tenant_id = ? AND purpose = 'contact' AND consumed_at IS NULL AND created_at <= ?",
			tenant, at.UTC()).Error
	})
	return int(n), classify(err)
}

func (s *db) SigningKeys(ctx context.Context, tenant string) ([]SigningKey, error) {
	var keys []SigningKey
	err := s.r.WithContext(ctx).Where("tenant_id = ?", tenant).
		Order(clause.OrderByColumn{Column: clause.Column{Name: "created_at"}, Desc: true}).
		Order("kid DESC").Find(&keys).Error
	return keys, classify(err)
}

func (s *db) Purge(ctx context.Context, c Cutoffs) error {
	g := s.w.WithContext(ctx)
	for _, q := range purges(c) {
		// A batch at a time, each its own statement: on SQLite the janitor
		// holds the one writer, every request's write waits meanwhile.
		for {
			res := g.Exec(q.sql, q.before, purgeBatch)
			if err := classify(res.Error); err != nil {
				return err
			}
			if res.RowsAffected < purgeBatch {
				break
			}
		}
	}
	return s.purgeDelivered(g, c.DeliveredEvents.UTC())
}

// The events delivered before a cutoff have no index of their own: one on
// delivered_at would be written with every event, on every sign-in's path,
// for the janitor's hourly pass. purgeDelivered walks the events by seq
// instead, from the oldest, a batch at a time (purgeWalk), deleting the
// delivered ones in the batch's range (purgeDeliveredRange), and stops at
// the first batch that reaches an event created after the cutoff: seq
// follows creation, and an event is delivered after it is created. What
// it reads each hour is the events older than the cutoff it keeps
// (undelivered, dead) and one batch.
//
// A delivered Customer:ContactChanged goes no earlier than the earlier
// events of its account: an erasure finds the accounts its customer's
// address left only by the "previous" of their contact changes (leftBy),
// and the earlier events are the ones that may name the address. One
// customer's events are delivered in order, so they normally go in the
// same pass; but a dead event is never purged (it is replayed, and
// exported), and a replayed one is delivered, and kept, later than the
// change: without the change, the erasure no longer found the account and
// left the address in that event. The earlier events are read by
// events_customer, for the contact changes of the range only. The other
// way, each erasure reading every dead event of its tenant (a day of them
// after a receiver's outage), would cost every erasure, inside its
// transaction, where this costs the hourly purge a lookup per contact
// change and keeps nothing when no event died.
const (
	purgeWalk           = `SELECT seq, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?`
	purgeDeliveredRange = `DELETE FROM events WHERE seq > ? AND seq <= ? AND delivered_at < ?
		AND (type <> 'Customer:ContactChanged' OR NOT EXISTS (SELECT 1 FROM events p
			WHERE p.tenant_id = events.tenant_id AND p.customer_id = events.customer_id AND p.seq < events.seq
			  AND (p.delivered_at IS NULL OR p.delivered_at >= ?)))`
)

func (s *db) purgeDelivered(g *gorm.DB, cutoff time.Time) error {
	var after int64
	for {
		var batch []struct {
			Seq       int64
			CreatedAt time.Time
		}
		if err := g.Raw(purgeWalk, after, purgeBatch).Scan(&batch).Error; err != nil {
			return classify(err)
		}
		if len(batch) == 0 {
			return nil
		}
		last := batch[len(batch)-1]
		if err := g.Exec(purgeDeliveredRange, after, last.Seq, cutoff, cutoff).Error; err != nil {
			return classify(err)
		}
		if len(batch) < purgeBatch || !last.CreatedAt.Before(cutoff) {
			return nil
		}
		after = last.Seq
	}
}

// purgeBatch is how many rows one of the janitor's statements deletes at
// most.
const purgeBatch = 1000

// purgeStatement deletes up to purgeBatch rows (its second argument) of
// one table older than before, found by an index.
type purgeStatement struct {
	table, sql string
	before     any
}

// purges are the janitor's statements for the cutoffs c but the delivered
// events' (purgeDelivered). Each finds its rows by index (00017): a scan of
// the delivered events, 30 days of them, held SQLite's writer for 0.4 s at
// 600,000 events even with nothing to delete, every hour.
func purges(c Cutoffs) []purgeStatement {
	return []purgeStatement{
		{"challenges", `DELETE FROM challenges WHERE id IN (SELECT id FROM challenges WHERE expires_at < ? LIMIT ?)`, c.ChallengesExpired.UTC()},
		{"counters", `DELETE FROM counters WHERE (tenant_id, key, day) IN
			(SELECT tenant_id, key, day FROM counters WHERE day < ? LIMIT ?)`, c.CounterDays},
		{"throttles", `DELETE FROM throttles WHERE (tenant_id, key) IN
			(SELECT tenant_id, key FROM throttles WHERE last_at < ? LIMIT ?)`, c.Throttles.UTC()},
		{"idempotency_keys", `DELETE FROM idempotency_keys WHERE (tenant_id, key) IN
			(SELECT tenant_id, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)`, c.IdempotencyKeys.UTC()},
		{"challenges", `DELETE FROM challenges WHERE id IN (SELECT ch.id FROM customers cu JOIN challenges ch
			ON ch.tenant_id = cu.tenant_id AND ch.customer_id = cu.id
			WHERE cu.deleted_at IS NOT NULL AND cu.deleted_at >= ? LIMIT ?)`, c.Erased.UTC()},
	}
}

// postgres reports the dialect.
func (s *db) postgres() bool { return s.w.Name() == "postgres" }

func (s *db) AddEvent(ctx context.Context, e *Event) error {
	_, err := s.exec(ctx, qInsertEvent, eventValues(e)...)
	return err
}

func (s *db) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]Event, error) {
	now = now.UTC()
	due, args := claimDue, []any{now.Add(lease), now, now}
	if len(skip) > 0 {
		// Only with tenants to skip: NOT IN of an empty list is NOT IN (NULL), which keeps nothing.
		due = strings.Replace(due, "ORDER BY", "AND e.tenant_id NOT IN ?\n\t\tORDER BY", 1)
		args = append(args, skip)
	}
	args = append(args, limit)
	lock := ""
	if s.postgres() {
		lock = " FOR UPDATE SKIP LOCKED" // replicas skip what another is claiming
	}
	var out []Event
	err := s.w.WithContext(ctx).Raw(`UPDATE events SET lease_until = ? WHERE seq IN (`+due+lock+`) RETURNING *`, args...).Scan(&out).Error
	if err != nil {
		return nil, classify(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (s *db) ReleaseEvents(ctx context.Context, evs []Event) error {
	// By the lease each was claimed with: one run out since may be another
	// replica's now, and ending it would let a third deliver it meanwhile.
	byLease := map[time.Time][]string{}
	for _, e := range evs {
		if e.LeaseUntil != nil {
			byLease[*e.LeaseUntil] = append(byLease[*e.LeaseUntil], e.ID)
		}
	}
	for until, ids := range byLease {
		err := s.w.WithContext(ctx).Exec(`UPDATE events SET lease_until = NULL
			WHERE id IN ? AND lease_until = ? AND delivered_at IS NULL AND dead_at IS NULL`, ids, until).Error
		if err != nil {
			return classify(err)
		}
	}
	return nil
}

// claimDue selects the events due now ($1), their lease run out ($2), each
// its customer's oldest undelivered one, up to $3. Earliest due first: the
// order of events_due, the partial index of undelivered events, so that
// both databases read only those (ordered by seq, SQLite read the whole
// table, delivered events included, on every poll, holding the writer).
// Each customer's events still go in order: a later one is not due while
// an earlier one is undelivered.
const claimDue = `SELECT e.seq FROM events e
		WHERE e.delivered_at IS NULL AND e.dead_at IS NULL AND e.next_at <= ?
		  AND (e.lease_until IS NULL OR e.lease_until <= ?)
		  AND NOT EXISTS (SELECT 1 FROM events p WHERE p.tenant_id = e.tenant_id AND p.customer_id = e.customer_id
		                  AND p.seq < e.seq AND p.delivered_at IS NULL AND p.dead_at IS NULL)
		ORDER BY e.next_at, e.seq LIMIT ?`

func (s *db) EventsDelivered(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	// By id, through its unique index: PostgreSQL reads an array, SQLite a JSON one.
	in, list := "id IN (SELECT value FROM json_each($2))", any(nil)
	if s.postgres() {
		in, list = "id = ANY($2)", ids
	} else {
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		list = string(b)
	}
	_, err := s.raw().ExecContext(ctx, `UPDATE events SET delivered_at = $1, lease_until = NULL, attempts = attempts + 1, last_error = ''
		WHERE `+in, at.UTC(), list)
	return classify(err)
}

func (s *db) EventFailed(ctx context.Context, id string, next time.Time, dead bool, reason string) error {
	set := map[string]any{"next_at": next.UTC(), "lease_until": nil, "attempts": gorm.Expr("attempts + 1"), "last_error": reason}
	if dead {
		set["dead_at"] = time.Now().UTC()
	}
	return s.updateEvent(ctx, id, set)
}

func (s *db) updateEvent(ctx context.Context, id string, set map[string]any) error {
	res := s.w.WithContext(ctx).Model(&Event{}).Where("id = ?", id).Updates(set)
	if err := classify(res.Error); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *db) Events(ctx context.Context, q EventQuery) ([]Event, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	g := s.r.WithContext(ctx).Model(&Event{})
	if q.Tenant != "" {
		g = g.Where("tenant_id = ?", q.Tenant)
	}
	if q.Failed {
		g = g.Where("dead_at IS NOT NULL")
	}
	if len(q.IDs) > 0 {
		g = g.Where("id IN ?", q.IDs)
	}
	var out []Event
	err := g.Order("seq").Limit(q.Limit).Find(&out).Error
	return out, classify(err)
}

func (s *db) ReplayEvents(ctx context.Context, tenant string, ids []string, now time.Time) (int, error) {
	// Never an event of a customer erased since: its data is gone, and it
	// would reach the receivers after the customer's Customer:Deleted
	// (written at the erasure's own time, so replayed as any other).
	g := s.w.WithContext(ctx).Model(&Event{}).Where(`dead_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM customers c
		WHERE c.tenant_id = events.tenant_id AND c.id = events.customer_id AND c.deleted_at > events.created_at)`)
	if tenant != "" {
		g = g.Where("tenant_id = ?", tenant)
	}
	if len(ids) > 0 {
		g = g.Where("id IN ?", ids)
	}
	res := g.Updates(map[string]any{"dead_at": nil, "attempts": 0, "next_at": now.UTC(), "lease_until": nil, "replayed_at": now.UTC()})
	return int(res.RowsAffected), classify(res.Error)
}

func (s *db) BeginIdempotent(ctx context.Context, r *IdempotentRequest) (*IdempotentRequest, error) {
	r.CreatedAt = r.CreatedAt.UTC().Truncate(Precision) // as read back: it names the request (held)
	res := s.w.WithContext(ctx).Exec(`INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, content_type, created_at)
		VALUES (?, ?, ?, 0, '', ?) ON CONFLICT (tenant_id, key) DO NOTHING`, r.TenantID, r.Key, r.RequestHash, r.CreatedAt)
	if err := classify(res.Error); err != nil {
		return nil, err
	}
	if res.RowsAffected == 1 {
		return nil, nil
	}
	var got IdempotentRequest
	err := s.w.WithContext(ctx).Where("tenant_id = ? AND key = ?", r.TenantID, r.Key).Take(&got).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// Forgotten between the two statements (its request failed): the
		// key is free again.
		return s.BeginIdempotent(ctx, r)
	}
	if err != nil {
		return nil, classify(err)
	}
	return &got, ErrConflict
}

// TakeOverIdempotent gives r the key of a request still running that began
// before abandonedBefore (its replica died before answering), or of any
// request that began before expiredBefore (the key's time is up, whether
// the janitor deleted it yet or not): true when this call took it, false
// when another retry did first, or it finished.
func (s *db) TakeOverIdempotent(ctx context.Context, r *IdempotentRequest, abandonedBefore, expiredBefore time.Time) (bool, error) {
	res := s.w.WithContext(ctx).Model(&IdempotentRequest{}).
		Where("tenant_id = ? AND key = ? AND (status = 0 AND created_at < ? OR created_at < ?)",
			r.TenantID, r.Key, abandonedBefore.UTC(), expiredBefore.UTC()).
		Updates(map[string]any{"request_hash": r.RequestHash, "created_at": r.CreatedAt.UTC().Truncate(Precision),
			"status": 0, "content_type": "", "body": nil})
	return res.RowsAffected == 1, classify(res.Error)
}

// held is r's key while r holds it: running, with the request hash and
// created_at that r began or took it over with (TakeOverIdempotent rewrites
// both). Once another took it over, a request that ran past abandoned finds
// no row: its answer goes under nobody's request.
func held(g *gorm.DB, r *IdempotentRequest) *gorm.DB {
	return g.Where("tenant_id = ? AND key = ? AND request_hash = ? AND created_at = ? AND status = 0",
		r.TenantID, r.Key, r.RequestHash, r.CreatedAt.UTC().Truncate(Precision))
}

// locked is q reading its rows under a lock of strength (clause's
// LockingStrengthUpdate, LockingStrengthShare) on PostgreSQL; on SQLite a
// transaction holds the one writer, which locks enough.
func (s *db) locked(q *gorm.DB, strength string) *gorm.DB {
	if !s.postgres() {
		return q
	}
	return q.Clauses(clause.Locking{Strength: strength})
}

func (s *db) FinishIdempotent(ctx context.Context, r *IdempotentRequest, status int, contentType string, body []byte, customer string) error {
	finish := func(g *gorm.DB) error {
		res := held(g.Model(&IdempotentRequest{}), r).
			Updates(map[string]any{"status": status, "content_type": contentType, "body": body})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	}
	if customer == "" {
		return classify(finish(s.w.WithContext(ctx))) // an answer of no account: one statement, as before
	}
	return classify(s.transaction(ctx, func(tx *gorm.DB) error {
		// Read under a share of the account's row lock, which an erasure
		// takes first (EraseCustomer): either this answer is kept before
		// the erasure, which then forgets it with the others that show the
		// account, or the erasure has committed and it is not kept. Locked
		// whatever the row holds: one an erasure is changing is waited
		// for, then read as the erasure left it.
		var c Customer
		err := s.locked(tx.Select("id", "deleted_at").Where("tenant_id = ? AND id = ?", r.TenantID, customer), clause.LockingStrengthShare).
			Take(&c).Error
		switch {
		case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
			return err
		case err == nil && c.DeletedAt != nil:
			return held(tx, r).Delete(&IdempotentRequest{}).Error
		}
		return finish(tx)
	}))
}

func (s *db) ForgetIdempotent(ctx context.Context, r *IdempotentRequest) error {
	return classify(held(s.w.WithContext(ctx), r).Delete(&IdempotentRequest{}).Error)
}

// classify maps driver errors onto the store's sentinel errors, keeping the
// original for logs (never for responses).
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrStale) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, ErrSpent) {
		return err
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	var sqliteErr *moderncsqlite.Error
	if errors.Is(err, gorm.ErrDuplicatedKey) || errors.As(err, &sqliteErr) && isSQLiteUnique(sqliteErr) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case len(pgErr.Code) == 5 && (pgErr.Code[:2] == "08" || pgErr.Code[:2] == "53" || pgErr.Code[:2] == "57"):
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	// A closed pool (database/sql does not export that error) cannot serve
	// this replica any more: unavailable, so that the caller retries elsewhere.
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed") ||
		strings.Contains(err.Error(), "sql: statement is closed") {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err) || isSQLiteBusy(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) { // a connection cut mid-answer
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
