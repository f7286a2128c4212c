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
	// ClaimEvents leases due events, for each customer only its oldest.
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Event, error)
	EventDelivered(ctx context.Context, id string, at time.Time) error
	EventFailed(ctx context.Context, id string, next time.Time, dead bool, reason string) error
}

// Options configure a Dispatcher.
type Options struct {
	Store Outbox
	// Tenants finds a tenant's webhooks as they are now.
	Tenants      func(ctx context.Context, id string) (Tenant, error)
	PollInterval time.Duration
	Lease        time.Duration
	Timeout      time.Duration
	Batch        int
	Logger       *slog.Logger
}

// Dispatcher delivers the outbox.
type Dispatcher struct {
	o Options
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
	return &Dispatcher{o: o,
		strict:  egress.NewClient(egress.Options{Timeout: o.Timeout}),
		private: egress.NewClient(egress.Options{Timeout: o.Timeout, AllowPrivateNetwork: true})}
}

// Run delivers events until ctx ends, and returns once no delivery is in flight.
func (d *Dispatcher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := d.Once(ctx)
		if err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("deliver events", "error", err.Error())
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(d.o.PollInterval):
		}
	}
}

// Once claims the due events and delivers them; it returns how many it claimed.
func (d *Dispatcher) Once(ctx context.Context) (int, error) {
	evs, err := d.o.Store.ClaimEvents(ctx, time.Now(), d.o.Lease, d.o.Batch)
	if err != nil {
		return 0, err
	}
	// Claimed events belong to different customers: they may go out together.
	var wg sync.WaitGroup
	for _, e := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A bug in one delivery leaves its lease to run out (the event is
			// tried again), never the process down with every other one.
			defer func() {
				if r := recover(); r != nil {
					d.o.Logger.Error("deliver event: panicked", "event", e.ID, "tenant", e.TenantID, "panic", fmt.Sprint(r))
				}
			}()
			d.deliver(ctx, e)
		}()
	}
	wg.Wait()
	return len(evs), nil
}

func (d *Dispatcher) deliver(ctx context.Context, e store.Event) {
	t, err := d.o.Tenants(ctx, e.TenantID)
	if errors.Is(err, ErrTenantGone) {
		now := time.Now()
		d.o.Logger.Warn("webhook delivery failed", "event", e.ID, "type", e.Type, "tenant", e.TenantID, "dead", true, "error", err.Error())
		if err := d.o.Store.EventFailed(context.WithoutCancel(ctx), e.ID, now, true, err.Error()); err != nil {
			d.o.Logger.Warn("record failed delivery", "event", e.ID, "error", err.Error())
		}
		return
	}
	if err != nil {
		// The tenant's settings cannot be read now: its lease runs out and the event is tried again.
		d.o.Logger.Warn("deliver event: tenant", "event", e.ID, "tenant", e.TenantID, "error", err.Error())
		return
	}
	var failed error
	for _, ep := range t.Endpoints {
		if len(ep.Types) > 0 && !slices.Contains(ep.Types, e.Type) {
			continue
		}
		if err := d.post(ctx, ep, e); err != nil {
			failed = err
			break // the next attempt sends it to every endpoint again; receivers de-duplicate by id
		}
	}
	if ctx.Err() != nil {
		return // stopping: the lease runs out and a dispatcher delivers it again
	}
	// Record the outcome even if the service is stopping right now.
	rec := context.WithoutCancel(ctx)
	now := time.Now()
	if failed == nil {
		if err := d.o.Store.EventDelivered(rec, e.ID, now); err != nil {
			d.o.Logger.Warn("record delivery", "event", e.ID, "error", err.Error())
		}
		return
	}
	next := now.Add(Backoff(t.RetryBase, t.RetryMax, e.Attempts))
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
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s answered %d", ep.URL, res.StatusCode)
	}
	return nil
}
