package oidc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/providers/oidc/oidctest"
)

// clock is a settable now for the cache's refresh interval.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func open(t *testing.T, f *Family, iss *oidctest.Issuer) *provider {
	t.Helper()
	p, err := f.open(TypeGeneric, "corp", Config{ClientIDs: []string{"app"}, Issuer: iss.URL(), JWKSURL: iss.JWKSURL(), AllowPrivateNetwork: true}, providers.Deps{Tenant: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func signIn(p *provider, tok string) error {
	_, err := p.Authenticate(context.Background(), []byte(`{"idToken":"`+tok+`"}`))
	return err
}

func TestKeyCache(t *testing.T) {
	t.Run("an unknown kid refreshes at most once a minute per issuer", func(t *testing.T) {
		iss := oidctest.New(t)
		clk := &clock{t: time.Now()}
		f := New(nil, clk.now)
		p := open(t, f, iss)
		if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u1"))); err != nil {
			t.Fatalf("first sign-in: %v", err)
		}
		stranger := oidctest.NewKey(t, "RS256", "unknown")
		for range 3 {
			if err := signIn(p, stranger.Sign(iss.Claims("app", "u1"))); !errors.Is(err, providers.ErrRejected) {
				t.Fatalf("unknown kid: %v", err)
			}
		}
		if n := iss.Fetches.Load(); n != 1 {
			t.Fatalf("%d fetches within a minute, want 1", n)
		}
		clk.add(MinRefresh)
		if err := signIn(p, stranger.Sign(iss.Claims("app", "u1"))); !errors.Is(err, providers.ErrRejected) {
			t.Fatalf("unknown kid after refresh: %v", err)
		}
		if n := iss.Fetches.Load(); n != 2 {
			t.Fatalf("%d fetches after a minute, want 2", n)
		}
	})

	t.Run("keys rotated at the issuer are picked up", func(t *testing.T) {
		iss := oidctest.New(t)
		clk := &clock{t: time.Now()}
		f := New(nil, clk.now)
		p := open(t, f, iss)
		if err := signIn(p, iss.Key("ES256").Sign(iss.Claims("app", "u1"))); err != nil {
			t.Fatal(err)
		}
		next := oidctest.NewKey(t, "RS256", "rsa-2")
		iss.Publish(next)
		clk.add(MinRefresh)
		if err := signIn(p, next.Sign(iss.Claims("app", "u1"))); err != nil {
			t.Fatalf("rotated key: %v", err)
		}
	})

	t.Run("an issuer down after a first fetch still verifies from the cache", func(t *testing.T) {
		iss := oidctest.New(t)
		clk := &clock{t: time.Now()}
		f := New(nil, clk.now)
		p := open(t, f, iss)
		if err := signIn(p, iss.Key("EdDSA").Sign(iss.Claims("app", "u1"))); err != nil {
			t.Fatal(err)
		}
		iss.SetDown(true)
		clk.add(2 * MinRefresh)
		// An unknown kid tries a refresh, which fails: the cached keys still serve.
		_ = signIn(p, oidctest.NewKey(t, "RS256", "unknown").Sign(iss.Claims("app", "u1")))
		if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u2"))); err != nil {
			t.Fatalf("cached key while the issuer is down: %v", err)
		}
	})

	t.Run("no key at all is unavailable", func(t *testing.T) {
		iss := oidctest.New(t)
		iss.SetDown(true)
		p := open(t, New(nil, nil), iss)
		if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u1"))); !errors.Is(err, providers.ErrUnavailable) {
			t.Fatalf("no keys: %v", err)
		}
	})

	t.Run("keys older than MaxAge are fetched again and a withdrawn key stops verifying", func(t *testing.T) {
		iss := oidctest.New(t)
		clk := &clock{t: time.Now()}
		p := open(t, New(nil, clk.now), iss)
		old := iss.Key("RS256")
		if err := signIn(p, old.Sign(iss.Claims("app", "u1"))); err != nil {
			t.Fatal(err)
		}
		iss.Publish(iss.Key("ES256"))
		clk.add(MaxAge + time.Second)
		if err := signIn(p, resign(iss, old, clk.now())); !errors.Is(err, providers.ErrRejected) {
			t.Fatalf("withdrawn key: %v", err)
		}
		if n := iss.Fetches.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
		if err := signIn(p, resign(iss, iss.Key("ES256"), clk.now())); err != nil {
			t.Fatalf("the key still published: %v", err)
		}
	})

	t.Run("an issuer down with nothing cached stays unavailable", func(t *testing.T) {
		iss := oidctest.New(t)
		iss.SetDown(true)
		clk := &clock{t: time.Now()}
		p := open(t, New(nil, clk.now), iss)
		for range 3 {
			if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u1"))); !errors.Is(err, providers.ErrUnavailable) {
				t.Fatalf("no keys: %v", err)
			}
		}
		iss.SetDown(false)
		clk.add(time.Second)
		if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u1"))); err != nil {
			t.Fatalf("issuer back: %v", err)
		}
	})

	t.Run("tenants that trust one issuer share its keys", func(t *testing.T) {
		iss := oidctest.New(t)
		f := New(nil, nil)
		a, b := open(t, f, iss), open(t, f, iss)
		for _, p := range []*provider{a, b, a, b} {
			if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u1"))); err != nil {
				t.Fatal(err)
			}
		}
		if n := iss.Fetches.Load(); n != 1 {
			t.Fatalf("%d fetches for two tenants, want 1", n)
		}
	})
}

