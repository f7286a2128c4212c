// Package store is customerd's persistence: the contract the domain packages
// use, its GORM implementation on PostgreSQL and SQLite, the versioned
// migrations of both, and (in storetest) the conformance suite they share.
// Every limit, code and key lives here, so replicas behave as one.
package store

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrNotFound: no such row in this tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique identifier (email, phone number, key) is taken.
	ErrConflict = errors.New("conflict")
	// ErrStale: the row changed since it was read; read it again.
	ErrStale = errors.New("stale version")
	// ErrUnavailable: the database cannot be reached or is overloaded; worth a retry.
	ErrUnavailable = errors.New("database unavailable")
	// ErrSpent: the challenge to consume is used, dead or expired.
	ErrSpent = errors.New("challenge no longer live")
)

// Precision is the finest time both databases keep: PostgreSQL keeps microseconds.
const Precision = time.Microsecond

// Clock is now (time.Now when nil) in UTC, truncated to Precision: the times
// that accounts, events and challenges are made with are then the times a
// later read returns, on either database.
func Clock(now func() time.Time) func() time.Time {
	if now == nil {
		now = time.Now
	}
	return func() time.Time { return now().UTC().Truncate(Precision) }
}

// Store is the persistence contract. Every method is scoped to one tenant.
// ErrWrongSecret: the secret does not open what is sealed in the database
// (it was changed, or its file lost and another generated).
var ErrWrongSecret = errors.New("the secret does not open what is sealed in this database: was CUSTOMERD_SECRET changed, or the secret file lost? Restore it")

