package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/customerd/customerd/store"
)

// Run runs the conformance suite on the stores open returns, a fresh one per case.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"a created customer reads back with its profile", customerRoundTrip},
		{"an email is unique per tenant, not across tenants", emailUniquePerTenant},
		{"a phone number is unique per tenant", phoneUniquePerTenant},
		{"a deleted customer is gone and frees its email", deletedCustomer},
		{"a tenant never reads another tenant's customer", tenantIsolation},
		{"a stale update is refused", staleUpdate},
		{"an update to a taken email is a conflict", updateTakenEmail},
		{"the live challenge is the newest that can be completed", liveChallenge},
		{"fifty concurrent creates of one email make one row", concurrentCreates},
		{"a challenge is consumed once", challengeSingleUse},
		{"an expired challenge cannot be consumed", challengeExpired},
		{"a challenge dies after its attempts", challengeAttempts},
		{"a throttle lets one through per interval", throttle},
		{"concurrent throttles let exactly one through", throttleConcurrent},
		{"counters count per key and day", counters},
		{"signing keys list newest first, per tenant", signingKeys},
		{"an identity links once", identities},
		{"a transaction rolls back on error", txRollback},
		{"purge drops what no longer matters", purge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

func newCustomer(tenant, email string) *store.Customer {
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := &store.Customer{ID: uuid.NewString(), TenantID: tenant, Profile: store.Profile{}, CreatedAt: now, UpdatedAt: now}
	if email != "" {
		c.Email = ptr(email)
	}
	return c
}

func mustCreate(t *testing.T, s store.Store, c *store.Customer) {
	t.Helper()
	if err := s.CreateCustomer(ctx, c); err != nil {
		t.Fatalf("create customer: %v", err)
	}
}

func customerRoundTrip(t *testing.T, s store.Store) {
	c := newCustomer("acme", "jane@example.com")
	c.Phone = ptr("+33612345678")
	c.Profile = store.Profile{"firstName": "Jané", "isProspect": true, "loyalty": map[string]any{"tier": "gold", "points": 12.5}}
	mustCreate(t, s, c)
	got, err := s.Customer(ctx, "acme", c.ID)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if *got.Email != "jane@example.com" || *got.Phone != "+33612345678" || got.Version != 1 {
		t.Fatalf("identifiers: %+v", got)
	}
	if got.Profile["firstName"] != "Jané" || got.Profile["isProspect"] != true {
		t.Fatalf("profile: %#v", got.Profile)
	}
	if tier := got.Profile["loyalty"].(map[string]any)["tier"]; tier != "gold" {
		t.Fatalf("nested profile: %#v", got.Profile)
	}
	if !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("createdAt %v, want %v", got.CreatedAt, c.CreatedAt)
	}
	byEmail, err := s.CustomerByEmail(ctx, "acme", "jane@example.com")
	if err != nil || byEmail.ID != c.ID {
		t.Fatalf("by email: %v %v", byEmail, err)
	}
	byPhone, err := s.CustomerByPhone(ctx, "acme", "+33612345678")
	if err != nil || byPhone.ID != c.ID {
		t.Fatalf("by phone: %v %v", byPhone, err)
	}
	if _, err := s.Customer(ctx, "acme", uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: %v, want ErrNotFound", err)
	}
}