// resign signs fresh claims as of now (the clock moved past the default expiry).
func resign(iss *oidctest.Issuer, k *oidctest.Key, now time.Time) string {
	return k.Sign(map[string]any{"iss": iss.URL(), "aud": "app", "sub": "u1", "iat": now.Unix(), "exp": now.Unix() + 600})
}

// The refresh an unknown kid triggers is the key set's, not the request's: a
// caller who hangs up does not cancel it. Found by an audit: it ran with the
// caller's context and counted as the minute's refresh when that caller had
// hung up, so a token with a made-up kid, sent and abandoned as each minute
// came due, kept an issuer's new key from ever being fetched.
func TestAHungUpCallerDoesNotSpendTheKeyRefresh(t *testing.T) {
	iss := oidctest.New(t)
	clk := &clock{t: time.Now()}
	p := open(t, New(nil, clk.now), iss)
	if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u1"))); err != nil {
		t.Fatal(err)
	}
	// The issuer rotates: a new key is published.
	next := oidctest.NewKey(t, "RS256", "rsa-next")
	iss.Publish(next)
	clk.add(MinRefresh)
	// The attacker's request arrives first and its connection is gone.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	junk := oidctest.NewKey(t, "RS256", "made-up")
	_, _ = p.Authenticate(gone, []byte(`{"idToken":"`+junk.Sign(iss.Claims("app", "x"))+`"}`))
	// A genuine shopper, a second later, with a token of the new key.
	clk.add(time.Second)
	if err := signIn(p, next.Sign(iss.Claims("app", "u2"))); err != nil {
		t.Fatalf("a genuine token of the issuer's new key, after a hung-up caller's refresh: %v (JWKS fetches reaching the issuer: %d)", err, iss.Fetches.Load())
	}
}