type Store interface {
	// Tx runs fn in one transaction; fn's Store writes and reads inside it.
	Tx(ctx context.Context, fn func(Store) error) error
	Ping(ctx context.Context) error
	Close() error

	CreateCustomer(ctx context.Context, c *Customer) error
	// CreateAccount writes a new account and what comes with it in one atomic
	// step (on PostgreSQL, one statement): ErrConflict when an identifier or
	// the identity is taken, ErrSpent when a.Consume is no longer live; then
	// nothing is written.
	CreateAccount(ctx context.Context, a *NewAccount) error
	// UpdateCustomer writes c when its Version is still the stored one and bumps it: ErrStale
	// when it is not (or the account is gone), ErrConflict when an identifier is taken.
	UpdateCustomer(ctx context.Context, c *Customer) error
	// RevokeSessions makes every token of a live customer issued before at
	// refused: ErrNotFound when there is no such customer.
	RevokeSessions(ctx context.Context, tenant, id string, at time.Time) error
	Customer(ctx context.Context, tenant, id string) (*Customer, error)
	CustomerByEmail(ctx context.Context, tenant, email string) (*Customer, error)
	CustomerByPhone(ctx context.Context, tenant, phone string) (*Customer, error)
	// EmailVerified reports whether a live account of tenant holds email
	// verified, reading nothing else of it.
	EmailVerified(ctx context.Context, tenant, email string) (bool, error)
	DeleteCustomer(ctx context.Context, tenant, id string, at time.Time) error

	LinkIdentity(ctx context.Context, id *Identity) error
	Identity(ctx context.Context, tenant, provider, subject string) (*Identity, error)
	// Linked reports whether any identity is linked to the account.
	Linked(ctx context.Context, tenant, customer string) (bool, error)
	// UnlinkIdentity forgets a link whose account is gone.
	UnlinkIdentity(ctx context.Context, tenant, provider, subject string) error

	CreateChallenge(ctx context.Context, c *Challenge) error
	// LiveChallenge is the newest challenge to destination that can still be
	// completed, of purpose ("" for any).
	LiveChallenge(ctx context.Context, tenant, destination, purpose string, now time.Time) (*Challenge, error)
	// ExpireChallenge ends a challenge whose code never left.
	ExpireChallenge(ctx context.Context, tenant, id string) error
	// RehashChallenge replaces the code hash of a live challenge: a code
	// that never left is kept as one withheld is, with no right code.
	RehashChallenge(ctx context.Context, tenant, id, codeHash string) error
	// Challenge returns challenge id of tenant as stored.
	Challenge(ctx context.Context, tenant, id string) (*Challenge, error)
	// PeekChallenge is the newest live challenge of tenant to destination
	// whose purpose is not except, read without spending anything.
	PeekChallenge(ctx context.Context, tenant, destination, except string, now time.Time) (*Challenge, error)
	// Verify spends one attempt of live challenge v.ID and checks the code
	// sent in one atomic step (on PostgreSQL, one statement), so that no
	// number of concurrent callers on any number of replicas gets more codes
	// evaluated than the limits allow. A wrong code is then charged to its
	// destination's counter, up to its limit (Locked past it), in a step
	// the caller's cancellation does not stop; a right one never is. A
	// right code to a destination nobody holds, on a challenge that names no
	// account and holds nothing (a plain first sign-in), uses the challenge
	// up and creates v.First's account of its channel in the same step.
	// ErrNotFound when no live challenge matches; ErrConflict when the
	// account's identifier is taken: then nothing is written, the attempt
	// included.
	Verify(ctx context.Context, v Verification) (*Verdict, error)
	// ConsumeChallenge marks a live challenge used; false when it is used,
	// dead or expired.
	ConsumeChallenge(ctx context.Context, tenant string, u ChallengeUse) (bool, error)

	// Throttle lets one action per key and interval through: zero when it may
	// go now (and records it), otherwise how long to wait.
	Throttle(ctx context.Context, tenant, key string, now time.Time, interval time.Duration) (time.Duration, error)
	// Unthrottle forgets the last action of key, when it did not happen after all.
	Unthrottle(ctx context.Context, tenant, key string, at time.Time) error
	// Count adds one to the counter of key on day and returns the new count.
	Count(ctx context.Context, tenant, key, day string) (int, error)
	// Counted returns the counter of key on day.
	Counted(ctx context.Context, tenant, key, day string) (int, error)

	AddSigningKey(ctx context.Context, k *SigningKey) error
	// RetireSigningKeys retires every live key of tenant but keep, at at:
	// the tokens they signed are refused from then on. It returns how many.
	RetireSigningKeys(ctx context.Context, tenant, keep string, at time.Time) (int, error)
	// NewestSigningKey is the newest signing key of any tenant: ErrNotFound
	// when there is none.
	NewestSigningKey(ctx context.Context) (*SigningKey, error)
	// SigningKeys returns the tenant's keys, newest first.
	SigningKeys(ctx context.Context, tenant string) ([]SigningKey, error)

	// AddEvent writes a customer event to the outbox; inside Tx it commits with the change.
	AddEvent(ctx context.Context, e *Event) error
	// ClaimEvents leases up to limit due events until now+lease: for each customer only its
	// oldest undelivered live event, so that deliveries stay in order per customer. Replicas
	// never claim the same event while its lease runs. The events of the tenants in skip are
	// left for a later claim.
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]Event, error)
	// ReleaseEvents ends the lease of events claimed and not delivered after all (due again
	// at once), each only while it is still the lease the claim returned.
	ReleaseEvents(ctx context.Context, evs []Event) error
	// EventsDelivered records, in one statement, that every endpoint acknowledged each of
	// the events (or that none subscribes to it): a dispatcher records its deliveries a batch
	// at a time, not one write each.
	EventsDelivered(ctx context.Context, ids []string, at time.Time) error
	// EventFailed records a failed attempt: retried at next, or dead when dead is set.
	EventFailed(ctx context.Context, id string, next time.Time, dead bool, reason string) error
	// Events lists events in order, the dead ones only when q.Failed.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// ReplayEvents makes dead events due again, with a new retry window (ids, or every dead one of tenant when ids is
	// empty; every tenant when tenant is empty) and returns how many. An event of a customer erased after
	// it was written stays dead.
	ReplayEvents(ctx context.Context, tenant string, ids []string, now time.Time) (int, error)

	// BeginIdempotent records r as running. When the key is taken it returns the stored
	// request (running when its Status is 0) and ErrConflict.
	BeginIdempotent(ctx context.Context, r *IdempotentRequest) (*IdempotentRequest, error)
	// FinishIdempotent stores the answer of r, a running request as
	// BeginIdempotent or TakeOverIdempotent recorded it, while r holds its
	// key: once another request took the key over, it stores nothing
	// (ErrNotFound). customer, when not "", is the account the answer shows:
	// once that account is erased, its answer is not kept but the key
	// forgotten, as erasure forgets the answers kept before it.
	FinishIdempotent(ctx context.Context, r *IdempotentRequest, status int, contentType string, body []byte, customer string) error
	// ForgetIdempotent drops the key of r, a request that did not complete,
	// so that it may be retried; not once another request took it over.
	ForgetIdempotent(ctx context.Context, r *IdempotentRequest) error
	// TakeOverIdempotent gives r the key of a request still running that
	// began before abandonedBefore, or of any that began before
	// expiredBefore: true when this call took it (one of concurrent callers
	// does), false otherwise.
	TakeOverIdempotent(ctx context.Context, r *IdempotentRequest, abandonedBefore, expiredBefore time.Time) (bool, error)

	// Purge deletes the rows older than their cutoff: what the caller's
	// policy says can no longer matter.
	Purge(ctx context.Context, c Cutoffs) error
}