func emailUniquePerTenant(t *testing.T, s store.Store) {
	mustCreate(t, s, newCustomer("acme", "jane@example.com"))
	if err := s.CreateCustomer(ctx, newCustomer("acme", "jane@example.com")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	mustCreate(t, s, newCustomer("other", "jane@example.com"))
	mustCreate(t, s, newCustomer("acme", ""))
	mustCreate(t, s, newCustomer("acme", ""))
}

func phoneUniquePerTenant(t *testing.T, s store.Store) {
	a := newCustomer("acme", "")
	a.Phone = ptr("+33612345678")
	mustCreate(t, s, a)
	b := newCustomer("acme", "b@example.com")
	b.Phone = ptr("+33612345678")
	if err := s.CreateCustomer(ctx, b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	if _, err := s.CustomerByEmail(ctx, "acme", "b@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused create left a row: %v", err)
	}
}

func deletedCustomer(t *testing.T, s store.Store) {
	c := newCustomer("acme", "jane@example.com")
	mustCreate(t, s, c)
	if err := s.DeleteCustomer(ctx, "acme", c.ID, time.Now()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read deleted: %v, want ErrNotFound", err)
	}
	if err := s.DeleteCustomer(ctx, "acme", c.ID, time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
	mustCreate(t, s, newCustomer("acme", "jane@example.com"))
}

func tenantIsolation(t *testing.T, s store.Store) {
	c := newCustomer("acme", "jane@example.com")
	mustCreate(t, s, c)
	if _, err := s.Customer(ctx, "other", c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant by id: %v", err)
	}
	if _, err := s.CustomerByEmail(ctx, "other", "jane@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant by email: %v", err)
	}
	if err := s.DeleteCustomer(ctx, "other", c.ID, time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant delete: %v", err)
	}
	stolen := *c
	stolen.TenantID = "other"
	stolen.Profile = store.Profile{"firstName": "Mallory"}
	if err := s.UpdateCustomer(ctx, &stolen); !errors.Is(err, store.ErrStale) {
		t.Fatalf("other tenant update: %v", err)
	}
}

func staleUpdate(t *testing.T, s store.Store) {
	c := newCustomer("acme", "jane@example.com")
	mustCreate(t, s, c)
	a, _ := s.Customer(ctx, "acme", c.ID)
	b, _ := s.Customer(ctx, "acme", c.ID)
	a.Profile["firstName"] = "A"
	if err := s.UpdateCustomer(ctx, a); err != nil {
		t.Fatalf("first update: %v", err)
	}
	if a.Version != 2 {
		t.Fatalf("version after update %d, want 2", a.Version)
	}
	b.Profile["firstName"] = "B"
	if err := s.UpdateCustomer(ctx, b); !errors.Is(err, store.ErrStale) {
		t.Fatalf("stale update: %v, want ErrStale", err)
	}
	got, _ := s.Customer(ctx, "acme", c.ID)
	if got.Profile["firstName"] != "A" {
		t.Fatalf("stale update landed: %v", got.Profile)
	}
}

func concurrentCreates(t *testing.T, s store.Store) {
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.CreateCustomer(ctx, newCustomer("acme", "race@example.com"))
		}()
	}
	wg.Wait()
	close(errs)
	created := 0
	for err := range errs {
		switch {
		case err == nil:
			created++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("create: %v, want nil or ErrConflict", err)
		}
	}
	if created != 1 {
		t.Fatalf("%d creates succeeded, want 1", created)
	}
}

func newChallenge(tenant string, expires time.Time) *store.Challenge {
	return &store.Challenge{ID: uuid.NewString(), TenantID: tenant, Channel: "email", Destination: "jane@example.com",
		CodeHash: "h", MaxAttempts: 5, ExpiresAt: expires.UTC(), CreatedAt: time.Now().UTC()}
}

func challengeSingleUse(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(10*time.Minute))
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Challenge(ctx, "other", c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant reads challenge: %v", err)
	}
	if ok, _ := s.ConsumeChallenge(ctx, "other", c.ID, time.Now()); ok {
		t.Fatal("other tenant consumed the challenge")
	}
	if ok, err := s.ConsumeChallenge(ctx, "acme", c.ID, time.Now()); !ok || err != nil {
		t.Fatalf("first consume: %v %v", ok, err)
	}
	if ok, err := s.ConsumeChallenge(ctx, "acme", c.ID, time.Now()); ok || err != nil {
		t.Fatalf("second consume: %v %v", ok, err)
	}
	got, _ := s.Challenge(ctx, "acme", c.ID)
	if got.ConsumedAt == nil {
		t.Fatal("consumedAt not recorded")
	}
}

