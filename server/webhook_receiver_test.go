package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store"
)

// hookEvent is one verified delivery.
type hookEvent struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	TenantID   string         `json:"tenantId"`
	CustomerID string         `json:"customerId"`
	OccurredAt string         `json:"occurredAt"`
	Data       map[string]any `json:"data"`
}

// receiver is a tenant's webhook endpoint: it checks every signature,
// refuses some deliveries on purpose, and records what it acknowledged.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server
	// refuse, when set, answers 503 to the nth request (from 1).
	refuse func(n int) bool
	// hold, when set, is run while the nth delivery is in flight.
	hold func(n int)

	mu       sync.Mutex
	n        int
	acked    []hookEvent
	inFlight map[string]int
	overlaps int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, secret: "whsec-0123456789abcdef", inFlight: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// yaml is the webhooks block of a tenant that sends here.
func (r *receiver) yaml() string {
	return `{endpoints: [{url: "` + r.srv.URL + `", secret: "` + r.secret + `", allowPrivateNetwork: true}], retryBase: 5ms, retryMax: 40ms, maxAge: 1h}`
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !r.signed(req.Header.Get("X-Customerd-Signature"), body) {
		r.t.Errorf("bad signature %q", req.Header.Get("X-Customerd-Signature"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e hookEvent
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || e.ID != req.Header.Get("X-Customerd-Event-Id") {
		r.t.Errorf("event body: %v %s", err, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.n++
	n := r.n
	r.inFlight[e.ID]++
	if r.inFlight[e.ID] > 1 {
		r.overlaps++
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight[e.ID]--
		r.mu.Unlock()
	}()
	if r.hold != nil {
		r.hold(n)
	}
	if r.refuse != nil && r.refuse(n) {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.mu.Lock()
	r.acked = append(r.acked, e)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// signed checks t=…,v1=… as a receiver in any language would.
func (r *receiver) signed(header string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, []byte(r.secret))
	m.Write([]byte(ts + "." + string(body)))
	return hmac.Equal([]byte(sig), []byte(hex.EncodeToString(m.Sum(nil))))
}

// unique is the acknowledged events de-duplicated by id, in first-arrival order.
func (r *receiver) unique() []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []hookEvent
	for _, e := range r.acked {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

func (r *receiver) ofType(typ, customer string) []hookEvent {
	var out []hookEvent
	for _, e := range r.unique() {
		if e.Type == typ && (customer == "" || e.CustomerID == customer) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls cond until it holds; it fails the test after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// undelivered counts the outbox events not yet acknowledged (dead ones included).
func undelivered(t *testing.T, env *apptest.Env) int {
	t.Helper()
	all, err := env.App.Store.Events(ctx, store.EventQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range all {
		if e.DeliveredAt == nil {
			n++
		}
	}
	return n
}