// Cutoffs are the times before which rows are purged, by kind.
type Cutoffs struct {
	ChallengesExpired time.Time // challenges that expired before
	CounterDays       string    // counters of days before (YYYY-MM-DD)
	Throttles         time.Time // resend throttles last used before
	IdempotencyKeys   time.Time // Idempotency-Key answers stored before
	DeliveredEvents   time.Time // events delivered before
	// Erased: the challenges bound to accounts erased since (a request
	// racing an erasure can write one after the erasure deleted its own).
	Erased time.Time
}

// Attempt names the challenge an attempt is made on, and the counter a
// wrong code is charged to.
type Attempt struct {
	Tenant, ID string
	Now        time.Time
	// CounterPrefix+destination is the counter charged on Day, up to Limit.
	CounterPrefix, Day string
	Limit              int
	// ChangeMark: a wrong code of a token holder's contact change (purpose
	// "contact") is charged to CounterPrefix+ChangeMark+its address, the
	// day of contact changes to the address, never to the address's own
	// (its sign-ins'); a destination that carries the mark already is its
	// address marked. Empty: every challenge's destination is its counter.
	ChangeMark string
}

// CounterKey is the counter a wrong code of a challenge of purpose to
// destination is charged to.
func (a Attempt) CounterKey(purpose, destination string) string {
	if purpose == "contact" && a.ChangeMark != "" && !strings.HasPrefix(destination, a.ChangeMark) {
		destination = a.ChangeMark + destination
	}
	return a.CounterPrefix + destination
}

// Verification is an attempt with the code sent back for it.
type Verification struct {
	Attempt
	// CodeHash is the hash the code sent has for this challenge.
	CodeHash string
	// First are, by channel, the account a plain first sign-in creates,
	// Destination standing for the challenge's destination in its customer's
	// email or phone number and in its events' payloads. They differ in
	// nothing but their contact, its verified flag and their events' ids and
	// payloads, and link no identity.
	First map[string]*NewAccount
}

// Destination stands for a challenge's destination in an account of
// Verification.First.
const Destination = "\x00destination\x00"

// Verdict is a challenge after an attempt, and what the attempt did.
type Verdict struct {
	*ChallengeRead
	// Right: the code was right; unless Locked, the challenge may be used up.
	Right bool
	// Created is the account of Verification.First created with the
	// destination, the challenge used up with it; nil when none was.
	Created *NewAccount
}

// ChallengeRead is a challenge after an attempt, with what completing it
// needs, read in the same step.
type ChallengeRead struct {
	*Challenge
	// Counted is the destination's counter after this attempt.
	Counted int
	// Locked: the counter was at its limit; the code must count for nothing.
	Locked bool
	// Holder is the tenant's live account whose email or phone number is the
	// destination, read when the code is right; nil when there is none.
	Holder *Customer
}

// NewAccount is an account to create, with what commits with it.
type NewAccount struct {
	Customer *Customer
	// Identity, when set, links a provider's subject to the account.
	Identity *Identity
	// Events go to the outbox with the account.
	Events []*Event
	// Consume, when set, is the challenge (of the account's tenant) that
	// proved the account: it is used up at At by the same write, and the
	// account is not created when it is no longer live.
	Consume *ChallengeUse
}

// ChallengeUse is a challenge consumed at a time.
type ChallengeUse struct {
	ID string
	At time.Time
}

// Event is one customer event in the outbox.
type Event struct {
	Seq         int64  `gorm:"primaryKey;autoIncrement"`
	ID          string `gorm:"column:id"`
	TenantID    string `gorm:"column:tenant_id"`
	CustomerID  string `gorm:"column:customer_id"`
	Type        string
	Payload     string // the JSON body delivered to webhooks
	CreatedAt   time.Time
	Attempts    int
	NextAt      time.Time  `gorm:"column:next_at"`
	LeaseUntil  *time.Time `gorm:"column:lease_until"`
	DeliveredAt *time.Time `gorm:"column:delivered_at"`
	DeadAt      *time.Time `gorm:"column:dead_at"`
	LastError   string     `gorm:"column:last_error"`
	// ReplayedAt is when `customerd events replay` last made it due again.
	ReplayedAt *time.Time `gorm:"column:replayed_at"`
}

// RetriedSince is when the event's retry window (webhooks.maxAge) began:
// its creation, or its last replay.
func (e Event) RetriedSince() time.Time {
	if e.ReplayedAt != nil && e.ReplayedAt.After(e.CreatedAt) {
		return *e.ReplayedAt
	}
	return e.CreatedAt
}

// TableName is the events table.
func (Event) TableName() string { return "events" }

// EventQuery selects events to list.
type EventQuery struct {
	Tenant string   // "" for every tenant
	Failed bool     // only dead events
	IDs    []string // only these events; none: every one
	Limit  int      // 0 for 100
}