func challengeExpired(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	_ = s.CreateChallenge(ctx, c)
	if ok, _ := s.ConsumeChallenge(ctx, "acme", c.ID, time.Now().Add(2*time.Minute)); ok {
		t.Fatal("expired challenge consumed")
	}
}

func challengeAttempts(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	_ = s.CreateChallenge(ctx, c)
	for i := 1; i <= 5; i++ {
		n, err := s.FailChallenge(ctx, "acme", c.ID)
		if err != nil || n != i {
			t.Fatalf("fail %d: %d %v", i, n, err)
		}
	}
	if ok, _ := s.ConsumeChallenge(ctx, "acme", c.ID, time.Now()); ok {
		t.Fatal("challenge consumed after its attempts")
	}
	if _, err := s.FailChallenge(ctx, "acme", uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail unknown: %v", err)
	}
}

func throttle(t *testing.T, s store.Store) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if wait, err := s.Throttle(ctx, "acme", "k", now, time.Minute); wait != 0 || err != nil {
		t.Fatalf("first: %v %v", wait, err)
	}
	wait, err := s.Throttle(ctx, "acme", "k", now.Add(20*time.Second), time.Minute)
	if err != nil || wait < 39*time.Second || wait > 40*time.Second {
		t.Fatalf("second: %v %v, want 40s", wait, err)
	}
	if wait, _ := s.Throttle(ctx, "other", "k", now, time.Minute); wait != 0 {
		t.Fatal("throttle crossed tenants")
	}
	if wait, _ := s.Throttle(ctx, "acme", "k", now.Add(61*time.Second), time.Minute); wait != 0 {
		t.Fatalf("after the interval: %v", wait)
	}
	later := now.Add(61 * time.Second)
	if err := s.Unthrottle(ctx, "acme", "k", later); err != nil {
		t.Fatal(err)
	}
	if wait, _ := s.Throttle(ctx, "acme", "k", later.Add(time.Second), time.Minute); wait != 0 {
		t.Fatalf("after unthrottle: %v", wait)
	}
}

func throttleConcurrent(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait, err := s.Throttle(ctx, "acme", "race", now, time.Minute)
			if err != nil {
				t.Errorf("throttle: %v", err)
				return
			}
			if wait == 0 {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if passed != 1 {
		t.Fatalf("%d passed, want 1", passed)
	}
}

func counters(t *testing.T, s store.Store) {
	for i := 1; i <= 3; i++ {
		if n, err := s.Count(ctx, "acme", "fail:x", "2026-11-26"); n != i || err != nil {
			t.Fatalf("count %d: %d %v", i, n, err)
		}
	}
	if n, _ := s.Count(ctx, "acme", "fail:x", "2026-11-27"); n != 1 {
		t.Fatalf("next day: %d", n)
	}
	if n, _ := s.Counted(ctx, "acme", "fail:x", "2026-11-26"); n != 3 {
		t.Fatalf("counted: %d", n)
	}
	if n, _ := s.Counted(ctx, "other", "fail:x", "2026-11-26"); n != 0 {
		t.Fatalf("other tenant counted: %d", n)
	}
}

func signingKeys(t *testing.T, s store.Store) {
	base := time.Now().UTC().Truncate(time.Second)
	for i := range 3 {
		k := &store.SigningKey{TenantID: "acme", KID: fmt.Sprintf("k%d", i), Alg: "ES256", PrivateKey: []byte{1, 2},
			PublicJWK: "{}", CreatedAt: base.Add(time.Duration(i) * time.Second)}
		if err := s.AddSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.AddSigningKey(ctx, &store.SigningKey{TenantID: "other", KID: "o", Alg: "ES256", PrivateKey: []byte{1}, PublicJWK: "{}", CreatedAt: base})
	keys, err := s.SigningKeys(ctx, "acme")
	if err != nil || len(keys) != 3 || keys[0].KID != "k2" || keys[2].KID != "k0" {
		t.Fatalf("keys %v %v", keys, err)
	}
	if string(keys[0].PrivateKey) != "\x01\x02" {
		t.Fatalf("private key bytes %v", keys[0].PrivateKey)
	}
	if err := s.AddSigningKey(ctx, &store.SigningKey{TenantID: "acme", KID: "k0", Alg: "ES256", PrivateKey: []byte{1}, PublicJWK: "{}", CreatedAt: base}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate kid: %v", err)
	}
}

func identities(t *testing.T, s store.Store) {
	c := newCustomer("acme", "jane@example.com")
	mustCreate(t, s, c)
	id := &store.Identity{TenantID: "acme", Provider: "google", Subject: "123", CustomerID: c.ID, CreatedAt: time.Now().UTC()}
	if err := s.LinkIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkIdentity(ctx, id); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("link twice: %v", err)
	}
	got, err := s.Identity(ctx, "acme", "google", "123")
	if err != nil || got.CustomerID != c.ID {
		t.Fatalf("identity: %v %v", got, err)
	}
	if _, err := s.Identity(ctx, "other", "google", "123"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant identity: %v", err)
	}
	if err := s.UnlinkIdentity(ctx, "acme", "google", "123"); err != nil {
		t.Fatalf("unlink: %v", err)
	}
	if _, err := s.Identity(ctx, "acme", "google", "123"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("identity after unlink: %v", err)
	}
}

func txRollback(t *testing.T, s store.Store) {
	boom := errors.New("boom")
	err := s.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateCustomer(ctx, newCustomer("acme", "tx@example.com")); err != nil {
			return err
		}
		if _, err := tx.CustomerByEmail(ctx, "acme", "tx@example.com"); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("tx: %v", err)
	}
	if _, err := s.CustomerByEmail(ctx, "acme", "tx@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled back row is there: %v", err)
	}
}

