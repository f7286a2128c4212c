package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func (s *db) PeekChallenge(ctx context.Context, tenant, destination, except string, now time.Time) (*Challenge, error) {
	return scanChallenge(s.stmt(ctx, qNewestLive, false).QueryRowContext(ctx, tenant, destination, except, now.UTC()))
}

func (s *db) Verify(ctx context.Context, v Verification) (*Verdict, error) {
	// A counter is a 32-bit integer on PostgreSQL, which cast a larger limit
	// (otp.maxFailuresPerDay has no upper bound) into an error on every
	// attempt: no counter reaches it, so it stands for the largest.
	v.Limit = min(v.Limit, math.MaxInt32)
	switch {
	case s.postgres():
		return s.verifyStatement(ctx, v)
	case s.tx != nil:
		return s.verifySteps(ctx, v)
	}
	// The transaction first, then its verdict: in `return verdict, s.Tx(…)`
	// Go leaves it unspecified whether verdict is read before or after the
	// call that sets it.
	var verdict *Verdict
	err := s.Tx(ctx, func(tx Store) error {
		var err error
		verdict, err = tx.(*db).verifySteps(ctx, v)
		return err
	})
	return verdict, err
}

// quotedDestination is Destination as a JSON string, as it stands in an
// event's payload.
var quotedDestination = func() string {
	b, _ := json.Marshal(Destination)
	return string(b)
}()

// fill puts destination in place of Destination in a, as its contact and
// in its events' payloads.
func fill(a *NewAccount, destination string) {
	for _, p := range []**string{&a.Customer.Email, &a.Customer.Phone} {
		if *p != nil && **p == Destination {
			*p = &destination
		}
	}
	quoted, _ := json.Marshal(destination)
	for _, e := range a.Events {
		e.Payload = strings.ReplaceAll(e.Payload, quotedDestination, string(quoted))
	}
}

// verifySteps is Verify on SQLite, in a transaction (or a batch's
// savepoint) of its one writer: one UPDATE spends the attempt, checks the
// code and, for a first sign-in, uses the challenge up; then the account is
// written, or a wrong code charged, or the holder read for the caller.
func (s *db) verifySteps(ctx context.Context, v Verification) (*Verdict, error) {
	a := v.Attempt
	channels, err := json.Marshal(slices.Sorted(maps.Keys(v.First)))
	if err != nil {
		return nil, err
	}
	var c Challenge
	verdict := &Verdict{ChallengeRead: &ChallengeRead{Challenge: &c}}
	err = s.stmt(ctx, qAttempt, true).QueryRowContext(ctx, a.Tenant, a.ID, a.Now.UTC(), v.CodeHash, a.CounterPrefix, a.Day, a.Limit, string(channels)).
		Scan(append(c.fields(), &verdict.Right, &verdict.Counted)...)
	if err != nil {
		return nil, noRow(err)
	}
	if verdict.Right && c.ConsumedAt != nil {
		account := v.First[c.Channel]
		fill(account, c.Destination)
		if err := s.writeAccount(ctx, &NewAccount{Customer: account.Customer, Identity: account.Identity, Events: account.Events}); err != nil {
			return nil, err
		}
		verdict.Created = account
		return verdict, nil
	}
	return verdict, s.judged(ctx, a, verdict)
}

// judged completes the verdict of an attempt that created no account: a
// wrong code is charged; a right one is locked out past the day's failures,
// or comes back with the account holding its destination, for the caller
// to decide the rest.
func (s *db) judged(ctx context.Context, a Attempt, verdict *Verdict) error {
	key := a.CounterKey(verdict.Purpose, verdict.Destination)
	if verdict.Right && key != a.CounterPrefix+verdict.Destination {
		// The statement read the destination's own counter; a contact
		// change is judged by its own. Only a right code of one comes here.
		n, err := s.Counted(ctx, a.Tenant, key, a.Day)
		if err != nil {
			return err
		}
		verdict.Counted = n
	}
	switch {
	case !verdict.Right:
		return s.charge(ctx, a, key, verdict)
	case verdict.Counted >= a.Limit:
		verdict.Locked = true
		return nil
	}
	h, err := scanCustomer(s.stmt(ctx, qHolder, true).QueryRowContext(ctx, a.Tenant, verdict.Destination))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	verdict.Holder = h
	return err
}

// charge counts a wrong code against its counter key's day (Attempt.CounterKey), while the
// counter is under its limit (Locked past it). The caller's cancellation
// does not stop it: a client that hangs up as soon as its code is judged
// still has the failure counted.
func (s *db) charge(ctx context.Context, a Attempt, key string, verdict *Verdict) error {
	ctx = context.WithoutCancel(ctx)
	err := s.stmt(ctx, qCharge, true).QueryRowContext(ctx, a.Tenant, key, a.Day, a.Limit).Scan(&verdict.Counted)
	if errors.Is(err, sql.ErrNoRows) {
		verdict.Locked = true
		return nil
	}
	return classify(err)
}

