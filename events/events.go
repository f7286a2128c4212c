// Package events delivers customer events from the transactional outbox to
// the tenants' webhook endpoints: signed with HMAC-SHA256, in order per
// customer, retried with exponential backoff and jitter until the tenant's
// maximum age, at least once across restarts, and never by two replicas at
// the same time (the store leases each event to one dispatcher).
package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/signature"
	"github.com/customerd/customerd/store"
)

// Endpoint is one webhook receiver of a tenant.
type Endpoint struct {
	URL    string
	Secret string
	Types  []string // empty: every type
	// AllowPrivateNetwork lets URL be on a private or loopback address (and
	// plain http there).
	AllowPrivateNetwork bool
}

// Tenant is where a tenant's events go and how long they are retried.
type Tenant struct {
	Endpoints []Endpoint
	MaxAge    time.Duration
	RetryBase time.Duration
	RetryMax  time.Duration
}

// Wants reports whether an endpoint of t subscribes to events of type typ.
func (t Tenant) Wants(typ string) bool {
	for _, ep := range t.Endpoints {
		if len(ep.Types) == 0 || slices.Contains(ep.Types, typ) {
			return true
		}
	}
	return false
}

// ErrTenantGone is what Options.Tenants answers for a deleted tenant: its
// events are given up (dead), never marked delivered, so that `customerd
// events replay` delivers them once the tenant is created again.
var ErrTenantGone = errors.New("the tenant was deleted")

// Outbox is where the dispatcher finds the events to deliver.
type Outbox interface {
	// ClaimEvents leases due events, for each customer only its oldest,
	// none of the tenants in skip.
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]store.Event, error)
	// ReleaseEvents ends the lease of claimed events left undelivered,
	// unless another dispatcher has claimed them since.
	ReleaseEvents(ctx context.Context, evs []store.Event) error
	EventsDelivered(ctx context.Context, ids []string, at time.Time) error
	EventFailed(ctx context.Context, id string, next time.Time, dead bool, reason string) error
}

// Options configure a Dispatcher.
type Options struct {
	Store Outbox
	// Tenants finds a tenant's webhooks as they are now.
	Tenants func(ctx context.Context, id string) (Tenant, error)
	// PollInterval is the wait after finding nothing due; a failed event is
	// never retried sooner.
	PollInterval time.Duration
	Lease        time.Duration
	Timeout      time.Duration
	// Batch is how many deliveries are in flight at most (default 32); one
	// tenant's take at most a quarter of them.
	Batch  int
	Logger *slog.Logger
}

// Dispatcher delivers the outbox.
type Dispatcher struct {
	o Options
	// perTenant bounds one tenant's deliveries in flight, so that a tenant
	// whose receiver is slow holds back nobody else's events.
	perTenant int
	// strict and private send the deliveries, through the egress policy,
	// to endpoints without and with AllowPrivateNetwork.
	strict, private *http.Client
}

// New returns a Dispatcher.
func New(o Options) *Dispatcher {
	if o.Batch <= 0 {
		o.Batch = 32
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{o: o, perTenant: max(1, o.Batch/4),
		strict:  egress.NewClient(egress.Options{Timeout: o.Timeout}),
		private: egress.NewClient(egress.Options{Timeout: o.Timeout, AllowPrivateNetwork: true})}
}

// Run delivers events until ctx ends, and returns once no delivery is in
// flight. Each delivery holds its own place: a new event is claimed as soon
// as one is free, never after the slowest delivery of a batch.
func (d *Dispatcher) Run(ctx context.Context) {
	p := &pool{busy: map[string]int{}, freed: make(chan struct{}, 1)}
	defer func() {
		p.wg.Wait()
		d.record(context.WithoutCancel(ctx), p)
	}()
	batched := false
	for ctx.Err() == nil {
		d.record(ctx, p)
		n, err := d.claim(ctx, p, batched)
		if err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("deliver events", "error", err.Error())
		}
		if n > 0 && err == nil {
			batched = true
			continue
		}
		select {
		case <-ctx.Done():
		case <-p.freed: // a place is free, and the next event of its customer may be due
			batched = true
		case <-time.After(d.o.PollInterval):
			batched = false
		}
	}
}

// pool is the deliveries in flight, by tenant.
type pool struct {
	mu    sync.Mutex
	busy  map[string]int
	total int
	// done are the events delivered since the last record (each turn of
	// Run records them in one write).
	done  []string
	freed chan struct{}
	wg    sync.WaitGroup
}

