package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
		{"an email is verified only on a live account of its tenant that verified it", emailVerified},
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
		{"concurrent attempts never pass a challenge's attempts or the counter's limit", challengeAttemptsConcurrent},
		{"a right code is never charged", challengeRightNotCharged},
		{"a peek by destination reads the newest live challenge of the purposes asked", challengePeekByDestination},
		{"a throttle lets one through per interval", throttle},
		{"concurrent throttles let exactly one through", throttleConcurrent},
		{"counters count per key and day", counters},
		{"signing keys list newest first, per tenant", signingKeys},
		{"an identity links once", identities},
		{"a transaction rolls back on error", txRollback},
		{"purge drops what no longer matters", purge},
		{"purge forgets a challenge written for an account as it was erased", purgeErased},
		{"a contact change an erasure needs is not purged while its account has a dead event", purgeKeepsContactChanges},
		{"a challenge keeps the change it holds", challengePending},
		{"an attempt charges its destination's counter", challengeCounter},
		{"a right code's attempt reads the account that holds its destination", challengeHolder},
		{"an account is created with its identity and events, using up its challenge", createAccount},
		{"a taken identifier or identity leaves nothing of a new account", createAccountConflict},
		{"a plain first sign-in is made in its attempt", firstSignIn},
		{"only a plain first sign-in is made in its attempt", firstSignInOnlyWhenPlain},
		{"an account that cannot be written undoes its attempt", firstSignInConflict},
		{"concurrent right codes on one challenge make one account", firstSignInConcurrent},
		{"a new account inside a transaction rolls back with it", createAccountInTx},
		{"concurrent accounts on one challenge: exactly one is created", createAccountConcurrent},
		{"concurrent accounts each get their own answer, and only the good ones are written", createAccountMixed},
		{"an event rolls back with its transaction", eventInTx},
		{"events are claimed in order, one per customer at a time", eventOrder},
		{"deliveries are recorded a batch at a time", eventsDeliveredTogether},
		{"a claimed event is not claimed again while leased", eventLease},
		{"a claim leaves the tenants it skips, and a released event is due at once", eventSkipAndRelease},
		{"a release never ends a lease another replica has taken since", eventReleaseAfterLeaseTaken},
		{"a failed event is retried later or dies, and a dead one replays", eventFailure},
		{"concurrent claims never hand out one event twice", eventConcurrentClaims},
		{"an idempotency key runs once and keeps its answer", idempotency},
		{"concurrent idempotency keys let exactly one run", idempotencyConcurrent},
		{"an answer finished after its account's erasure is not kept", idempotencyAfterErasure},
		{"an abandoned request finishing after its key was taken over stores nothing", idempotencyAfterTakeOver},
		{"a day's limit beyond 32 bits judges codes as any other", limitBeyond32Bits},
		{"updatedSince finer than a microsecond keeps what it keeps on both databases", updatedSinceSubMicrosecond},
		{"a revocation of sessions never moves back", revocationNeverMovesBack},
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

