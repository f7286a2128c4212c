package events_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerd/customerd/events"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

func TestBackoffGrowsWithJitterUpToItsCap(t *testing.T) {
	for attempts, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		for range 50 {
			if d := events.Backoff(time.Second, time.Minute, attempts); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v not in [%v, %v]", attempts, d, want/2, want)
			}
		}
	}
	if d := events.Backoff(time.Second, time.Minute, 40); d < 30*time.Second || d > time.Minute {
		t.Fatalf("capped: %v", d)
	}
}

func TestATenantWantsTheTypesItsEndpointsSubscribeTo(t *testing.T) {
	none := events.Tenant{}
	all := events.Tenant{Endpoints: []events.Endpoint{{URL: "https://crm.example"}}}
	some := events.Tenant{Endpoints: []events.Endpoint{{URL: "https://crm.example", Types: []string{"Customer:Activated"}}}}
	for _, c := range []struct {
		name string
		t    events.Tenant
		typ  string
		want bool
	}{
		{"no endpoint wants nothing", none, "Customer:Upserted", false},
		{"an endpoint without types wants every type", all, "Customer:Upserted", true},
		{"an endpoint with types wants those", some, "Customer:Activated", true},
		{"an endpoint with types wants no other", some, "Customer:Upserted", false},
	} {
		if got := c.t.Wants(c.typ); got != c.want {
			t.Errorf("%s: Wants(%q) = %v", c.name, c.typ, got)
		}
	}
}

// A bug in one delivery (here the tenant lookup panics) costs that event a
// retry, not the process nor the other events of the batch.
func TestAPanickingDeliveryTakesNothingDown(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLiteURL(t))
	now := time.Now().UTC()
	for _, tenant := range []string{"boom", "ok"} {
		if err := st.AddEvent(ctx, &store.Event{ID: "ev-" + tenant, TenantID: tenant, CustomerID: "c-" + tenant, Type: "Customer:Upserted",
			Payload: "{}", CreatedAt: now, NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var got atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer receiver.Close()
	var logged bytes.Buffer
	d := events.New(events.Options{Store: st, Lease: time.Minute, Timeout: 5 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Tenants: func(_ context.Context, id string) (events.Tenant, error) {
			if id == "boom" {
				var endpoints []events.Endpoint
				_ = endpoints[1] // a bug: index out of range
			}
			return events.Tenant{Endpoints: []events.Endpoint{{URL: receiver.URL, Secret: "0123456789abcdef", AllowPrivateNetwork: true}},
				MaxAge: time.Hour, RetryBase: time.Second, RetryMax: time.Minute}, nil
		}})
	if n, err := d.Once(ctx); err != nil || n != 2 {
		t.Fatalf("Once: %d, %v; want both events claimed", n, err)
	}
	if got.Load() != 1 {
		t.Fatalf("the other event: %d deliveries, want 1", got.Load())
	}
	// That it panicked is logged; what the panic said (it may quote what
	// it handled) is for the debug log only.
	if out := logged.String(); !strings.Contains(out, "panicked") || strings.Contains(out, "index out of range") {
		t.Fatalf("the log at info level:\n%s\nwant the panic told, its value not", out)
	}
}

// countingOutbox is the real store, counting the events claimed and released.
type countingOutbox struct {
	events.Outbox
	claimed, released atomic.Int64
	// records are the EventsDelivered writes, delivered the events they recorded.
	records, delivered atomic.Int64
}

func (c *countingOutbox) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int, skip ...string) ([]store.Event, error) {
	evs, err := c.Outbox.ClaimEvents(ctx, now, lease, limit, skip...)
	c.claimed.Add(int64(len(evs)))
	return evs, err
}

func (c *countingOutbox) EventsDelivered(ctx context.Context, ids []string, at time.Time) error {
	c.records.Add(1)
	err := c.Outbox.EventsDelivered(ctx, ids, at)
	if err == nil {
		c.delivered.Add(int64(len(ids)))
	}
	return err
}

func (c *countingOutbox) ReleaseEvents(ctx context.Context, evs []store.Event) error {
	c.released.Add(int64(len(evs)))
	return c.Outbox.ReleaseEvents(ctx, evs)
}

// A deployment of one tenant with a backlog claims about the events it
// delivers, not a batch to give most of it back after each delivery.
func TestOneTenantsBacklogIsNotClaimedAndReleasedOverAndOver(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	st := storetest.Open(t, storetest.SQLiteURL(t))
	now := time.Now().UTC()
	const n = 200
	for i := range n {
		if err := st.AddEvent(ctx, &store.Event{ID: fmt.Sprint("ev-", i), TenantID: "acme", CustomerID: fmt.Sprint("c-", i),
			Type: "Customer:Upserted", Payload: "{}", CreatedAt: now, NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var got atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1) == n {
			stop()
		}
	}))
	defer receiver.Close()
	out := &countingOutbox{Outbox: st}
	d := events.New(events.Options{Store: out, Lease: time.Minute, Timeout: 5 * time.Second, PollInterval: time.Hour,
		Tenants: func(context.Context, string) (events.Tenant, error) {
			return events.Tenant{Endpoints: []events.Endpoint{{URL: receiver.URL, Secret: "0123456789abcdef", AllowPrivateNetwork: true}},
				MaxAge: time.Hour, RetryBase: time.Second, RetryMax: time.Minute}, nil
		}})
	d.Run(ctx)
	if got.Load() < n {
		t.Fatalf("%d of %d events delivered", got.Load(), n)
	}
	if c, r := out.claimed.Load(), out.released.Load(); r > 0 {
		t.Fatalf("%d events claimed and %d of them released again to deliver %d", c, r, n)
	}
}