// record writes the events delivered since the last record, in one
// statement: a write (and a commit) per event gave each event as many
// writes again after its delivery as the request that wrote it. An error
// leaves their leases to run out, and they are delivered again (at least
// once).
func (d *Dispatcher) record(ctx context.Context, p *pool) {
	p.mu.Lock()
	ids := p.done
	p.done = nil
	p.mu.Unlock()
	if err := d.o.Store.EventsDelivered(context.WithoutCancel(ctx), ids, time.Now()); err != nil {
		d.o.Logger.Warn("record deliveries", "events", len(ids), "error", err.Error())
	}
}

// claim leases as many due events as there are free places, none of a
// tenant at its share, and starts delivering them; it returns how many.
// batched (right after a claim, or a delivery done): only once it can
// start half a share, so that claims come in batches, not one per delivery
// done, and the outbox's writer (SQLite's one) is not taken by a claim of
// an event each time; every poll claims whatever it can start.
func (d *Dispatcher) claim(ctx context.Context, p *pool, batched bool) (int, error) {
	p.mu.Lock()
	busy, free := p.total > 0, d.o.Batch-p.total
	// room is what the claim can start: the rest of the shares of the busy
	// tenants that may start more, or one share when none may (another
	// claim follows one that starts something). Asked for every free
	// place, a claim of one tenant's backlog gave most of it back after
	// each delivery.
	room := 0
	var full []string
	for id, n := range p.busy {
		if d.admits(p, n) {
			room += d.perTenant - n
		} else {
			full = append(full, id)
		}
	}
	p.mu.Unlock()
	if room == 0 {
		room = d.perTenant
	}
	want := min(free, room)
	if want <= 0 || (batched && busy && want < (d.perTenant+1)/2) {
		return 0, nil
	}
	evs, err := d.o.Store.ClaimEvents(ctx, time.Now(), d.o.Lease, want, full...)
	if err != nil {
		return 0, err
	}
	var over []store.Event // past their tenant's share: due again at once, for a later claim
	started := 0
	unwanted := make([]bool, len(evs))
	for i, e := range evs {
		unwanted[i] = d.unwanted(ctx, e) // before the lock: a tenant may be read from the database
	}
	p.mu.Lock()
	for i, e := range evs {
		if unwanted[i] {
			// Delivered to nobody, at once: it takes no place.
			p.done = append(p.done, e.ID)
			started++
			continue
		}
		if !d.admits(p, p.busy[e.TenantID]) {
			over = append(over, e)
			continue
		}
		p.busy[e.TenantID]++
		p.total++
		started++
		p.wg.Add(1)
		go func() {
			delivered := false
			defer func() {
				p.mu.Lock()
				if delivered {
					p.done = append(p.done, e.ID)
				}
				if p.busy[e.TenantID]--; p.busy[e.TenantID] == 0 {
					delete(p.busy, e.TenantID)
				}
				p.total--
				p.mu.Unlock()
				select {
				case p.freed <- struct{}{}:
				default:
				}
				p.wg.Done()
			}()
			delivered = d.deliverSafely(ctx, e)
		}()
	}
	p.mu.Unlock()
	if len(over) > 0 {
		if err := d.o.Store.ReleaseEvents(context.WithoutCancel(ctx), over); err != nil {
			d.o.Logger.Warn("release events", "error", err.Error()) // their lease runs out instead
		}
	}
	return started, nil
}

// admits reports whether a tenant with n deliveries in flight may start
// one more; p.mu is held. A tenant holds at most its share of the places,
// and the last share goes only to tenants with none in flight: four
// tenants whose receivers hang would otherwise hold every place, each freed
// one going to the earliest due event, one of their backlog.
func (d *Dispatcher) admits(p *pool, n int) bool {
	return n < d.perTenant && (n == 0 || d.o.Batch-p.total > d.perTenant)
}

// Once claims the due events and delivers them; it returns how many it claimed.
func (d *Dispatcher) Once(ctx context.Context) (int, error) {
	evs, err := d.o.Store.ClaimEvents(ctx, time.Now(), d.o.Lease, d.o.Batch)
	if err != nil {
		return 0, err
	}
	// Claimed events belong to different customers: they may go out together.
	p := &pool{busy: map[string]int{}}
	for _, e := range evs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if d.deliverSafely(ctx, e) {
				p.mu.Lock()
				p.done = append(p.done, e.ID)
				p.mu.Unlock()
			}
		}()
	}
	p.wg.Wait()
	d.record(ctx, p)
	return len(evs), nil
}

// unwanted reports whether no endpoint of e's tenant subscribes to e's
// type: e is delivered without a request. A tenant that cannot be read now
// is left to deliver, which says why.
func (d *Dispatcher) unwanted(ctx context.Context, e store.Event) bool {
	t, err := d.o.Tenants(ctx, e.TenantID)
	return err == nil && !t.Wants(e.Type)
}