// goJSONString is PostgreSQL's to_json of c.destination escaped as Go's
// encoding/json escapes strings (<, >, &, U+2028 and U+2029 too), so that a
// payload reads the same bytes whichever database spliced the destination in.
const goJSONString = `replace(replace(replace(replace(replace(to_json(c.destination)::text, '&', '\u0026'), '<', '\u003c'), '>', '\u003e'), ` +
	`U&'\2028', '\u2028'), U&'\2029', '\u2029')`

// verifyStatement is Verify on PostgreSQL: a first sign-in in one
// statement. The challenge's one UPDATE spends the attempt and, for a right
// code of a first sign-in while the counter is under its limit, uses the
// challenge up (the row lock makes concurrent attempts on it wait and
// re-check); the account and its event are written only when the challenge
// was used up. Anything else is judged after it, as on SQLite: a wrong code
// charged, the account holding the destination read. Those were parts of
// the statement once, and cost PostgreSQL on every first sign-in where they
// did nothing (the counters' INSERT … ON CONFLICT, the holder's lookup and
// a second read of the counter: 74 → 80 % of the floor's rate). The hashes
// are compared in SQL: they are HMACs under a secret key, so the time a
// comparison takes tells nothing of the code.
func (s *db) verifyStatement(ctx context.Context, v Verification) (*Verdict, error) {
	shape, err := shapeOf(v.First)
	if err != nil {
		return nil, err
	}
	text, ok := verifyTexts.Load(shape.key)
	if !ok {
		text, _ = verifyTexts.LoadOrStore(shape.key, shape.statement())
	}
	var (
		c       Challenge
		verdict = &Verdict{ChallengeRead: &ChallengeRead{Challenge: &c}}
	)
	err = s.queryRow(ctx, text.(string), shape.args(v)...).Scan(append(c.fields(), &verdict.Right, &verdict.Counted)...)
	if err != nil {
		return nil, noRow(err)
	}
	if verdict.Right && c.ConsumedAt != nil {
		verdict.Created = v.First[c.Channel]
		fill(verdict.Created, c.Destination)
		return verdict, nil
	}
	return verdict, s.judged(ctx, v.Attempt, verdict)
}

// verifyTexts are the texts of verifyStatement by shape key: the same
// shape is the same text, which pgx prepares once per connection.
var verifyTexts sync.Map

// verifyShape is what the text of a verifyStatement depends on: the
// channels of First (sorted), which of each one's contacts is the
// destination, and how many events an account has.
type verifyShape struct {
	key      string
	channels []string
	// email and phone: the channel's email or phone number is Destination.
	email, phone map[string]bool
	events       int
}

func isDestination(p *string) bool { return p != nil && *p == Destination }

func shapeOf(first map[string]*NewAccount) (*verifyShape, error) {
	sh := &verifyShape{channels: slices.Sorted(maps.Keys(first)), email: map[string]bool{}, phone: map[string]bool{}}
	var key strings.Builder
	for i, name := range sh.channels {
		a := first[name]
		if i == 0 {
			sh.events = len(a.Events)
		}
		if len(a.Events) != sh.events || a.Identity != nil {
			return nil, errors.New("verify: the first accounts of every channel have as many events, and no identity")
		}
		sh.email[name], sh.phone[name] = isDestination(a.Customer.Email), isDestination(a.Customer.Phone)
		fmt.Fprintf(&key, "%q%v%v,", name, sh.email[name], sh.phone[name])
	}
	fmt.Fprintf(&key, "%d", sh.events)
	sh.key = key.String()
	return sh, nil
}

// args are the parameters of statement, in its order: the attempt's, then
// per channel its name, contact, verified flags and events' ids and
// payloads, then the rest of the account, which is the same whatever the
// channel (First's accounts differ in nothing else).
func (sh *verifyShape) args(v Verification) []any {
	a := v.Attempt
	args := []any{a.Now.UTC(), v.CodeHash, a.CounterPrefix, a.Day, a.Limit, a.Tenant, a.ID}
	if len(sh.channels) == 0 {
		return args
	}
	args = append(args, quotedDestination)
	for _, name := range sh.channels {
		c := v.First[name].Customer
		args = append(args, name)
		if !sh.email[name] {
			args = append(args, c.Email)
		}
		if !sh.phone[name] {
			args = append(args, c.Phone)
		}
		args = append(args, c.EmailVerified, c.PhoneVerified)
		for _, e := range v.First[name].Events {
			args = append(args, e.ID, e.Payload)
		}
	}
	f := v.First[sh.channels[0]]
	c := f.Customer
	if c.Version == 0 {
		c.Version = 1
	}
	args = append(args, c.ID, c.TenantID, c.Profile, c.Version, c.CreatedAt.UTC(), c.UpdatedAt.UTC(), utcOrNil(c.DeletedAt))
	for _, e := range f.Events {
		values := eventValues(e)
		args = append(args, values[1:4]...) // tenant, customer, type
		args = append(args, values[5:]...)  // created_at onwards
	}
	return args
}