func purge(t *testing.T, s store.Store) {
	old := newChallenge("acme", time.Now().Add(-48*time.Hour))
	live := newChallenge("acme", time.Now().Add(time.Minute))
	_ = s.CreateChallenge(ctx, old)
	_ = s.CreateChallenge(ctx, live)
	_, _ = s.Count(ctx, "acme", "k", "2000-01-01")
	if err := s.Purge(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Challenge(ctx, "acme", old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old challenge kept: %v", err)
	}
	if _, err := s.Challenge(ctx, "acme", live.ID); err != nil {
		t.Fatalf("live challenge purged: %v", err)
	}
	if n, _ := s.Counted(ctx, "acme", "k", "2000-01-01"); n != 0 {
		t.Fatalf("old counter kept: %d", n)
	}
}

func updateTakenEmail(t *testing.T, s store.Store) {
	mustCreate(t, s, newCustomer("acme", "a@example.com"))
	b := newCustomer("acme", "b@example.com")
	mustCreate(t, s, b)
	b.Email = ptr("a@example.com")
	if err := s.UpdateCustomer(ctx, b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update to a taken email: %v, want ErrConflict", err)
	}
}

func liveChallenge(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	if _, err := s.LiveChallenge(ctx, "acme", "jane@example.com", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("none yet: %v", err)
	}
	older := newChallenge("acme", now.Add(time.Minute))
	older.CreatedAt = now.Add(-time.Second)
	newer := newChallenge("acme", now.Add(time.Minute))
	dead := newChallenge("acme", now.Add(-time.Second))
	dead.CreatedAt = now.Add(time.Second)
	for _, c := range []*store.Challenge{older, newer, dead} {
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LiveChallenge(ctx, "acme", "jane@example.com", now)
	if err != nil || got.ID != newer.ID {
		t.Fatalf("live: %v %v, want %s", got, err, newer.ID)
	}
	if _, err := s.LiveChallenge(ctx, "other", "jane@example.com", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	if err := s.ExpireChallenge(ctx, "acme", newer.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LiveChallenge(ctx, "acme", "jane@example.com", now); got == nil || got.ID != older.ID {
		t.Fatalf("after expiring the newest: %v", got)
	}
}