// IdempotentRequest is a POST /customer under an Idempotency-Key, and its answer once known.
type IdempotentRequest struct {
	TenantID    string `gorm:"primaryKey;column:tenant_id"`
	Key         string `gorm:"primaryKey;column:key"`
	RequestHash string `gorm:"column:request_hash"`
	Status      int    // 0 while the first request runs
	ContentType string `gorm:"column:content_type"`
	Body        []byte
	CreatedAt   time.Time
}

// TableName is the idempotency_keys table.
func (IdempotentRequest) TableName() string { return "idempotency_keys" }

// Customer is a stored account. Email and Phone are its normalised
// identifiers; Profile holds every other field, as the account rules made it.
type Customer struct {
	ID            string    `gorm:"primaryKey"`
	TenantID      string    `gorm:"column:tenant_id"`
	Email         *string   `gorm:"column:email"`
	Phone         *string   `gorm:"column:phone"`
	EmailVerified bool      `gorm:"column:email_verified"`
	PhoneVerified bool      `gorm:"column:phone_verified"`
	Profile       Profile   `gorm:"column:profile"`
	Version       int64     `gorm:"column:version"`
	CreatedAt     time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt     time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
	DeletedAt     *time.Time
	// SessionsRevokedAt: tokens issued before it no longer open the account.
	SessionsRevokedAt *time.Time `gorm:"column:sessions_revoked_at"`
}

// TableName is the customers table.
func (Customer) TableName() string { return "customers" }

// Has reports whether the account has a value for the JSON field name.
func (c *Customer) Has(name string) bool {
	switch name {
	case "email":
		return c.Email != nil
	case "phoneNumber":
		return c.Phone != nil
	}
	v, ok := c.Profile[name]
	return ok && v != nil && v != ""
}

// Profile is the free-form part of an account, stored as a JSON object.
type Profile map[string]any

// Value stores the profile as JSON text.
func (p Profile) Value() (driver.Value, error) {
	if p == nil {
		return "{}", nil
	}
	// Kept as sent: "<" stays one byte, not "\u003c".
	s, err := PlainJSON(map[string]any(p))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// PlainJSON is v as JSON with its text as written: "<", ">" and "&" stay
// themselves, where json.Marshal writes "\u003c" and its kin.
func PlainJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// Scan reads a JSON object.
func (p *Profile) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case nil:
		*p = Profile{}
		return nil
	default:
		return fmt.Errorf("profile: cannot scan %T", src)
	}
	m := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers come back exactly as they were sent
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	*p = m
	return nil
}

// Identity links a provider's subject to an account.
type Identity struct {
	TenantID   string `gorm:"primaryKey;column:tenant_id"`
	Provider   string `gorm:"primaryKey"`
	Subject    string `gorm:"primaryKey"`
	CustomerID string `gorm:"column:customer_id"`
	CreatedAt  time.Time
	// Account is the live account linked, read with the identity; nil when
	// it is gone.
	Account *Customer `gorm:"-"`
}

// TableName is the identities table.
func (Identity) TableName() string { return "identities" }

// Challenge is a one-time code sent to a destination, stored as a keyed hash.
type Challenge struct {
	ID          string `gorm:"primaryKey"`
	TenantID    string `gorm:"column:tenant_id"`
	Channel     string
	Destination string
	CustomerID  *string `gorm:"column:customer_id"`
	CodeHash    string  `gorm:"column:code_hash"`
	Attempts    int
	MaxAttempts int `gorm:"column:max_attempts"`
	ExpiresAt   time.Time
	ConsumedAt  *time.Time
	CreatedAt   time.Time
	// Pending is the change the challenge holds (JSON), applied when it is completed.
	Pending string `gorm:"column:pending"`
	// Purpose is what completing the challenge does (signin, checkin, flow, contact).
	Purpose string `gorm:"column:purpose"`
	// TokenIssuedAt is the issue time of the token that asked for the
	// challenge (a token holder's contact change); nil for the others.
	TokenIssuedAt *time.Time `gorm:"column:token_issued_at"`
	// TokenKID is the kid of the key that signed that token; nil for the
	// others, and for changes asked before it was kept.
	TokenKID *string `gorm:"column:token_kid"`
}

// TableName is the challenges table.
func (Challenge) TableName() string { return "challenges" }

// SigningKey is one token-signing key of a tenant; the private key is sealed.
type SigningKey struct {
	TenantID   string `gorm:"primaryKey;column:tenant_id"`
	KID        string `gorm:"primaryKey;column:kid"`
	Alg        string
	PrivateKey []byte `gorm:"column:private_key"`
	PublicJWK  string `gorm:"column:public_jwk"`
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// TableName is the signing_keys table.
func (SigningKey) TableName() string { return "signing_keys" }
