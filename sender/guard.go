package sender

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// ErrCountryRefused: the tenant does not send codes to the destination's country.
var ErrCountryRefused = errors.New("this brand does not send codes to this country")

// ErrPremiumRefused: the destination is a premium-rate or shared-cost number.
var ErrPremiumRefused = errors.New("codes are not sent to premium-rate numbers")

// ErrUnavailable marks a sender's failure of its own, whoever the message
// was for: its relay or gateway cannot be reached, does not answer in time,
// or refuses us (TLS, greeting, credentials, envelope sender, message,
// rate, its own errors). A failure about the recipient (an SMTP relay
// refusing it at RCPT TO, a gateway's 4xx for the number) is not one: the
// caller chooses the recipient, and the guard must not take the sender for
// down because of it (see Withheld).
var ErrUnavailable = errors.New("the relay or gateway is unavailable")

// DownFor is how long a sender counts as down after its last failure of
// its own (ErrUnavailable) when no delivery came since: the Retry-After of
// the 503 its failure answers.
const DownFor = 30 * time.Second

// unavailable marks err as ErrUnavailable, its message unchanged.
func unavailable(err error) error { return &unavailableError{err: err} }

type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// BudgetError: the tenant's daily budget of messages on the channel is spent.
type BudgetError struct{ RetryAfter time.Duration }

func (e *BudgetError) Error() string {
	return fmt.Sprintf("the daily budget of messages is spent; retry in %ds", int(e.RetryAfter.Seconds()))
}

// Counter adds one to a per-tenant, per-day counter and returns the new
// count; the store is one, so that a budget holds across replicas.
type Counter interface {
	Count(ctx context.Context, tenant, key, day string) (int, error)
}

// Screener is a sender that refuses some destinations before anything is sent.
type Screener interface {
	// Allows returns ErrCountryRefused when to may not receive codes.
	Allows(to string) error
}

// guarded sends only to allowed countries and within the daily budget:
// the defence against SMS pumping.
type guarded struct {
	next      Sender
	countries map[string]bool // empty: any
	budget    int             // 0: none
	counter   Counter
	now       func() time.Time
	pace      *pace // how sends lately went, shared with Withheld's copies
}

var _ Screener = (*guarded)(nil)

// Guard wraps s with c's country allow-list and daily budget, counted with
// counter, and refuses numbers whose line earns from what it receives
// (premium rate, shared cost) whatever the list.
func (c Config) Guard(s Sender, counter Counter) Sender {
	g := &guarded{next: s, budget: c.DailyBudget, counter: counter, now: time.Now, countries: map[string]bool{}, pace: &pace{}}
	for _, cc := range c.Countries {
		g.countries[strings.ToUpper(cc)] = true
	}
	return g
}

func (g *guarded) Allows(to string) error {
	if strings.Contains(to, "@") {
		return nil
	}
	n, err := phonenumbers.Parse(to, "")
	if err != nil {
		return ErrCountryRefused
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST:
		// A line paid by its callers: a text to it is SMS pumping's income.
		return ErrPremiumRefused
	}
	if len(g.countries) > 0 && !g.countries[phonenumbers.GetRegionCodeForNumber(n)] {
		return ErrCountryRefused
	}
	return nil
}

func (g *guarded) Send(ctx context.Context, m Message) error {
	if err := g.Allows(m.To); err != nil {
		return err
	}
	if g.budget > 0 {
		now := g.now().UTC()
		n, err := g.counter.Count(ctx, m.Tenant, "budget:"+string(m.Channel), now.Format(time.DateOnly))
		if err != nil {
			return err
		}
		if n > g.budget {
			midnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
			return &BudgetError{RetryAfter: midnight.Sub(now).Round(time.Second) + time.Second}
		}
	}
	start := time.Now()
	err := g.next.Send(ctx, m)
	if g.pace != nil && (err == nil || ctx.Err() == nil) { // a send its caller gave up on tells nothing of the sender
		g.pace.record(time.Since(start), err, g.now())
	}
	return err
}

// Withheld is s's guard (country allow-list, daily budget) in front of no
// delivery: a code nobody must receive is refused and counted as one sent
// would be, and takes as long as one of s's recent deliveries took, so that
// its answer tells nothing a real send's would not, its time included (a
// withheld code answering at once beside a relay's hundreds of milliseconds
// told which address has an account).
//
// While s is down (its latest failure of its own, ErrUnavailable, came
// after its latest delivery and less than DownFor ago), a withheld code
// takes as long as one of those failures took and fails as they did: "sent"
// while a free address's code failed (503 against 202), it told any token
// holder, for as long as the relay's outage lasted, which address has an
// account. Only s's own failures put it down, never a recipient's (a
// refused mailbox, an invalid number): a prober choosing refused addresses
// would otherwise make withheld codes fail while free ones got through.
//
// What stays (README, Security model): a replica learns s's state from its
// own real sends only. In an outage, a withheld code succeeds until a real
// send fails, and again once DownFor passes with none failing; once the
// relay is back, it fails until a real delivery, or DownFor after the last
// failure. A prober can read an address in those windows only (one at most
// per DownFor of silence on the channel), and cannot open them at will.
func Withheld(s Sender) Sender {
	if g, ok := s.(*guarded); ok {
		w := *g
		// Its wait is drawn from s's sends, and is not one of them.
		w.next, w.pace = withheld{pace: g.pace, now: g.now}, nil
		return &w
	}
	return withheld{}
}