// While an issuer's discovery fails, it is tried again after a second, then
// two, doubling up to MinRefresh, the sign-ins between answered with its
// error. Found by an audit: anyone posting ID tokens (of any key) made
// customerd fetch the discovery document once per request, one at a time.
func TestAFailingDiscoveryIsNotFetchedOnEverySignIn(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			hits.Add(1)
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	clk := &clock{t: time.Now()}
	f := New(nil, clk.now)
	p, err := f.open(TypeGeneric, "corp", Config{ClientIDs: []string{"app"}, Issuer: srv.URL, AllowPrivateNetwork: true}, providers.Deps{Tenant: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	junk := oidctest.NewKey(t, "RS256", "junk")
	const n = 20
	for range n {
		if err := signIn(p, junk.Sign(map[string]any{"iss": srv.URL, "aud": "app", "sub": "x", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})); !errors.Is(err, providers.ErrUnavailable) {
			t.Fatalf("sign-in while the discovery fails: %v", err)
		}
	}
	if got := hits.Load(); got > 1 {
		t.Fatalf("%d sign-ins within the same instant fetched the discovery document %d times", n, got)
	}
	sign := func() {
		t.Helper()
		if err := signIn(p, junk.Sign(map[string]any{"iss": srv.URL, "aud": "app", "sub": "x", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})); !errors.Is(err, providers.ErrUnavailable) {
			t.Fatalf("sign-in while the discovery fails: %v", err)
		}
	}
	for _, step := range []struct {
		after time.Duration
		want  int32
	}{{time.Second, 2}, {time.Second, 2}, {time.Second, 3}, {3 * time.Second, 3}, {time.Second, 4}} {
		clk.add(step.after)
		sign()
		if got := hits.Load(); got != step.want {
			t.Fatalf("%s later: %d fetches of the discovery document, want %d", step.after, got, step.want)
		}
	}
}

// The cache keeps a bounded number of JWKS URLs: a tenant's admin key that
// keeps pointing a provider at new URLs makes the least recently used one
// make way, never the cache grow without end. A set dropped is fetched
// again when used again.
func TestTheKeyCacheKeepsABoundedNumberOfURLs(t *testing.T) {
	clk := &clock{t: time.Now()}
	f := New(nil, clk.now)
	f.keys.most = 2
	dropsTheLeastUsed(t, f, clk, []*oidctest.Issuer{oidctest.New(t), oidctest.New(t), oidctest.New(t)}, "RS256", func() {})
}

// The cache keeps a bounded number of bytes, by its estimate of what each set
// holds: sets of many keys with long kids make the least recently used ones
// make way, never the cache grow past its budget. Found by an audit: a
// brand's admin key pointed some 700 providers at servers of its own, each
// serving a megabyte of kids or keys, and anyone's sign-ins with made-up
// tokens had the cache hold gigabytes, for every tenant.
func TestTheKeyCacheIsBoundedInBytes(t *testing.T) {
	issuers := make([]*oidctest.Issuer, 3)
	for i := range issuers {
		issuers[i] = oidctest.New(t)
		keys := make([]*oidctest.Key, maxKeysPerSet)
		for j := range keys {
			keys[j] = oidctest.NewKey(t, "EdDSA", fmt.Sprintf("%0*d", maxKid, j))
		}
		issuers[i].Publish(keys...)
	}
	clk := &clock{t: time.Now()}
	f := New(nil, clk.now)
	one := maxKeysPerSet * (keyOverhead + maxKid + ed25519.PublicKeySize)
	f.keys.budget = 2*one + one/2 // two sets fit, a third does not
	dropsTheLeastUsed(t, f, clk, issuers, "EdDSA", func() {
		t.Helper()
		held := 0
		for _, s := range f.keys.byURL {
			held += s.size
		}
		if held != f.keys.held || held > f.keys.budget {
			t.Fatalf("the cache holds %d bytes (counted %d), budget %d", held, f.keys.held, f.keys.budget)
		}
	})
}

// dropsTheLeastUsed signs in with the alg key of each of three issuers, a
// second apart, in an order that leaves the second the least recently used
// when the third comes, and checks that f's cache, with room for two sets,
// dropped the second, kept the others, and fetches the second again when it
// is used; check runs after each sign-in.
func dropsTheLeastUsed(t *testing.T, f *Family, clk *clock, issuers []*oidctest.Issuer, alg string, check func()) {
	t.Helper()
	ps := make([]*provider, len(issuers))
	for i, iss := range issuers {
		ps[i] = open(t, f, iss)
	}
	signInEach := func(order ...int) {
		t.Helper()
		for _, i := range order {
			clk.add(time.Second)
			if err := signIn(ps[i], issuers[i].Key(alg).Sign(issuers[i].Claims("app", "u"))); err != nil {
				t.Fatalf("issuer %d: %v", i, err)
			}
			check()
		}
	}
	signInEach(0, 1, 0, 2) // 1 is the least recently used when 2 comes
	if n := len(f.keys.byURL); n != 2 {
		t.Fatalf("%d key sets kept, want 2", n)
	}
	signInEach(0, 2)
	if a, b, c := issuers[0].Fetches.Load(), issuers[1].Fetches.Load(), issuers[2].Fetches.Load(); a != 1 || b != 1 || c != 1 {
		t.Fatalf("fetches %d %d %d: the sets in use were dropped", a, b, c)
	}
	signInEach(1)
	if n := issuers[1].Fetches.Load(); n != 2 {
		t.Fatalf("issuer 1, dropped, fetched %d times; want once again", n)
	}
}

// A set keeps its first maxKeysPerSet usable keys, and no key whose kid is
// longer than maxKid bytes: a token of a key past them, or naming such a
// kid, finds no key.
func TestAKeySetKeepsItsFirstKeysOfShortKids(t *testing.T) {
	iss := oidctest.New(t)
	long := oidctest.NewKey(t, "EdDSA", strings.Repeat("l", maxKid+1))
	longest := oidctest.NewKey(t, "EdDSA", strings.Repeat("k", maxKid))
	keys := []*oidctest.Key{long, longest}
	for j := range maxKeysPerSet {
		keys = append(keys, oidctest.NewKey(t, "EdDSA", fmt.Sprint("ed-", j)))
	}
	iss.Publish(keys...) // usable: longest and ed-0 to ed-62; ed-63 is one too many
	p := open(t, New(nil, nil), iss)
	for _, k := range []*oidctest.Key{longest, keys[2], keys[len(keys)-2]} {
		if err := signIn(p, k.Sign(iss.Claims("app", "u"))); err != nil {
			t.Fatalf("kid %.10s… (%d bytes): %v", k.Kid, len(k.Kid), err)
		}
	}
	for _, k := range []*oidctest.Key{long, keys[len(keys)-1]} {
		if err := signIn(p, k.Sign(iss.Claims("app", "u"))); !errors.Is(err, providers.ErrRejected) {
			t.Fatalf("kid %.10s… (%d bytes): %v, want it refused", k.Kid, len(k.Kid), err)
		}
	}
}

// A JWKS document longer than 256 KiB is refused (real ones are a few KiB):
// none of its keys is kept, and with no keys at all the sign-in is
// unavailable. Found by an audit: a megabyte was read, and kept.
func TestAJWKSDocumentOverTheSizeLimitIsRefused(t *testing.T) {
	iss := oidctest.New(t)
	for _, c := range []struct {
		name string
		size int
		want error
	}{
		{"a document of 256 KiB serves", 256 << 10, nil},
		{"one byte more is refused", 256<<10 + 1, providers.ErrUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, _ := json.Marshal(map[string]any{"keys": []any{iss.Key("RS256").JWK()}})
			// Spaces before the closing brace make it c.size bytes.
			doc = append(append(doc[:len(doc)-1], bytes.Repeat([]byte(" "), c.size-len(doc))...), '}')
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(doc)
			}))
			t.Cleanup(srv.Close)
			p, err := New(nil, nil).open(TypeGeneric, "corp", Config{ClientIDs: []string{"app"}, Issuer: iss.URL(), JWKSURL: srv.URL, AllowPrivateNetwork: true}, providers.Deps{Tenant: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			if err := signIn(p, iss.Key("RS256").Sign(iss.Claims("app", "u"))); !errors.Is(err, c.want) {
				t.Fatalf("a %d-byte document: %v, want %v", len(doc), err, c.want)
			}
		})
	}
}