// statement is the text of verifyStatement for the shape, its parameters
// numbered in the order of args.
func (sh *verifyShape) statement() string {
	n := 0
	p := func(typ string) string {
		n++
		return "CAST($" + strconv.Itoa(n) + " AS " + typ + ")"
	}
	now, hash, prefix, day, limit, tenant, id := p("timestamptz"), p("text"), p("text"), p("text"), p("integer"), p("text"), p("text")
	key := prefix + " || c.destination"
	counted := `COALESCE((SELECT k.count FROM counters k WHERE k.tenant_id = c.tenant_id AND k.key = ` + key + ` AND k.day = ` + day + `), 0)`
	var ch chain
	// Nothing is used up without a first account to create; the limit is
	// still named, so that its parameter has a type.
	use := "false AND " + limit + " > 0"
	var customer, outbox []string
	if len(sh.channels) > 0 {
		quoted := p("text")
		names := make([]string, len(sh.channels))
		email, phone, emailVerified, phoneVerified := "CASE c.channel", "CASE c.channel", "CASE c.channel", "CASE c.channel"
		ids, payloads := make([]string, sh.events), make([]string, sh.events)
		for j := range sh.events {
			ids[j], payloads[j] = "CASE c.channel", "CASE c.channel"
		}
		for i, name := range sh.channels {
			names[i] = p("text")
			contact := func(dest bool) string {
				if dest {
					return "c.destination"
				}
				return p("text")
			}
			email += " WHEN " + names[i] + " THEN " + contact(sh.email[name])
			phone += " WHEN " + names[i] + " THEN " + contact(sh.phone[name])
			emailVerified += " WHEN " + names[i] + " THEN " + p("boolean")
			phoneVerified += " WHEN " + names[i] + " THEN " + p("boolean")
			for j := range sh.events {
				ids[j] += " WHEN " + names[i] + " THEN " + p("text")
				payloads[j] += " WHEN " + names[i] + " THEN " + p("text")
			}
		}
		end := func(e string) string { return e + " END" }
		use = `c.code_hash = ` + hash + ` AND ` + counted + ` < ` + limit + ` AND c.customer_id IS NULL AND c.pending = ''
			AND c.channel IN (` + strings.Join(names, ", ") + `)
			AND NOT EXISTS (SELECT 1 FROM customers e WHERE e.tenant_id = c.tenant_id AND e.email = c.destination AND e.deleted_at IS NULL)
			AND NOT EXISTS (SELECT 1 FROM customers p WHERE p.tenant_id = c.tenant_id AND p.phone = c.destination AND p.deleted_at IS NULL)`
		customer = []string{p("text"), p("text"), end(email), end(phone), end(emailVerified), end(phoneVerified),
			p("jsonb"), p("bigint"), p("timestamptz"), p("timestamptz"), p("timestamptz")}
		for j := range sh.events {
			tenant, customerID, typ := p("text"), p("text"), p("text")
			rest := []string{p("timestamptz"), p("integer"), p("timestamptz"), p("timestamptz"), p("timestamptz"), p("timestamptz"), p("text")}
			payload := "replace(" + end(payloads[j]) + ", " + quoted + ", " + goJSONString + ")"
			outbox = append(outbox, "SELECT "+strings.Join(append([]string{end(ids[j]), tenant, customerID, typ, payload}, rest...), ", ")+
				" FROM c, customer")
		}
	}
	// The day's failures count only for a right code that used nothing up.
	ch.with("c", `UPDATE challenges c SET attempts = c.attempts + 1, consumed_at = CASE WHEN `+use+` THEN `+now+` END
		WHERE c.tenant_id = `+tenant+` AND c.id = `+id+` AND c.consumed_at IS NULL AND c.attempts < c.max_attempts AND c.expires_at > `+now+`
		RETURNING c.*, c.code_hash = `+hash+` AS right,
			CASE WHEN c.code_hash = `+hash+` AND c.consumed_at IS NULL THEN `+counted+` ELSE 0 END AS counted`)
	if customer != nil {
		ch.with("customer", `INSERT INTO customers (`+customerColumns+`) SELECT `+strings.Join(customer, ", ")+
			` FROM c WHERE c.consumed_at IS NOT NULL RETURNING id`)
	}
	if len(outbox) > 0 {
		ch.with("outbox", `INSERT INTO events (`+eventColumns+`) `+strings.Join(outbox, " UNION ALL "))
	}
	return ch.String() + ` SELECT c.` + strings.ReplaceAll(challengeColumns, ", ", ", c.") + `, c.right, c.counted FROM c`
}