// RefusedRecipient reports whether err, a Send's, is the relay's or the
// gateway's answer about the message's recipient (a mailbox refused at RCPT
// TO, a permanent answer to the message, a number the gateway will not
// text): a failure neither of the sender itself (ErrUnavailable) nor of its
// guard (a country, a premium number, the budget), which a withheld code
// meets as a sent one does.
func RefusedRecipient(err error) bool {
	var budget *BudgetError
	return err != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrCountryRefused) &&
		!errors.Is(err, ErrPremiumRefused) && !errors.As(err, &budget) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// AsWithheld answers, for a send through s that began at began and whose
// recipient was refused (RefusedRecipient), what a withheld code through s
// answers now, and when: it waits until the send has taken as long as a
// withheld code would (one of s's recent deliveries' durations), and fails
// as one would while s is down. A caller that must not tell a refused
// recipient from a withheld code (whether the address is an account's
// decided which one it got) answers the refusal with it.
func AsWithheld(ctx context.Context, s Sender, began time.Time) error {
	g, ok := s.(*guarded)
	if !ok {
		return nil
	}
	d, err := g.pace.sample(g.now())
	sleep(ctx, d-time.Since(began))
	return err
}

// sleep waits d (nothing when d <= 0), or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

type withheld struct {
	pace *pace
	now  func() time.Time
}

func (w withheld) Send(ctx context.Context, _ Message) error {
	var now time.Time
	if w.now != nil {
		now = w.now()
	}
	d, err := w.pace.sample(now)
	sleep(ctx, d)
	return err
}

// pace keeps how a sender's latest sends went: how long its deliveries
// took and, while it is down, how long its failures since took and the
// latest one.
type pace struct {
	mu     sync.Mutex
	took   durations // the latest deliveries
	failed durations // the failures of its own since the latest delivery
	downAt time.Time // the latest of those; zero when a delivery came after
	cause  error     // its error
}

// record notes a send that took d and ended in err at now: a delivery puts
// the sender up, a failure of its own (ErrUnavailable) down; any other
// failure (the recipient's) changes nothing.
func (p *pace) record(d time.Duration, err error, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err == nil:
		p.took.add(d)
		p.failed, p.downAt, p.cause = durations{}, time.Time{}, nil
	case errors.Is(err, ErrUnavailable):
		p.failed.add(d)
		p.downAt, p.cause = now, err
	}
}

// durations keeps the latest ringSize durations of a kind. Its ring is
// allocated by the first one kept: a tenant's guarded senders are built for
// every tenant served, most of which never send (10,000 tenants served once
// held 10.5 MB of guarded senders, more than half of it empty rings).
type durations struct {
	d    []time.Duration // the kept ones, at most ringSize
	next int             // where the next one goes once d is full
}

const ringSize = 32

func (r *durations) add(d time.Duration) {
	if len(r.d) < ringSize {
		if r.d == nil {
			r.d = make([]time.Duration, 0, ringSize)
		}
		r.d = append(r.d, d)
		return
	}
	r.d[r.next] = d
	r.next = (r.next + 1) % ringSize
}

// draw is one of the durations at random; false when there is none.
func (r *durations) draw() (time.Duration, bool) {
	if len(r.d) == 0 {
		return 0, false
	}
	return r.d[rand.IntN(len(r.d))], true
}

// Before a sender's first delivery (after a start, or a change of the
// tenant's settings) there is no duration to draw: a withheld code then
// takes one drawn between these, the span of an SMTP relay's or an SMS
// gateway's usual answer. Answering at once instead told, to the first
// prober after each restart, which address has an account.
const (
	unseededMin = 150 * time.Millisecond
	unseededMax = 600 * time.Millisecond
)

// sample is how a withheld code at now goes: while the sender is down, one
// of its failures' durations and an error as theirs; otherwise one of the
// recent deliveries' durations, one between unseededMin and unseededMax when
// there is none yet, and no error. A nil pace (a sender without a guard: no
// tenant's) waits nothing and never fails.
func (p *pace) sample(now time.Time) (time.Duration, error) {
	if p == nil {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.downAt.IsZero() && now.Sub(p.downAt) < DownFor {
		d, _ := p.failed.draw()
		return d, fmt.Errorf("withheld code, the sender down: %w", p.cause)
	}
	if d, ok := p.took.draw(); ok {
		return d, nil
	}
	return unseededMin + rand.N(unseededMax-unseededMin), nil
}
