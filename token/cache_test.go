package token_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customerd/customerd/token"
)

// cached is a Service with the verified-token cache, and its metrics.
type cached struct {
	svc *token.Service
	reg *prometheus.Registry
}

func (f *fixture) cached(t testing.TB, retention time.Duration, clk *clock) cached {
	t.Helper()
	reg := prometheus.NewRegistry()
	svc, err := token.New(f.st, token.Options{IssuerBase: issuerBase, Retention: retention, Seal: sealKey, Now: clk.Now,
		Cache: token.CacheOptions{MaxEntries: 1000, MaxBytes: 1 << 20}, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	return cached{svc, reg}
}

// metric is the value of the cache's metric name.
func (c cached) metric(t testing.TB, name string) float64 {
	t.Helper()
	families, err := c.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// counts is the cache's hits and misses so far.
func (c cached) counts(t testing.TB) (hits, misses int) {
	return int(c.metric(t, "customerd_token_cache_hits_total")), int(c.metric(t, "customerd_token_cache_misses_total"))
}

func (c cached) want(t testing.TB, hits, misses int) {
	t.Helper()
	if h, m := c.counts(t); h != hits || m != misses {
		t.Fatalf("cache: %d hits, %d misses; want %d and %d", h, m, hits, misses)
	}
}

func TestTheCacheServesAVerifiedTokenOnlyUntilItExpires(t *testing.T) {
	f := newFixture(t)
	c := f.cached(t, retention, f.clk)
	tok := f.issue(t, c.svc, tenantA)
	first := accepted(t, c.svc, tenantA, tok)
	c.want(t, 0, 1)
	if again := accepted(t, c.svc, tenantA, tok); again.Subject != first.Subject || !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Fatalf("cached claims %+v, verified %+v", again, first)
	}
	c.want(t, 1, 1)
	if n := c.metric(t, "customerd_token_cache_entries"); n != 1 {
		t.Fatalf("entries gauge: %v", n)
	}
	if n := c.metric(t, "customerd_token_cache_bytes"); n < 100 {
		t.Fatalf("bytes gauge: %v", n)
	}

	// Past exp the entry is not served: the full check decides (its skew).
	f.clk.Set(first.ExpiresAt.Add(time.Second))
	accepted(t, c.svc, tenantA, tok)
	c.want(t, 1, 2)
	f.clk.Set(first.ExpiresAt.Add(61 * time.Second))
	refused(t, c.svc, tenantA, tok)
}

func TestTheCacheIsDroppedWhenTheTenantsKeysChange(t *testing.T) {
	f := newFixture(t)
	// Tokens that outlive their key's retention, so that a retired key's
	// token is still unexpired when its key leaves.
	c := f.cached(t, 30*time.Minute, f.clk)
	tok, err := c.svc.Issue(context.Background(), tenantA, token.Claims{Subject: "cust-1"}, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, c.svc, tenantA, tok)
	accepted(t, c.svc, tenantA, tok)
	c.want(t, 1, 1)

	// A new key: what the old keys verified is verified again (and still holds).
	f.clk.Advance(time.Second) // keys of one instant would tie
	if _, err := c.svc.Rotate(context.Background(), tenantA); err != nil {
		t.Fatal(err)
	}
	accepted(t, c.svc, tenantA, tok)
	c.want(t, 1, 2)
	accepted(t, c.svc, tenantA, tok)
	c.want(t, 2, 2)

	// The old key retires: its token is refused, cached or not.
	f.clk.Advance(time.Hour)
	refused(t, c.svc, tenantA, tok)
}

func TestTheCacheNeverAnswersForAnotherTenantOrAnotherForm(t *testing.T) {
	f := newFixture(t)
	c := f.cached(t, retention, f.clk)
	tok := f.issue(t, c.svc, tenantA)
	accepted(t, c.svc, tenantA, tok)
	accepted(t, c.svc, tenantA, tok)
	refused(t, c.svc, tenantB, tok)                     // keyed by tenant: verified for B, refused
	refused(t, c.svc, tenantA, otherForm(t, tok, true)) // keyed by the whole token: the high-S twin is checked, and refused
	refused(t, c.svc, tenantA, flipped(t, tok))
	c.want(t, 1, 4)
}