// deliverSafely delivers e and reports whether every endpoint acknowledged
// it, for the caller to record. A bug in one delivery leaves its lease to
// run out (the event is tried again), never the process down with every
// other one.
func (d *Dispatcher) deliverSafely(ctx context.Context, e store.Event) (delivered bool) {
	defer func() {
		if r := recover(); r != nil {
			d.panicked(e, r)
			delivered = false
		}
	}()
	return d.deliver(ctx, e)
}

// deliver sends e to every endpoint that wants it and reports whether all
// acknowledged it; a failure is recorded here (retried later, or dead).
func (d *Dispatcher) deliver(ctx context.Context, e store.Event) bool {
	t, err := d.o.Tenants(ctx, e.TenantID)
	if errors.Is(err, ErrTenantGone) {
		now := time.Now()
		d.o.Logger.Warn("webhook delivery failed", "event", e.ID, "type", e.Type, "tenant", e.TenantID, "dead", true, "error", err.Error())
		if err := d.o.Store.EventFailed(context.WithoutCancel(ctx), e.ID, now, true, err.Error()); err != nil {
			d.o.Logger.Warn("record failed delivery", "event", e.ID, "error", err.Error())
		}
		return false
	}
	if err != nil {
		// The tenant's settings cannot be read now: its lease runs out and the event is tried again.
		d.o.Logger.Warn("deliver event: tenant", "event", e.ID, "tenant", e.TenantID, "error", err.Error())
		return false
	}
	// Every endpoint at once: the event's delivery lasts at most one
	// timeout, less than its lease (one after another, a few slow endpoints
	// outlasted it, and another replica delivered the event meanwhile).
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	for _, ep := range t.Endpoints {
		if len(ep.Types) > 0 && !slices.Contains(ep.Types, e.Type) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.postSafely(ctx, ep, e); err != nil {
				mu.Lock()
				if failed == nil { // the next attempt sends it to every endpoint again; receivers de-duplicate by id
					failed = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return false // stopping: the lease runs out and a dispatcher delivers it again
	}
	if failed == nil {
		return true
	}
	// Record the failure even if the service is stopping right now.
	rec := context.WithoutCancel(ctx)
	now := time.Now()
	// Never sooner than the next poll: a schedule of nanoseconds retried
	// the event in a loop, flooding the receiver and the outbox's writer.
	next := now.Add(max(Backoff(t.RetryBase, t.RetryMax, e.Attempts), d.o.PollInterval))
	dead := !next.Before(e.RetriedSince().Add(t.MaxAge))
	level := slog.LevelInfo
	if dead {
		level = slog.LevelWarn
	}
	d.o.Logger.Log(ctx, level, "webhook delivery failed", "event", e.ID, "type", e.Type, "tenant", e.TenantID,
		"attempts", e.Attempts+1, "dead", dead, "error", failed.Error())
	if err := d.o.Store.EventFailed(rec, e.ID, next, dead, failed.Error()); err != nil {
		d.o.Logger.Warn("record failed delivery", "event", e.ID, "error", err.Error())
	}
	return false
}

// Backoff is the wait before retry attempts+1: exponential from base, capped
// at max, with jitter between half and all of it so that receivers coming
// back are not hit by every replica at once.
func Backoff(base, max time.Duration, attempts int) time.Duration {
	d := base
	for range min(attempts, 30) {
		d *= 2
		if d >= max {
			d = max
			break
		}
	}
	d = min(d, max)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// panicked logs a delivery's panic: that it happened at error level, what
// it said at debug only, as the API's recoverer does (a panic's value may
// quote what it was handling).
func (d *Dispatcher) panicked(e store.Event, r any) {
	d.o.Logger.Error("deliver event: panicked", "event", e.ID, "tenant", e.TenantID)
	d.o.Logger.Debug("deliver event: panic", "event", e.ID, "panic", fmt.Sprint(r))
}

// postSafely is post, a panic in it an error of this attempt: it runs on a
// goroutine of its own, beyond deliverSafely's recover, and must not take
// the process down.
func (d *Dispatcher) postSafely(ctx context.Context, ep Endpoint, e store.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.panicked(e, r)
			err = errors.New("the delivery panicked")
		}
	}()
	return d.post(ctx, ep, e)
}

func (d *Dispatcher) post(ctx context.Context, ep Endpoint, e store.Event) error {
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	body := []byte(e.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "customerd-webhooks")
	req.Header.Set("X-Customerd-Event-Id", e.ID)
	req.Header.Set("X-Customerd-Event-Type", e.Type)
	req.Header.Set(signature.Header, signature.Sign([]byte(ep.Secret), time.Now(), body))
	client := d.strict
	if ep.AllowPrivateNetwork {
		client = d.private
	}
	res, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s %s: %w", ue.Op, egress.Where(req.URL), ue.Err)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s answered %d", egress.Where(req.URL), res.StatusCode)
	}
	return nil
}