func emailVerified(t *testing.T, s store.Store) {
	verified := newCustomer("acme", "jane@example.com")
	verified.EmailVerified = true
	mustCreate(t, s, verified)
	mustCreate(t, s, newCustomer("acme", "unproven@example.com"))
	gone := newCustomer("acme", "gone@example.com")
	gone.EmailVerified = true
	mustCreate(t, s, gone)
	if err := s.DeleteCustomer(ctx, "acme", gone.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant, email string
		want          bool
	}{
		{"acme", "jane@example.com", true},
		{"acme", "unproven@example.com", false},
		{"acme", "gone@example.com", false},
		{"acme", "nobody@example.com", false},
		{"other", "jane@example.com", false},
	} {
		if got, err := s.EmailVerified(ctx, c.tenant, c.email); got != c.want || err != nil {
			t.Errorf("EmailVerified(%s, %s): %v %v, want %v", c.tenant, c.email, got, err, c.want)
		}
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
	if ok, _ := s.ConsumeChallenge(ctx, "other", store.ChallengeUse{ID: c.ID, At: time.Now()}); ok {
		t.Fatal("other tenant consumed the challenge")
	}
	if ok, err := s.ConsumeChallenge(ctx, "acme", store.ChallengeUse{ID: c.ID, At: time.Now()}); !ok || err != nil {
		t.Fatalf("first consume: %v %v", ok, err)
	}
	if ok, err := s.ConsumeChallenge(ctx, "acme", store.ChallengeUse{ID: c.ID, At: time.Now()}); ok || err != nil {
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
	if ok, _ := s.ConsumeChallenge(ctx, "acme", store.ChallengeUse{ID: c.ID, At: time.Now().Add(2 * time.Minute)}); ok {
		t.Fatal("expired challenge consumed")
	}
}

// verify is one attempt with hash on challenge id of acme (newChallenge's
// hash is "h"), a wrong code charged to fail:destination on a fixed day, up
// to limit.
func verify(s store.Store, id, hash string, limit int, first map[string]*store.NewAccount) (*store.Verdict, error) {
	return s.Verify(ctx, store.Verification{Attempt: store.Attempt{Tenant: "acme", ID: id, Now: time.Now(), CounterPrefix: "fail:",
		Day: "2026-11-26", Limit: limit}, CodeHash: hash, First: first})
}

// attempt is one wrong code on challenge id.
func attempt(s store.Store, id string, limit int) (*store.ChallengeRead, error) {
	v, err := verify(s, id, "not h", limit, nil)
	if err != nil {
		return nil, err
	}
	if v.Right {
		return nil, errors.New("a wrong code was right")
	}
	return v.ChallengeRead, nil
}

func challengeAttempts(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	_ = s.CreateChallenge(ctx, c)
	for i := 1; i <= 5; i++ {
		got, err := attempt(s, c.ID, 100)
		if err != nil || got.Attempts != i || got.Counted != i || got.Locked {
			t.Fatalf("attempt %d: %+v %v", i, got, err)
		}
	}
	if _, err := attempt(s, c.ID, 100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a sixth attempt: %v, want ErrNotFound", err)
	}
	if _, err := attempt(s, uuid.NewString(), 100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("attempt on an unknown challenge: %v", err)
	}
	if got, _ := s.Challenge(ctx, "acme", c.ID); got.Attempts != 5 {
		t.Fatalf("attempts stored: %d, want 5", got.Attempts)
	}
}

// Two hundred attempts at once: a challenge evaluates no more than its
// attempts, and the counter never passes its limit.
func challengeAttemptsConcurrent(t *testing.T, s store.Store) {
	var ids []string
	for range 4 {
		c := newChallenge("acme", time.Now().Add(time.Minute))
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	const limit = 7
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		evaluated = map[string]int{}
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := attempt(s, ids[i%len(ids)], limit)
			switch {
			case err == nil && !got.Locked:
				mu.Lock()
				evaluated[got.ID]++
				mu.Unlock()
			case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnavailable):
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	total := 0
	for id, n := range evaluated {
		if n > 5 {
			t.Errorf("challenge %s: %d codes evaluated, want at most 5", id, n)
		}
		total += n
	}
	if n, _ := s.Counted(ctx, "acme", "fail:jane@example.com", "2026-11-26"); n > limit || total > limit {
		t.Fatalf("counter %d, %d codes evaluated; the limit is %d", n, total, limit)
	}
	for _, id := range ids {
		if got, _ := s.Challenge(ctx, "acme", id); got.Attempts > 5 {
			t.Errorf("challenge %s: %d attempts stored", id, got.Attempts)
		}
	}
}

// Only wrong codes count against the day: a right one is never charged.
func challengeRightNotCharged(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	_ = s.CreateChallenge(ctx, c)
	if _, err := attempt(s, c.ID, 100); err != nil {
		t.Fatal(err)
	}
	got, err := verify(s, c.ID, "h", 100, nil)
	if err != nil || !got.Right || got.Locked || got.Counted != 1 || got.Attempts != 2 || got.ConsumedAt != nil || got.Created != nil {
		t.Fatalf("the right code: %+v %v", got, err)
	}
	if n, _ := s.Counted(ctx, "acme", "fail:"+c.Destination, "2026-11-26"); n != 1 {
		t.Fatalf("counter after the right code: %d, want 1", n)
	}
	if ok, err := s.ConsumeChallenge(ctx, "acme", store.ChallengeUse{ID: c.ID, At: time.Now()}); !ok || err != nil {
		t.Fatalf("consume: %v %v", ok, err)
	}
	if n, _ := s.Counted(ctx, "acme", "fail:"+c.Destination, "2026-11-26"); n != 1 {
		t.Fatalf("counter after the consume: %d, want 1", n)
	}
}

// By destination, the newest live challenge of a purpose other than the
// one excluded is read, spending nothing.
func challengePeekByDestination(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	signin := newChallenge("acme", now.Add(time.Minute))
	signin.Purpose, signin.CreatedAt = "signin", now.Add(-2*time.Second)
	contact := newChallenge("acme", now.Add(time.Minute))
	contact.Purpose, contact.CreatedAt = "contact", now.Add(-time.Second)
	for _, c := range []*store.Challenge{signin, contact} {
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.PeekChallenge(ctx, "acme", "jane@example.com", "contact", now); err != nil || got.ID != signin.ID || got.Purpose != "signin" {
		t.Fatalf("by destination: %+v %v, want the sign-in challenge", got, err)
	}
	if got, err := s.PeekChallenge(ctx, "acme", "jane@example.com", "signin", now); err != nil || got.ID != contact.ID || got.Attempts != 0 {
		t.Fatalf("by destination except signin: %+v %v", got, err)
	}
	if _, err := s.PeekChallenge(ctx, "other", "jane@example.com", "contact", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's: %v", err)
	}
	if _, err := s.PeekChallenge(ctx, "acme", "jane@example.com", "contact", now.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired: %v", err)
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
	// A last use a clock that ran ahead wrote holds no longer than an
	// interval: more than one ahead, nothing; less, at most the interval.
	if wait, _ := s.Throttle(ctx, "acme", "ahead", now.Add(365*24*time.Hour), time.Minute); wait != 0 {
		t.Fatalf("first ahead: %v", wait)
	}
	if wait, _ := s.Throttle(ctx, "acme", "ahead", now, time.Minute); wait != 0 {
		t.Fatalf("after a clock stepped back a year: %v, want 0", wait)
	}
	if wait, _ := s.Throttle(ctx, "acme", "near", now.Add(30*time.Second), time.Minute); wait != 0 {
		t.Fatalf("first near: %v", wait)
	}
	if wait, _ := s.Throttle(ctx, "acme", "near", now, time.Minute); wait <= 0 || wait > time.Minute {
		t.Fatalf("after a clock 30 s ahead: %v, want at most the interval", wait)
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
	for _, c := range []struct {
		tenant, customer string
		want             bool
	}{{"acme", c.ID, true}, {"other", c.ID, false}, {"acme", "nobody", false}} {
		if linked, err := s.Linked(ctx, c.tenant, c.customer); linked != c.want || err != nil {
			t.Fatalf("Linked(%s, %s): %v %v, want %v", c.tenant, c.customer, linked, err, c.want)
		}
	}
	if err := s.UnlinkIdentity(ctx, "acme", "google", "123"); err != nil {
		t.Fatalf("unlink: %v", err)
	}
	if linked, err := s.Linked(ctx, "acme", c.ID); linked || err != nil {
		t.Fatalf("Linked after the unlink: %v %v", linked, err)
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
	// More than one of the janitor's batches (1,000 rows a statement).
	for i := range 1000 {
		if _, err := s.Count(ctx, "acme", fmt.Sprint("k", i), "2000-01-01"); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	// Delivered events past the cutoff, more than one of the walk's
	// batches of them, beside what stays: an old event still undelivered,
	// an old one delivered since the cutoff, a new one delivered.
	day := 24 * time.Hour
	event := func(id string, created time.Time, delivered *time.Time) {
		t.Helper()
		if err := s.AddEvent(ctx, &store.Event{ID: id, TenantID: "acme", CustomerID: "c-" + id, Type: "Customer:Upserted", Payload: "{}",
			CreatedAt: created, NextAt: created, DeliveredAt: delivered}); err != nil {
			t.Fatal(err)
		}
	}
	long, lately := now.Add(-40*day), now.Add(-10*day)
	event("kept-undelivered", long, nil)
	for i := range 1100 {
		event(fmt.Sprint("purged-", i), long, &long)
	}
	event("kept-delivered-lately", long, &lately)
	event("kept-new", now, &now)
	if err := s.Purge(ctx, store.Cutoffs{ChallengesExpired: now.Add(-24 * time.Hour), CounterDays: "2026-01-01",
		Throttles: now.Add(-24 * time.Hour), IdempotencyKeys: now.Add(-24 * time.Hour), DeliveredEvents: now.Add(-30 * day)}); err != nil {
		t.Fatal(err)
	}
	left, err := s.Events(ctx, store.EventQuery{Tenant: "acme", Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range left {
		ids = append(ids, e.ID)
	}
	if want := []string{"kept-undelivered", "kept-delivered-lately", "kept-new"}; !slices.Equal(ids, want) {
		t.Fatalf("events after the purge: %d, the first %v; want %v", len(ids), ids[:min(len(ids), 5)], want)
	}
	if _, err := s.Challenge(ctx, "acme", old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old challenge kept: %v", err)
	}
	if _, err := s.Challenge(ctx, "acme", live.ID); err != nil {
		t.Fatalf("live challenge purged: %v", err)
	}
	for _, k := range []string{"k", "k0", "k999"} {
		if n, _ := s.Counted(ctx, "acme", k, "2000-01-01"); n != 0 {
			t.Fatalf("old counter %s kept: %d", k, n)
		}
	}
}

// erase erases account id of tenant acme at now, its data untouched by
// scrubbing; t is skipped when s erases nothing.
func erase(t *testing.T, s store.Store, id string, now time.Time) {
	t.Helper()
	eraser, ok := s.(interface {
		EraseCustomer(context.Context, store.Erasure) error
	})
	if !ok {
		t.Skipf("%T erases nothing", s)
	}
	if err := eraser.EraseCustomer(ctx, store.Erasure{TenantID: "acme", CustomerID: id, At: now,
		Scrub: func(p string) (string, error) { return p, nil }, Keys: func(string) []string { return nil },
		Event: &store.Event{ID: uuid.NewString(), TenantID: "acme", CustomerID: id, Type: "Customer:Deleted", Payload: "{}",
			CreatedAt: now, NextAt: now}}); err != nil {
		t.Fatal(err)
	}
}

func purgeErased(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	erased, kept := newCustomer("acme", "erased@example.com"), newCustomer("acme", "kept@example.com")
	mustCreate(t, s, erased)
	mustCreate(t, s, kept)
	erase(t, s, erased.ID, now)
	// A check-in that read the account before the erasure writes its challenge after it.
	late, live := newChallenge("acme", now.Add(time.Hour)), newChallenge("acme", now.Add(time.Hour))
	late.CustomerID, live.CustomerID = &erased.ID, &kept.ID
	for _, c := range []*store.Challenge{late, live} {
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	if err := s.Purge(ctx, store.Cutoffs{ChallengesExpired: now.Add(-day), CounterDays: "2000-01-01", Throttles: now.Add(-day),
		IdempotencyKeys: now.Add(-day), DeliveredEvents: now.Add(-30 * day), Erased: now.Add(-2 * day)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Challenge(ctx, "acme", late.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the erased account's late challenge kept: %v", err)
	}
	if _, err := s.Challenge(ctx, "acme", live.ID); err != nil {
		t.Fatalf("a live account's challenge purged: %v", err)
	}
}

// An erasure finds the accounts its customer's address left by their
// contact changes alone: one stays while an earlier event of its account,
// which may name the address, stays (dead, or replayed and delivered
// later), and goes with it.
func purgeKeepsContactChanges(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	day := 24 * time.Hour
	long, lately := now.Add(-40*day), now.Add(-10*day)
	event := func(id, customer, typ string, delivered, dead *time.Time) {
		t.Helper()
		payload := `{"data":{"email":"ann@example.com"}}`
		if typ == "Customer:ContactChanged" {
			payload = `{"data":{},"previous":{"email":"ann@example.com"}}`
		}
		if err := s.AddEvent(ctx, &store.Event{ID: id, TenantID: "acme", CustomerID: customer, Type: typ, Payload: payload,
			CreatedAt: long, NextAt: long, DeliveredAt: delivered, DeadAt: dead}); err != nil {
			t.Fatal(err)
		}
	}
	// Its first event died; the address left it, and the change and a
	// later event were delivered.
	event("dead-upserted", "dead", "Customer:Upserted", nil, &long)
	event("dead-changed", "dead", "Customer:ContactChanged", &long, nil)
	event("dead-later", "dead", "Customer:Upserted", &long, nil)
	// Its first event was replayed and delivered lately.
	event("replayed-upserted", "replayed", "Customer:Upserted", &lately, nil)
	event("replayed-changed", "replayed", "Customer:ContactChanged", &long, nil)
	// Everything delivered in order.
	event("plain-upserted", "plain", "Customer:Upserted", &long, nil)
	event("plain-changed", "plain", "Customer:ContactChanged", &long, nil)
	left := func(cutoff time.Time) []string {
		t.Helper()
		if err := s.Purge(ctx, store.Cutoffs{ChallengesExpired: now.Add(-day), CounterDays: "2000-01-01", Throttles: now.Add(-day),
			IdempotencyKeys: now.Add(-day), DeliveredEvents: cutoff, Erased: now.Add(-2 * day)}); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, store.EventQuery{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return ids
	}
	if ids, want := left(now.Add(-30*day)), []string{"dead-upserted", "dead-changed", "replayed-upserted", "replayed-changed"}; !slices.Equal(ids, want) {
		t.Fatalf("events after the purge: %v, want %v", ids, want)
	}
	// Once the dead event is replayed and delivered, the change goes with it.
	if n, err := s.ReplayEvents(ctx, "acme", []string{"dead-upserted"}, now); err != nil || n != 1 {
		t.Fatalf("replay: %v %d", err, n)
	}
	if err := s.EventsDelivered(ctx, []string{"dead-upserted"}, now); err != nil {
		t.Fatal(err)
	}
	if ids := left(now.Add(time.Second)); len(ids) != 0 {
		t.Fatalf("events after a purge of everything delivered: %v", ids)
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
	if _, err := s.LiveChallenge(ctx, "acme", "jane@example.com", "", now); !errors.Is(err, store.ErrNotFound) {
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
	got, err := s.LiveChallenge(ctx, "acme", "jane@example.com", "", now)
	if err != nil || got.ID != newer.ID {
		t.Fatalf("live: %v %v, want %s", got, err, newer.ID)
	}
	if _, err := s.LiveChallenge(ctx, "other", "jane@example.com", "", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	if err := s.ExpireChallenge(ctx, "acme", newer.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LiveChallenge(ctx, "acme", "jane@example.com", "", now); got == nil || got.ID != older.ID {
		t.Fatalf("after expiring the newest: %v", got)
	}
}

func challengePending(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	c.Pending = `{"set":{"firstName":"Jane"}}`
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Challenge(ctx, "acme", c.ID)
	if err != nil || got.Pending != c.Pending {
		t.Fatalf("pending: %v %q", err, got.Pending)
	}
}

func newEvent(tenant, customer, typ string) *store.Event {
	return &store.Event{ID: uuid.NewString(), TenantID: tenant, CustomerID: customer, Type: typ,
		Payload: `{"type":"` + typ + `"}`, CreatedAt: time.Now().UTC()}
}

func mustAddEvent(t *testing.T, s store.Store, e *store.Event) {
	t.Helper()
	if err := s.AddEvent(ctx, e); err != nil {
		t.Fatalf("add event: %v", err)
	}
}

func eventInTx(t *testing.T, s store.Store) {
	boom := errors.New("boom")
	err := s.Tx(ctx, func(tx store.Store) error {
		if err := tx.AddEvent(ctx, newEvent("acme", "c1", "Customer:Upserted")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("tx: %v", err)
	}
	got, err := s.ClaimEvents(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("rolled back event claimed: %v %d", err, len(got))
	}
}

func eventOrder(t *testing.T, s store.Store) {
	a1, a2, b1 := newEvent("acme", "a", "one"), newEvent("acme", "a", "two"), newEvent("acme", "b", "one")
	for _, e := range []*store.Event{a1, a2, b1} {
		mustAddEvent(t, s, e)
	}
	now := time.Now().Add(time.Second)
	got, err := s.ClaimEvents(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 2 || got[0].ID != a1.ID || got[1].ID != b1.ID {
		t.Fatalf("first claim: %v %+v", err, got)
	}
	if got[0].Payload != a1.Payload || got[0].CustomerID != "a" || got[0].Seq >= got[1].Seq {
		t.Fatalf("claimed event: %+v", got[0])
	}
	if err := s.EventsDelivered(ctx, []string{a1.ID}, now); err != nil {
		t.Fatal(err)
	}
	got, err = s.ClaimEvents(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].ID != a2.ID {
		t.Fatalf("after delivering the first of a: %v %+v", err, got)
	}
}

func eventsDeliveredTogether(t *testing.T, s store.Store) {
	a, b, c := newEvent("acme", "a", "one"), newEvent("acme", "b", "one"), newEvent("shop", "c", "one")
	for _, e := range []*store.Event{a, b, c} {
		mustAddEvent(t, s, e)
	}
	now := time.Now().Add(time.Second)
	if got, err := s.ClaimEvents(ctx, now, time.Minute, 10); err != nil || len(got) != 3 {
		t.Fatalf("claim: %v %+v", err, got)
	}
	// Nothing, and an id no event has (erased meanwhile), are no error.
	if err := s.EventsDelivered(ctx, nil, now); err != nil {
		t.Fatal(err)
	}
	if err := s.EventsDelivered(ctx, []string{a.ID, uuid.NewString(), c.ID}, now); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, store.EventQuery{Limit: 10})
	if err != nil || len(evs) != 3 {
		t.Fatalf("events: %v %+v", err, evs)
	}
	for _, e := range evs {
		delivered := e.ID == a.ID || e.ID == c.ID
		if (e.DeliveredAt != nil) != delivered || (delivered && (e.Attempts != 1 || e.LeaseUntil != nil || e.DeliveredAt.Sub(now).Abs() > time.Millisecond)) {
			t.Errorf("event %s: delivered %v, attempts %d, lease %v; want delivered %v", e.ID, e.DeliveredAt, e.Attempts, e.LeaseUntil, delivered)
		}
	}
	// b is still leased; once its lease runs out it is the one due.
	if got, err := s.ClaimEvents(ctx, now.Add(2*time.Minute), time.Minute, 10); err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("after delivering a and c: %v %+v", err, got)
	}
}

func eventLease(t *testing.T, s store.Store) {
	e := newEvent("acme", "a", "one")
	mustAddEvent(t, s, e)
	now := time.Now().Add(time.Second)
	if got, _ := s.ClaimEvents(ctx, now, time.Minute, 10); len(got) != 1 {
		t.Fatalf("claim: %d", len(got))
	}
	if got, _ := s.ClaimEvents(ctx, now, time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed twice while leased")
	}
	// A replica that died mid-delivery: once the lease ran out, another takes it.
	if got, _ := s.ClaimEvents(ctx, now.Add(2*time.Minute), time.Minute, 10); len(got) != 1 {
		t.Fatalf("an expired lease is not claimed again")
	}
}

func eventSkipAndRelease(t *testing.T, s store.Store) {
	a, b, c := newEvent("acme", "a", "one"), newEvent("shop", "b", "one"), newEvent("mall", "c", "one")
	for _, e := range []*store.Event{a, b, c} {
		mustAddEvent(t, s, e)
	}
	now := time.Now().Add(time.Second)
	got, err := s.ClaimEvents(ctx, now, time.Minute, 10, "acme", "mall")
	if err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("claim skipping acme and mall: %v %+v", err, got)
	}
	c2, err := s.ClaimEvents(ctx, now, time.Minute, 10, "acme")
	if err != nil || len(c2) != 1 || c2[0].ID != c.ID {
		t.Fatalf("claim skipping acme: %v %+v", err, c2)
	}
	if err := s.ReleaseEvents(ctx, append(got, c2...)); err != nil {
		t.Fatal(err)
	}
	got, err = s.ClaimEvents(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("after the release every event is due: %v %+v", err, got)
	}
	if err := s.EventsDelivered(ctx, []string{a.ID}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseEvents(ctx, got[:1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimEvents(ctx, now.Add(2*time.Minute), time.Minute, 10); len(got) != 2 {
		t.Fatalf("a delivered event released is claimed again: %+v", got)
	}
}

func eventReleaseAfterLeaseTaken(t *testing.T, s store.Store) {
	e := newEvent("acme", "a", "one")
	mustAddEvent(t, s, e)
	now := time.Now().Add(time.Second)
	mine, err := s.ClaimEvents(ctx, now, time.Minute, 10)
	if err != nil || len(mine) != 1 {
		t.Fatalf("first claim: %v %+v", err, mine)
	}
	// The first replica stalls past its lease; another takes the event and delivers it.
	later := now.Add(2 * time.Minute)
	if theirs, err := s.ClaimEvents(ctx, later, time.Minute, 10); err != nil || len(theirs) != 1 {
		t.Fatalf("claim once the lease ran out: %v %+v", err, theirs)
	}
	// The first replica, awake again, gives back what it claimed.
	if err := s.ReleaseEvents(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimEvents(ctx, later, time.Minute, 10); len(got) != 0 {
		t.Fatalf("the other replica's lease was ended: claimed again while it delivers %+v", got)
	}
}

func eventFailure(t *testing.T, s store.Store) {
	a1, a2 := newEvent("acme", "a", "one"), newEvent("acme", "a", "two")
	mustAddEvent(t, s, a1)
	mustAddEvent(t, s, a2)
	now := time.Now().Add(time.Second)
	_, _ = s.ClaimEvents(ctx, now, time.Minute, 10)
	if err := s.EventFailed(ctx, a1.ID, now.Add(time.Hour), false, "503"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimEvents(ctx, now, time.Minute, 10); len(got) != 0 {
		t.Fatalf("a retried event (or the one after it) was claimed before its time: %+v", got)
	}
	got, _ := s.ClaimEvents(ctx, now.Add(2*time.Hour), time.Minute, 10)
	if len(got) != 1 || got[0].ID != a1.ID || got[0].Attempts != 1 || got[0].LastError != "503" {
		t.Fatalf("retry: %+v", got)
	}
	if err := s.EventFailed(ctx, a1.ID, now, true, "gone"); err != nil {
		t.Fatal(err)
	}
	dead, err := s.Events(ctx, store.EventQuery{Tenant: "acme", Failed: true})
	if err != nil || len(dead) != 1 || dead[0].ID != a1.ID || dead[0].DeadAt == nil {
		t.Fatalf("dead events: %v %+v", err, dead)
	}
	// A dead event no longer holds back the next one of its customer.
	got, _ = s.ClaimEvents(ctx, now.Add(3*time.Hour), time.Minute, 10)
	if len(got) != 1 || got[0].ID != a2.ID {
		t.Fatalf("after a dead event: %+v", got)
	}
	if all, _ := s.Events(ctx, store.EventQuery{}); len(all) != 2 {
		t.Fatalf("all events: %d", len(all))
	}
	n, err := s.ReplayEvents(ctx, "acme", nil, now)
	if err != nil || n != 1 {
		t.Fatalf("replay: %v %d", err, n)
	}
	if dead, _ := s.Events(ctx, store.EventQuery{Failed: true}); len(dead) != 0 {
		t.Fatalf("still dead after replay: %d", len(dead))
	}
	// Its retry window starts again at the replay.
	replayed, err := s.Events(ctx, store.EventQuery{IDs: []string{a1.ID, "no-such-event"}})
	if err != nil || len(replayed) != 1 || replayed[0].ReplayedAt == nil || replayed[0].RetriedSince().Sub(now).Abs() > time.Millisecond {
		t.Fatalf("replayed event: %v %+v", err, replayed)
	}
	if err := s.EventsDelivered(ctx, []string{a2.ID}, now); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ClaimEvents(ctx, now.Add(4*time.Hour), time.Minute, 10)
	if len(got) != 1 || got[0].ID != a1.ID || got[0].Attempts != 0 {
		t.Fatalf("replayed event: %+v", got)
	}
}

func eventConcurrentClaims(t *testing.T, s store.Store) {
	const customers, each = 10, 3
	for i := range customers {
		for range each {
			mustAddEvent(t, s, newEvent("acme", fmt.Sprint("c", i), "e"))
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	now := time.Now().Add(time.Second)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got, err := s.ClaimEvents(ctx, now, time.Hour, 3)
				if err != nil {
					if errors.Is(err, store.ErrUnavailable) {
						continue
					}
					t.Error(err)
					return
				}
				for _, e := range got {
					mu.Lock()
					seen[e.ID]++
					mu.Unlock()
					if err := s.EventsDelivered(ctx, []string{e.ID}, now); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s claimed %d times", id, n)
		}
	}
	if len(seen) != customers*each {
		t.Errorf("claimed %d events, want %d", len(seen), customers*each)
	}
}

// A request running when its account is erased finishes after the
// erasure, which found its answer not yet written: the answer, the
// account's data, is not kept, and the key is free again. Found by an
// audit: it was kept a day, in spite of the erasure. Another account's
// answer is kept as ever.
func idempotencyAfterErasure(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	erased, kept := newCustomer("acme", "erased.answer@example.com"), newCustomer("acme", "kept.answer@example.com")
	mustCreate(t, s, erased)
	mustCreate(t, s, kept)
	running := func(key string) *store.IdempotentRequest {
		r := &store.IdempotentRequest{TenantID: "acme", Key: key, RequestHash: "h", CreatedAt: now}
		if got, err := s.BeginIdempotent(ctx, r); err != nil || got != nil {
			t.Fatalf("begin %s: %v %+v", key, err, got)
		}
		return r
	}
	gone, stays := running("erased-answer"), running("kept-answer")
	erase(t, s, erased.ID, now)
	for _, c := range []*store.Customer{erased, kept} {
		r := map[*store.Customer]*store.IdempotentRequest{erased: gone, kept: stays}[c]
		body := []byte(`{"id":"` + c.ID + `","email":"` + *c.Email + `"}`)
		if err := s.FinishIdempotent(ctx, r, 200, "application/json", body, c.ID); err != nil {
			t.Fatalf("finish %s: %v", r.Key, err)
		}
	}
	if got, err := s.BeginIdempotent(ctx, gone); err != nil || got != nil {
		t.Fatalf("the erased account's answer: %v %+v, want it not kept and the key free", err, got)
	}
	got, err := s.BeginIdempotent(ctx, stays)
	if !errors.Is(err, store.ErrConflict) || got == nil || !bytes.Contains(got.Body, []byte("kept.answer@example.com")) {
		t.Fatalf("another account's answer: %v %+v, want it kept", err, got)
	}
}

// A request that ran past abandoned finishes after a retry took its key
// over: its answer (a token holder's profile, say) is not stored under the
// retry's request, to be replayed to the retry's caller, and its failure
// does not free the key the retry holds. Found by an audit: finishing and
// forgetting matched the key alone. A retry with the same body is another
// request all the same.
func idempotencyAfterTakeOver(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	holder := newCustomer("acme", "abandoned.answer@example.com")
	mustCreate(t, s, holder)
	answer := []byte(`{"id":"` + holder.ID + `","email":"` + *holder.Email + `"}`)
	for _, tc := range []struct{ name, hash, customer string }{
		{"a retry with another body", "h-other", ""},
		{"a retry with the same body", "h", holder.ID},
	} {
		key := "abandoned-" + tc.hash
		first := &store.IdempotentRequest{TenantID: "acme", Key: key, RequestHash: "h", CreatedAt: now.Add(-time.Hour)}
		if got, err := s.BeginIdempotent(ctx, first); err != nil || got != nil {
			t.Fatalf("%s: begin: %v %+v", tc.name, err, got)
		}
		next := &store.IdempotentRequest{TenantID: "acme", Key: key, RequestHash: tc.hash, CreatedAt: now}
		if took, err := s.TakeOverIdempotent(ctx, next, now.Add(-2*time.Minute), now.Add(-24*time.Hour)); !took || err != nil {
			t.Fatalf("%s: take over: %v %v", tc.name, took, err)
		}
		if err := s.FinishIdempotent(ctx, first, 200, "application/json", answer, tc.customer); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: the abandoned request finishing: %v, want ErrNotFound", tc.name, err)
		}
		if err := s.ForgetIdempotent(ctx, first); err != nil {
			t.Fatalf("%s: the abandoned request forgetting: %v", tc.name, err)
		}
		probe := *next
		if got, err := s.BeginIdempotent(ctx, &probe); !errors.Is(err, store.ErrConflict) || got.Status != 0 ||
			got.RequestHash != tc.hash || len(got.Body) != 0 {
			t.Fatalf("%s: the key once the abandoned request ended: %v %+v, want the retry's, running", tc.name, err, got)
		}
		if err := s.FinishIdempotent(ctx, next, 201, "application/json", []byte(`{"a":1}`), ""); err != nil {
			t.Fatalf("%s: the retry finishing: %v", tc.name, err)
		}
		if got, err := s.BeginIdempotent(ctx, &probe); !errors.Is(err, store.ErrConflict) || got.Status != 201 || string(got.Body) != `{"a":1}` {
			t.Fatalf("%s: the retry's answer: %v %+v", tc.name, err, got)
		}
	}
}

func idempotency(t *testing.T, s store.Store) {
	r := &store.IdempotentRequest{TenantID: "acme", Key: "k1", RequestHash: "h1", CreatedAt: time.Now()}
	if got, err := s.BeginIdempotent(ctx, r); err != nil || got != nil {
		t.Fatalf("begin: %v %+v", err, got)
	}
	got, err := s.BeginIdempotent(ctx, r)
	if !errors.Is(err, store.ErrConflict) || got == nil || got.Status != 0 || got.RequestHash != "h1" {
		t.Fatalf("begin again while running: %v %+v", err, got)
	}
	if err := s.FinishIdempotent(ctx, r, 200, "application/json", []byte(`{"a":1}`), ""); err != nil {
		t.Fatal(err)
	}
	got, err = s.BeginIdempotent(ctx, r)
	if !errors.Is(err, store.ErrConflict) || got.Status != 200 || string(got.Body) != `{"a":1}` || got.ContentType != "application/json" {
		t.Fatalf("begin after finish: %v %+v", err, got)
	}
	if got, err := s.BeginIdempotent(ctx, &store.IdempotentRequest{TenantID: "other", Key: "k1", RequestHash: "h", CreatedAt: time.Now()}); err != nil || got != nil {
		t.Fatalf("keys are per tenant: %v %+v", err, got)
	}
	r2 := &store.IdempotentRequest{TenantID: "acme", Key: "k2", RequestHash: "h2", CreatedAt: time.Now()}
	_, _ = s.BeginIdempotent(ctx, r2)
	if err := s.ForgetIdempotent(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BeginIdempotent(ctx, r2); err != nil || got != nil {
		t.Fatalf("a forgotten key begins again: %v %+v", err, got)
	}
	if err := s.ForgetIdempotent(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.BeginIdempotent(ctx, r); got == nil || got.Status != 200 {
		t.Fatalf("a finished key is never forgotten: %+v", got)
	}
	// A finished key is taken over only once its time is up.
	now := time.Now()
	next := &store.IdempotentRequest{TenantID: "acme", Key: "k1", RequestHash: "h9", CreatedAt: now}
	if took, err := s.TakeOverIdempotent(ctx, next, now.Add(-time.Minute), now.Add(-time.Hour)); took || err != nil {
		t.Fatalf("a finished key in its time taken over: %v %v", took, err)
	}
	if took, err := s.TakeOverIdempotent(ctx, next, now.Add(-time.Minute), now.Add(time.Hour)); !took || err != nil {
		t.Fatalf("an expired key not taken over: %v %v", took, err)
	}
	if got, err := s.BeginIdempotent(ctx, r); !errors.Is(err, store.ErrConflict) || got.Status != 0 || got.RequestHash != "h9" || len(got.Body) != 0 {
		t.Fatalf("a taken-over key runs anew: %v %+v", err, got)
	}
}

func idempotencyConcurrent(t *testing.T, s store.Store) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		began int
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.BeginIdempotent(ctx, &store.IdempotentRequest{TenantID: "acme", Key: "race", RequestHash: "h", CreatedAt: time.Now()})
			if err == nil && got == nil {
				mu.Lock()
				began++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrUnavailable) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if began != 1 {
		t.Fatalf("%d requests began, want 1", began)
	}
}

func challengeCounter(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, _ = s.Count(ctx, "acme", "fail:"+c.Destination, "2026-11-26")
	}
	_, _ = s.Count(ctx, "other", "fail:"+c.Destination, "2026-11-27")
	for _, tc := range []struct {
		prefix, day string
		want        int
	}{{"fail:", "2026-11-26", 3}, {"fail:", "2026-11-27", 1}, {"send:", "2026-11-26", 1}} {
		got, err := s.Verify(ctx, store.Verification{Attempt: store.Attempt{Tenant: "acme", ID: c.ID, Now: time.Now(), CounterPrefix: tc.prefix,
			Day: tc.day, Limit: 100}, CodeHash: "wrong"})
		if err != nil || got.Right || got.ID != c.ID || got.Destination != c.Destination || got.Counted != tc.want || got.Holder != nil {
			t.Errorf("%s%s on %s: %+v %v, want %d and no holder", tc.prefix, c.Destination, tc.day, got, err, tc.want)
		}
	}
	// At its limit the counter stays, and the attempt is spent all the same.
	got, err := verify(s, c.ID, "wrong", 3, nil)
	if err != nil || !got.Locked || got.Attempts != 4 {
		t.Fatalf("at the limit: %+v %v, want locked", got, err)
	}
	if n, _ := s.Counted(ctx, "acme", "fail:"+c.Destination, "2026-11-26"); n != 3 {
		t.Fatalf("counter at the limit: %d, want 3", n)
	}
}

func challengeHolder(t *testing.T, s store.Store) {
	byEmail := newChallenge("acme", time.Now().Add(time.Minute))
	byPhone := newChallenge("acme", time.Now().Add(time.Minute))
	byPhone.Channel, byPhone.Destination = "sms", "+33612345678"
	for _, c := range []*store.Challenge{byEmail, byPhone} {
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	holder := func(c *store.Challenge) *store.Customer {
		t.Helper()
		got, err := verify(s, c.ID, "h", 100, nil)
		if err != nil || !got.Right {
			t.Fatal(got, err)
		}
		return got.Holder
	}
	// Another tenant's account with the same contacts is nobody's here.
	other := newCustomer("other", byEmail.Destination)
	other.Phone = ptr(byPhone.Destination)
	mustCreate(t, s, other)
	if h := holder(byEmail); h != nil {
		t.Fatalf("holder from another tenant: %+v", h)
	}
	jane := newCustomer("acme", byEmail.Destination)
	jane.EmailVerified = true
	jane.Profile = store.Profile{"firstName": "Jane"}
	mustCreate(t, s, jane)
	john := newCustomer("acme", "john@example.com")
	john.Phone = ptr(byPhone.Destination)
	mustCreate(t, s, john)
	if h := holder(byEmail); h == nil || h.ID != jane.ID || h.TenantID != "acme" || *h.Email != *jane.Email || !h.EmailVerified ||
		h.Version != 1 || h.Profile["firstName"] != "Jane" || !h.CreatedAt.Equal(jane.CreatedAt) || h.DeletedAt != nil {
		t.Fatalf("email holder: %+v", h)
	}
	if h := holder(byPhone); h == nil || h.ID != john.ID || *h.Phone != byPhone.Destination {
		t.Fatalf("phone holder: %+v", h)
	}
	if err := s.DeleteCustomer(ctx, "acme", jane.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if h := holder(byEmail); h != nil {
		t.Fatalf("deleted holder: %+v", h)
	}
}

// newAccount is an account of acme with an identity and two events, proven by a new challenge.
func newAccount(t *testing.T, s store.Store, email string) *store.NewAccount {
	t.Helper()
	ch := newChallenge("acme", time.Now().Add(time.Minute))
	if err := s.CreateChallenge(ctx, ch); err != nil {
		t.Fatal(err)
	}
	c := newCustomer("acme", email)
	c.EmailVerified = true
	c.Profile = store.Profile{"firstName": "Jane", "isProspect": true}
	delivered := time.Now().UTC()
	e1, e2 := newEvent("acme", c.ID, "Customer:Upserted"), newEvent("acme", c.ID, "Customer:Other")
	e2.DeliveredAt = &delivered
	return &store.NewAccount{
		Customer: c,
		Identity: &store.Identity{TenantID: "acme", Provider: "google", Subject: "sub-" + email, CustomerID: c.ID, CreatedAt: delivered},
		Events:   []*store.Event{e1, e2},
		Consume:  &store.ChallengeUse{ID: ch.ID, At: time.Now()},
	}
}

// nothingOf checks that no part of a was written, and that its challenge is still live.
func nothingOf(t *testing.T, s store.Store, a *store.NewAccount) {
	t.Helper()
	if _, err := s.Customer(ctx, "acme", a.Customer.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("customer written: %v", err)
	}
	if _, err := s.Identity(ctx, "acme", a.Identity.Provider, a.Identity.Subject); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("identity written: %v", err)
	}
	evs, err := s.Events(ctx, store.EventQuery{Tenant: "acme"})
	for _, e := range evs {
		if e.CustomerID == a.Customer.ID {
			t.Errorf("event written: %+v", e)
		}
	}
	if err != nil {
		t.Error(err)
	}
	if ch, err := s.Challenge(ctx, "acme", a.Consume.ID); err != nil || ch.ConsumedAt != nil {
		t.Errorf("challenge used: %v %v", ch, err)
	}
}

func createAccount(t *testing.T, s store.Store) {
	a := newAccount(t, s, "jane@example.com")
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.CustomerByEmail(ctx, "acme", "jane@example.com")
	if err != nil || got.ID != a.Customer.ID || !got.EmailVerified || got.Version != 1 || got.Profile["firstName"] != "Jane" ||
		!got.CreatedAt.Equal(a.Customer.CreatedAt) || got.DeletedAt != nil {
		t.Fatalf("customer: %+v %v", got, err)
	}
	if id, err := s.Identity(ctx, "acme", "google", "sub-jane@example.com"); err != nil || id.CustomerID != a.Customer.ID {
		t.Fatalf("identity: %+v %v", id, err)
	}
	evs, err := s.Events(ctx, store.EventQuery{Tenant: "acme"})
	if err != nil || len(evs) != 2 || evs[0].ID != a.Events[0].ID || evs[1].ID != a.Events[1].ID || evs[0].Seq >= evs[1].Seq ||
		evs[0].Payload != a.Events[0].Payload || evs[0].DeliveredAt != nil || evs[1].DeliveredAt == nil {
		t.Fatalf("events: %+v %v", evs, err)
	}
	if claimed, err := s.ClaimEvents(ctx, time.Now().Add(time.Second), time.Minute, 10); err != nil || len(claimed) != 1 || claimed[0].ID != a.Events[0].ID {
		t.Fatalf("claimed: %+v %v", claimed, err)
	}
	if ch, err := s.Challenge(ctx, "acme", a.Consume.ID); err != nil || ch.ConsumedAt == nil {
		t.Fatalf("challenge not used: %+v %v", ch, err)
	}
	// The challenge is spent: another account on it is not created.
	again := newAccount(t, s, "john@example.com")
	again.Consume = a.Consume
	if err := s.CreateAccount(ctx, again); !errors.Is(err, store.ErrSpent) {
		t.Fatalf("second account on a used challenge: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", again.Customer.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second account written: %v", err)
	}
	// So is an expired one, and another tenant's.
	late := newAccount(t, s, "late@example.com")
	late.Consume.At = time.Now().Add(2 * time.Minute)
	if err := s.CreateAccount(ctx, late); !errors.Is(err, store.ErrSpent) {
		t.Fatalf("expired challenge: %v", err)
	}
	nothingOf(t, s, late)
	foreign := newAccount(t, s, "foreign@example.com")
	foreign.Customer.TenantID = "other"
	if err := s.CreateAccount(ctx, foreign); !errors.Is(err, store.ErrSpent) {
		t.Fatalf("another tenant's challenge: %v", err)
	}
	// Without a challenge, identity or events: the account alone.
	plain := newCustomer("acme", "plain@example.com")
	if err := s.CreateAccount(ctx, &store.NewAccount{Customer: plain}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Customer(ctx, "acme", plain.ID); err != nil {
		t.Fatal(err)
	}
}

func createAccountConflict(t *testing.T, s store.Store) {
	mustCreate(t, s, newCustomer("acme", "jane@example.com"))
	a := newAccount(t, s, "jane@example.com")
	if err := s.CreateAccount(ctx, a); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("taken email: %v", err)
	}
	nothingOf(t, s, a)

	first := newAccount(t, s, "first@example.com")
	if err := s.CreateAccount(ctx, first); err != nil {
		t.Fatal(err)
	}
	b := newAccount(t, s, "second@example.com")
	b.Identity.Subject = first.Identity.Subject
	if err := s.CreateAccount(ctx, b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("taken identity: %v", err)
	}
	if _, err := s.Customer(ctx, "acme", b.Customer.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account of a taken identity written: %v", err)
	}
	if ch, err := s.Challenge(ctx, "acme", b.Consume.ID); err != nil || ch.ConsumedAt != nil {
		t.Fatalf("challenge of a taken identity used: %v %v", ch, err)
	}
}

func createAccountInTx(t *testing.T, s store.Store) {
	a := newAccount(t, s, "jane@example.com")
	boom := errors.New("boom")
	err := s.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateAccount(ctx, a); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("tx: %v", err)
	}
	nothingOf(t, s, a)
}

func createAccountConcurrent(t *testing.T, s store.Store) {
	first := newAccount(t, s, "racer0@example.com")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		other   []error
	)
	for i := range 20 {
		a := first
		if i > 0 {
			a = newAccount(t, s, fmt.Sprintf("racer%d@example.com", i))
			a.Consume = first.Consume
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateAccount(ctx, a)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case !errors.Is(err, store.ErrSpent):
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if created != 1 || len(other) > 0 {
		t.Fatalf("created %d accounts on one challenge; other errors: %v", created, other)
	}
}

func createAccountMixed(t *testing.T, s store.Store) {
	mustCreate(t, s, newCustomer("acme", "taken@example.com"))
	const n = 30
	accounts := make([]*store.NewAccount, n)
	want := make([]error, n)
	for i := range accounts {
		a := newAccount(t, s, fmt.Sprintf("mixed%d@example.com", i))
		switch i % 3 {
		case 0:
			a.Customer.Email = ptr("taken@example.com")
			want[i] = store.ErrConflict
		case 1:
			if ok, err := s.ConsumeChallenge(ctx, "acme", store.ChallengeUse{ID: a.Consume.ID, At: time.Now()}); !ok || err != nil {
				t.Fatal(ok, err)
			}
			want[i] = store.ErrSpent
		}
		accounts[i] = a
	}
	var wg sync.WaitGroup
	got := make([]error, n)
	for i, a := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = s.CreateAccount(ctx, a)
		}()
	}
	wg.Wait()
	for i, a := range accounts {
		switch {
		case want[i] == nil && got[i] != nil:
			t.Errorf("account %d: %v, want it created", i, got[i])
		case want[i] != nil && !errors.Is(got[i], want[i]):
			t.Errorf("account %d: %v, want %v", i, got[i], want[i])
		case want[i] == store.ErrConflict:
			nothingOf(t, s, a)
		case want[i] == nil:
			if _, err := s.Customer(ctx, "acme", a.Customer.ID); err != nil {
				t.Errorf("account %d not written: %v", i, err)
			}
			if id, err := s.Identity(ctx, "acme", a.Identity.Provider, a.Identity.Subject); err != nil || id.CustomerID != a.Customer.ID {
				t.Errorf("account %d identity: %+v %v", i, id, err)
			}
		}
		if want[i] != nil {
			if _, err := s.Customer(ctx, "acme", a.Customer.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("account %d written: %v", i, err)
			}
		}
	}
	evs, err := s.Events(ctx, store.EventQuery{Tenant: "acme", Limit: 1000})
	if err != nil || len(evs) != 2*(n/3) {
		t.Fatalf("%d events (%v), want %d: two for each account written", len(evs), err, 2*(n/3))
	}
}

// firsts are the accounts of a plain first sign-in by email and by SMS,
// their contact and their payloads standing for the destination; they
// differ in nothing else but their events' ids.
func firsts(tenant string) map[string]*store.NewAccount {
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := map[string]*store.NewAccount{}
	id := uuid.NewString()
	for _, channel := range []string{"email", "sms"} {
		c := &store.Customer{ID: id, TenantID: tenant, Profile: store.Profile{"country": "FR", "isProspect": true},
			CreatedAt: now, UpdatedAt: now}
		key := "email"
		if dest := store.Destination; channel == "email" {
			c.Email, c.EmailVerified = &dest, true
		} else {
			c.Phone, c.PhoneVerified, key = &dest, true, "phoneNumber"
		}
		payload, _ := json.Marshal(map[string]any{"customerId": c.ID, "data": map[string]any{key: store.Destination, "note": "<&>"}})
		out[channel] = &store.NewAccount{Customer: c, Events: []*store.Event{
			{ID: uuid.NewString(), TenantID: tenant, CustomerID: c.ID, Type: "Customer:Upserted", Payload: string(payload), CreatedAt: now},
			{ID: uuid.NewString(), TenantID: tenant, CustomerID: c.ID, Type: "Customer:Other", Payload: "{}", CreatedAt: now, DeliveredAt: &now},
		}}
	}
	return out
}

// A right code to a destination nobody holds, on a challenge that names
// no account and holds nothing, creates the account of its channel in the
// attempt: the destination in its contact and, encoded as encoding/json
// encodes it, in its payloads; the challenge used up; the day not charged.
func firstSignIn(t *testing.T, s store.Store) {
	for _, tc := range []struct{ channel, destination, column string }{
		{"email", "o'neil&co<jane>\u2028@example.com", "email"},
		{"sms", "+33612345678", "phoneNumber"},
	} {
		c := newChallenge("acme", time.Now().Add(time.Minute))
		c.Channel, c.Destination = tc.channel, tc.destination
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		first := firsts("acme")
		want := first[tc.channel]
		got, err := verify(s, c.ID, "h", 100, first)
		if err != nil || !got.Right || got.Locked || got.Created != want || got.ConsumedAt == nil {
			t.Fatalf("%s: %+v %v, want the account created", tc.channel, got, err)
		}
		stored, err := s.Customer(ctx, "acme", want.Customer.ID)
		if err != nil {
			t.Fatal(err)
		}
		contact, verified, answered := stored.Email, stored.EmailVerified, want.Customer.Email
		if tc.channel == "sms" {
			contact, verified, answered = stored.Phone, stored.PhoneVerified, want.Customer.Phone
		}
		if contact == nil || *contact != tc.destination || !verified || stored.Profile["country"] != "FR" {
			t.Fatalf("%s: stored %+v", tc.channel, stored)
		}
		if *answered != tc.destination {
			t.Fatalf("%s: the account answered has %q", tc.channel, *answered)
		}
		evs, err := s.Events(ctx, store.EventQuery{Tenant: "acme"})
		var mine []store.Event
		for _, e := range evs {
			if e.CustomerID == want.Customer.ID {
				mine = append(mine, e)
			}
		}
		payload, _ := json.Marshal(map[string]any{"customerId": want.Customer.ID, "data": map[string]any{tc.column: tc.destination, "note": "<&>"}})
		if err != nil || len(mine) != 2 || mine[0].Payload != string(payload) || mine[0].DeliveredAt != nil || mine[1].DeliveredAt == nil {
			t.Fatalf("%s: events %+v %v, want the first with %s", tc.channel, mine, err, payload)
		}
		if want.Events[0].Payload != string(payload) {
			t.Fatalf("%s: the event answered has %s", tc.channel, want.Events[0].Payload)
		}
		if n, _ := s.Counted(ctx, "acme", "fail:"+tc.destination, "2026-11-26"); n != 0 {
			t.Fatalf("%s: the day was charged %d", tc.channel, n)
		}
		if _, err := verify(s, c.ID, "h", 100, firsts("acme")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: the used challenge again: %v", tc.channel, err)
		}
	}
}

// The attempt makes no account when the challenge is not a plain first
// sign-in, when the code is wrong, or at the day's limit: the right code's
// challenge stays live for the caller to act on, with its holder.
func firstSignInOnlyWhenPlain(t *testing.T, s store.Store) {
	taken := newCustomer("acme", "taken@example.com")
	mustCreate(t, s, taken)
	for _, tc := range []struct {
		name   string
		change func(c *store.Challenge)
		hash   string
		limit  int
	}{
		{"someone holds the destination", func(c *store.Challenge) { c.Destination = "taken@example.com" }, "h", 100},
		{"the challenge names an account", func(c *store.Challenge) { c.CustomerID = &taken.ID }, "h", 100},
		{"the challenge holds a change", func(c *store.Challenge) { c.Pending = `{"input":{}}` }, "h", 100},
		{"no account for its channel", func(c *store.Challenge) { c.Channel = "line" }, "h", 100},
		{"the code is wrong", func(*store.Challenge) {}, "wrong", 100},
		{"the day's limit is reached", func(*store.Challenge) {}, "h", 0},
	} {
		c := newChallenge("acme", time.Now().Add(time.Minute))
		c.Destination = "new-" + uuid.NewString()[:8] + "@example.com"
		tc.change(c)
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		first := firsts("acme")
		got, err := verify(s, c.ID, tc.hash, tc.limit, first)
		if err != nil || got.Created != nil || got.ConsumedAt != nil || got.Attempts != 1 {
			t.Fatalf("%s: %+v %v, want an attempt spent and nothing created", tc.name, got, err)
		}
		if (got.Right && tc.limit > 0) == (got.Locked || tc.hash != "h") {
			t.Errorf("%s: right %v, locked %v", tc.name, got.Right, got.Locked)
		}
		if tc.name == "someone holds the destination" && (got.Holder == nil || got.Holder.ID != taken.ID) {
			t.Errorf("%s: holder %+v", tc.name, got.Holder)
		}
		for _, a := range first {
			if _, err := s.Customer(ctx, "acme", a.Customer.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: account written: %v", tc.name, err)
			}
		}
		if live, _ := s.Challenge(ctx, "acme", c.ID); live.ConsumedAt != nil {
			t.Errorf("%s: the challenge was used up", tc.name)
		}
	}
}

// An account that cannot be written (its id taken here) undoes the whole
// attempt: nothing is written, the attempt is not spent.
func firstSignInConflict(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	first := firsts("acme")
	other := newCustomer("acme", "other@example.com")
	other.ID = first["email"].Customer.ID
	mustCreate(t, s, other)
	if got, err := verify(s, c.ID, "h", 100, first); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("%+v %v, want ErrConflict", got, err)
	}
	if got, _ := s.Challenge(ctx, "acme", c.ID); got.Attempts != 0 || got.ConsumedAt != nil {
		t.Fatalf("challenge after the conflict: %+v", got)
	}
	if evs, _ := s.Events(ctx, store.EventQuery{Tenant: "acme"}); len(evs) != 0 {
		t.Fatalf("events written: %+v", evs)
	}
}

// Twenty right codes at once on one challenge: one account.
func firstSignInConcurrent(t *testing.T, s store.Store) {
	c := newChallenge("acme", time.Now().Add(time.Minute))
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for range 20 {
		wg.Go(func() {
			got, err := verify(s, c.ID, "h", 100, firsts("acme"))
			switch {
			case err == nil && got.Created != nil:
				mu.Lock()
				created++
				mu.Unlock()
			case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnavailable):
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := s.CustomerByEmail(ctx, "acme", c.Destination); created != 1 || err != nil {
		t.Fatalf("%d accounts created (%v); want 1", created, err)
	}
	if evs, _ := s.Events(ctx, store.EventQuery{Tenant: "acme"}); len(evs) != 2 {
		t.Fatalf("%d events written, want the one account's 2", len(evs))
	}
}

// updatedSinceSubMicrosecond: a time finer than the databases keep (the
// admin API's updatedSince is any RFC 3339 time) compares as itself: a
// customer updated at T is not updated at or after T+1ns. SQLite compared
// the texts (T < T+1ns); pgx sent PostgreSQL T+1ns cut to T, and T >= T.
func updatedSinceSubMicrosecond(t *testing.T, s store.Store) {
	lister, ok := s.(interface {
		Customers(context.Context, store.CustomerQuery) ([]store.Customer, error)
	})
	if !ok {
		t.Skip("no Customers")
	}
	c := newCustomer("acme", "jane@example.com")
	mustCreate(t, s, c)
	for _, d := range []time.Duration{time.Nanosecond, 500 * time.Nanosecond, 999 * time.Nanosecond} {
		got, err := lister.Customers(ctx, store.CustomerQuery{TenantID: "acme", UpdatedSince: c.UpdatedAt.Add(d), Limit: 10})
		if err != nil || len(got) != 0 {
			t.Errorf("updated since T+%v: %d customers, %v; want none (updated at T)", d, len(got), err)
		}
	}
	// After a position finer than a microsecond: T is not after T+1ns, whatever the id.
	after, err := lister.Customers(ctx, store.CustomerQuery{TenantID: "acme", AfterUpdated: c.UpdatedAt.Add(time.Nanosecond), AfterID: "0", Limit: 10})
	if err != nil || len(after) != 0 {
		t.Errorf("after T+1ns: %d customers, %v; want none", len(after), err)
	}
	got, err := lister.Customers(ctx, store.CustomerQuery{TenantID: "acme", UpdatedSince: c.UpdatedAt.Add(-time.Nanosecond), Limit: 10})
	if err != nil || len(got) != 1 {
		t.Errorf("updated since T-1ns: %d customers, %v; want 1", len(got), err)
	}
}

// limitBeyond32Bits: a tenant's otp.maxFailuresPerDay has no upper bound
// (config, admin API); PostgreSQL's statements cast it to integer, which
// failed every verification above 2^31-1 where SQLite judged the code.
func limitBeyond32Bits(t *testing.T, s store.Store) {
	const limit = 1 << 32
	c := newChallenge("acme", time.Now().Add(time.Minute))
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	wrong, err := attempt(s, c.ID, limit)
	if err != nil || wrong.Counted != 1 || wrong.Locked {
		t.Fatalf("a wrong code under a limit of 2^32: %+v %v", wrong, err)
	}
	v, err := verify(s, c.ID, "h", limit, firsts("acme"))
	if err != nil || !v.Right || v.Created == nil {
		t.Fatalf("a right code under a limit of 2^32: %+v %v", v, err)
	}
}

func revocationNeverMovesBack(t *testing.T, s store.Store) {
	c := newCustomer("acme", "jane@example.com")
	mustCreate(t, s, c)
	later := time.Now().UTC().Truncate(time.Microsecond)
	revokedAt := func() time.Time {
		t.Helper()
		got, err := s.Customer(ctx, "acme", c.ID)
		if err != nil || got.SessionsRevokedAt == nil {
			t.Fatalf("read: %v, revoked at %v", err, got)
		}
		return got.SessionsRevokedAt.UTC()
	}
	for _, step := range []struct {
		name   string
		at     time.Time
		stored time.Time
	}{
		{"the first revocation", later, later},
		// A claim's revocation of the second before it, written after an
		// operator's made in that second, must not let that second's
		// tokens in again.
		{"an earlier one", later.Truncate(time.Second).Add(-time.Second), later},
		{"a later one", later.Add(1500 * time.Millisecond), later.Add(1500 * time.Millisecond)},
	} {
		if err := s.RevokeSessions(ctx, "acme", c.ID, step.at); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := revokedAt(); !got.Equal(step.stored) {
			t.Fatalf("after %s: revoked at %v, want %v", step.name, got, step.stored)
		}
	}
	if err := s.RevokeSessions(ctx, "acme", uuid.NewString(), later); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown customer: %v, want ErrNotFound", err)
	}
}