// Deliveries are recorded a batch at a time, not a write each (each took
// as much of the database as the sign-in that wrote its event), and an
// event no endpoint subscribes to is recorded without a request.
func TestDeliveriesAreRecordedABatchAtATime(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	st := storetest.Open(t, storetest.SQLiteURL(t))
	now := time.Now().UTC()
	const n = 300 // a third wanted by acme's endpoint, the rest by nobody
	for i := range n {
		typ := "Customer:Upserted"
		if i%3 != 0 {
			typ = "Customer:Deleted"
		}
		if err := st.AddEvent(ctx, &store.Event{ID: fmt.Sprint("ev-", i), TenantID: []string{"acme", "shop"}[i%2], CustomerID: fmt.Sprint("c-", i),
			Type: typ, Payload: "{}", CreatedAt: now, NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var got atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer receiver.Close()
	out := &countingOutbox{Outbox: st}
	d := events.New(events.Options{Store: out, Lease: time.Minute, Timeout: 5 * time.Second, PollInterval: 10 * time.Millisecond,
		Tenants: func(_ context.Context, id string) (events.Tenant, error) {
			t := events.Tenant{MaxAge: time.Hour, RetryBase: time.Second, RetryMax: time.Minute}
			if id == "acme" {
				t.Endpoints = []events.Endpoint{{URL: receiver.URL, Secret: "0123456789abcdef", Types: []string{"Customer:Upserted"}, AllowPrivateNetwork: true}}
			}
			return t, nil
		}})
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	for deadline := time.Now().Add(30 * time.Second); out.delivered.Load() < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	left, err := st.ClaimEvents(context.Background(), time.Now().Add(time.Hour), time.Minute, n)
	if err != nil || len(left) != 0 {
		t.Fatalf("%d events left undelivered (%v); %d recorded", len(left), err, out.delivered.Load())
	}
	// acme's Customer:Upserted: i%3 == 0 and i%2 == 0.
	if want := (n + 5) / 6; int(got.Load()) != want {
		t.Errorf("the receiver got %d requests, want %d: one for each event it subscribes to, none for the others", got.Load(), want)
	}
	t.Logf("%d events (%d delivered to the receiver) recorded in %d writes", n, got.Load(), out.records.Load())
	// A write an event was n writes. Each claim's unwanted events are one
	// write, and a claim asks for half a tenant's share at least (4); a
	// posted event may be written alone when its turn comes alone (as on a
	// busy machine): 250/4 + 50 at most, 47-49 when the machine is quiet.
	if r := out.records.Load(); r == 0 || r >= n/2 {
		t.Errorf("%d events recorded in %d writes: want a batch at a time", n, r)
	}
}

// An endpoint's URL may carry a credential in its query (a receiver that
// takes its token there): a failed delivery says where it went (scheme,
// host, path), never the query, in the log and in the event's last error,
// which the admin API and the events command show.
func TestAFailedDeliveryNeverTellsTheEndpointsQuery(t *testing.T) {
	ctx := context.Background()
	const token = "s3cret-receiver-token"
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer failing.Close()
	gone := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	gone.Close() // nothing listens there any more
	for name, url := range map[string]string{"answers 502": failing.URL, "unreachable": gone.URL} {
		t.Run(name, func(t *testing.T) {
			st := storetest.Open(t, storetest.SQLiteURL(t))
			now := time.Now().UTC()
			if err := st.AddEvent(ctx, &store.Event{ID: "ev-1", TenantID: "acme", CustomerID: "c-1", Type: "Customer:Upserted",
				Payload: "{}", CreatedAt: now, NextAt: now}); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			d := events.New(events.Options{Store: st, Lease: time.Minute, Timeout: 5 * time.Second,
				Logger: slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Tenants: func(context.Context, string) (events.Tenant, error) {
					return events.Tenant{Endpoints: []events.Endpoint{{URL: url + "/hooks/customerd?token=" + token, Secret: "0123456789abcdef",
						AllowPrivateNetwork: true}}, MaxAge: time.Hour, RetryBase: time.Second, RetryMax: time.Minute}, nil
				}})
			if n, err := d.Once(ctx); err != nil || n != 1 {
				t.Fatalf("Once: %d, %v", n, err)
			}
			evs, err := st.Events(ctx, store.EventQuery{IDs: []string{"ev-1"}})
			if err != nil || len(evs) != 1 {
				t.Fatalf("read the event: %v %v", evs, err)
			}
			if e := evs[0]; e.LastError == "" || strings.Contains(e.LastError, token) || !strings.Contains(e.LastError, "/hooks/customerd") {
				t.Errorf("the event's last error %q: want where it went, without the query", e.LastError)
			}
			if strings.Contains(logged.String(), token) {
				t.Errorf("the log holds the endpoint's query:\n%s", logged.String())
			}
		})
	}
}