// A JWKS URL is named by its scheme, host and path only, in an error and in
// the log: its query may hold a credential (an API gateway's key). Found by
// an audit: a failed fetch quoted the URL whole, as Go's client does.
func TestAFailedKeyFetchNeverTellsTheURLsQuery(t *testing.T) {
	iss := oidctest.New(t)
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/broken":
			_, _ = w.Write([]byte(`{"keys": "none"}`))
		case failing.Load():
			http.Error(w, "down", http.StatusInternalServerError)
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{iss.Key("RS256").JWK()}})
		}
	}))
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	var logs bytes.Buffer
	clk := &clock{t: time.Now()}
	k := NewKeys(slog.New(slog.NewJSONHandler(&logs, nil)), clk.now)
	told := func(what, text string) {
		t.Helper()
		if strings.Contains(text, "secret") {
			t.Errorf("%s tells the URL's query: %s", what, text)
		}
	}
	for _, u := range []string{closed.URL + "/jwks?key=secret", srv.URL + "/broken?key=secret"} {
		_, err := k.find(context.Background(), source{url: u, allowPrivate: true}, "")
		if err == nil {
			t.Fatalf("%s: keys", u)
		}
		told("an error", err.Error())
	}
	// Keys fetched, then a refresh that fails: a warning, and an error.
	src := source{url: srv.URL + "/jwks?key=secret", allowPrivate: true}
	if _, err := k.find(context.Background(), src, ""); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	clk.add(MinRefresh)
	if _, err := k.find(context.Background(), src, "unknown"); !errors.Is(err, errNoKey) {
		t.Fatalf("a refresh that failed: %v, want %v", err, errNoKey)
	}
	if !strings.Contains(logs.String(), "jwks refresh failed") {
		t.Fatalf("no warning of the failed refresh: %s", logs.String())
	}
	told("the log", logs.String())
	if err := k.fetch(context.Background(), src, k.set(src)); err == nil {
		t.Fatal("a failing fetch")
	} else {
		told("an error", err.Error())
	}
	// A discovered jwks_uri on another host is refused naming it.
	if err := sameHost("http://127.0.0.2/jwks?key=secret", srv.URL, true); err == nil {
		t.Fatal("a jwks_uri on another host")
	} else {
		told("a refused discovery", err.Error())
	}
}
