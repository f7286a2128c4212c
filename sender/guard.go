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
	pace      *pace // how long deliveries lately took, shared with Withheld's copies
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
	if err == nil && g.pace != nil {
		g.pace.record(time.Since(start))
	}
	return err
}

// Withheld is s's guard (country allow-list, daily budget) in front of no
// delivery: a code nobody must receive is refused and counted as one sent
// would be, and takes as long as one of s's recent deliveries took, so that
// its answer tells nothing a real send's would not, its time included (a
// withheld code answering at once beside a relay's hundreds of milliseconds
// told which address has an account).
func Withheld(s Sender) Sender {
	if g, ok := s.(*guarded); ok {
		w := *g
		// Its wait is drawn from s's deliveries, and is not one of them.
		w.next, w.pace = withheld{pace: g.pace}, nil
		return &w
	}
	return withheld{}
}

type withheld struct{ pace *pace }

func (w withheld) Send(ctx context.Context, _ Message) error {
	d := w.pace.sample()
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	return nil
}

// pace keeps how long a sender's latest successful deliveries took.
type pace struct {
	mu   sync.Mutex
	took [32]time.Duration
	n    int // how many of took are set
	next int // where the next one goes
}

func (p *pace) record(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.took[p.next] = d
	p.next = (p.next + 1) % len(p.took)
	p.n = min(p.n+1, len(p.took))
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

// sample is one of the recent durations, drawn at random; one between
// unseededMin and unseededMax when there is none yet; 0 for a nil pace (a
// sender without a guard: no tenant's).
func (p *pace) sample() time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		return unseededMin + rand.N(unseededMax-unseededMin)
	}
	return p.took[rand.IntN(p.n)]
}
