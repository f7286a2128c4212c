package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/customerd/customerd/egress"
)

// MinRefresh is how often at most an issuer's keys are fetched again because
// a token names a kid the cache does not have.
const MinRefresh = time.Minute

// The cache's bounds. A tenant's admin key names any JWKS URL, one per
// provider, and anyone's sign-in fetches the set before a signature is
// checked: what the URL's server answers must not decide what one set, or
// all of them, hold.
const (
	// maxJWKS bounds a JWKS document: real ones are a few KiB, Microsoft's
	// common endpoint, the largest, tens of KiB.
	maxJWKS = 256 << 10
	// maxKeysPerSet is how many keys of a set are kept: the first usable
	// ones, in the document's order.
	maxKeysPerSet = 64
	// maxKid bounds a key's kid: a key with a longer one is skipped, so a
	// token naming such a kid finds no key.
	maxKid = 256
	// maxKeySets is how many JWKS URLs the cache keeps: the least recently
	// used one makes way for a new one past it (and is fetched again when
	// used again).
	maxKeySets = 4096
	// maxCacheBytes bounds what the kept sets hold, by retained's estimate:
	// the least recently used sets make way for a new one past it. One set
	// cannot be larger: it keeps at most 64 keys of at most 256 bytes of kid
	// and keyOverhead each (32 KiB), and their numbers (RSA moduli, curve
	// points) are decoded from the base64 of a document of at most 256 KiB
	// (192 KiB): 224 KiB at most, against 16 MiB.
	maxCacheBytes = 16 << 20
)

var (
	// errNoKey: the issuer has keys, but none that fits the token.
	errNoKey = errors.New("no key of the issuer fits the token")
	// errNoKeys: the issuer's keys could not be had at all.
	errNoKeys = errors.New("the issuer's keys cannot be fetched")
)

// Keys is the JWKS cache: one entry per JWKS URL, shared by every tenant and
// provider that trusts the issuer. Keys are fetched on first use, fetched
// again when a token names an unknown kid (at most once per MinRefresh per
// URL), and kept when a refresh fails.
type Keys struct {
	clients clients
	now     func() time.Time
	log     *slog.Logger

	mu    sync.Mutex
	byURL map[source]*keySet
	held  int // retained bytes of the sets in byURL

	// most, budget and perSet are maxKeySets, maxCacheBytes and
	// maxKeysPerSet but in a test, which lowers them: a tenant's settings
	// name any URL, and a key of one tenant's admin API that keeps changing
	// them must grow the cache neither in URLs nor in bytes without end.
	most, budget, perSet int
}

// source is a JWKS URL and whether it may be in a private network: tenants
// that differ on the second do not share what the first answered.
type source struct {
	url          string
	allowPrivate bool
}

// where is the URL as a message names it (egress.Where): its query may
// hold a credential, an API gateway's key.
func (s source) where() string {
	u, err := url.Parse(s.url)
	if err != nil {
		return "" // never: the URL passed egress.CheckURL
	}
	return egress.Where(u)
}

// clients are the family's outbound clients, by allowPrivateNetwork.
type clients struct{ strict, private *http.Client }

func newClients() clients {
	return clients{
		strict:  egress.NewClient(egress.Options{Timeout: 5 * time.Second}),
		private: egress.NewClient(egress.Options{Timeout: 5 * time.Second, AllowPrivateNetwork: true}),
	}
}

func (c clients) pick(allowPrivate bool) *http.Client {
	if allowPrivate {
		return c.private
	}
	return c.strict
}

// key is one verification key with the algorithm it is for.
type key struct {
	kid string
	alg jwa.SignatureAlgorithm
	raw any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
}

type keySet struct {
	fetching sync.Mutex // one fetch per URL at a time; lookups do not wait for it

	used time.Time // last looked up; guarded by Keys.mu
	size int       // retained bytes of keys; guarded by Keys.mu

	mu        sync.Mutex // guards the fields below
	keys      []key
	fetched   time.Time // last successful fetch; zero: never
	lastFetch time.Time // last attempt: when it began, or when it failed
}

// NewKeys returns an empty cache fetching through the egress policy.
func NewKeys(log *slog.Logger, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keys{clients: newClients(), now: now, log: log, byURL: map[source]*keySet{},
		most: maxKeySets, budget: maxCacheBytes, perSet: maxKeysPerSet}
}

func (k *Keys) set(src source) *keySet {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.byURL[src]
	if !ok {
		if len(k.byURL) >= k.most {
			k.forgetLeastUsed(nil)
		}
		s = &keySet{}
		k.byURL[src] = s
	}
	s.used = k.now()
	return s
}

// forgetLeastUsed drops the set looked up longest ago but keep, and reports
// whether there was one; k.mu is held. A request that holds the set still
// uses its keys; the next one fetches it again.
func (k *Keys) forgetLeastUsed(keep *keySet) bool {
	var (
		oldest source
		at     time.Time
		found  bool
	)
	for src, s := range k.byURL {
		if s != keep && (!found || s.used.Before(at)) {
			oldest, at, found = src, s.used, true
		}
	}
	if found {
		k.held -= k.byURL[oldest].size
		delete(k.byURL, oldest)
	}
	return found
}

// keep stores s's new keys and counts them in the cache's bytes, the sets
// used longest ago making way past the budget (s alone cannot be over it
// with the package's bounds, see maxCacheBytes; were it, it would stay
// alone); a set dropped while it was fetched counts no more. Each set
// dropped was added once, so over time that is one scan per set added, as
// for the count. k.mu is taken before s.mu: nothing takes them the other way.
func (k *Keys) keep(src source, s *keySet, keys []key) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s.mu.Lock()
	s.keys, s.fetched = keys, k.now()
	s.mu.Unlock()
	if k.byURL[src] != s {
		return
	}
	size := retained(keys)
	k.held += size - s.size
	s.size = size
	for k.held > k.budget && k.forgetLeastUsed(s) {
	}
}

// keyOverhead is what a kept key costs besides its kid and its numbers: the
// key, the public key's struct, the big.Int and slice headers, the
// allocator's rounding.
const keyOverhead = 256

// retained estimates the bytes keys hold.
func retained(keys []key) int {
	n := 0
	for _, k := range keys {
		n += keyOverhead + len(k.kid)
		switch p := k.raw.(type) {
		case *rsa.PublicKey:
			n += (p.N.BitLen() + 7) / 8
		case *ecdsa.PublicKey:
			n += 2 * ((p.Curve.Params().BitSize + 7) / 8)
		case ed25519.PublicKey:
			n += len(p)
		}
	}
	return n
}

// find returns the key of url for kid ("" when the token names none: only a
// set of one key can answer then). The set is fetched on first use, and again
// when kid is unknown or the set is older than MaxAge, at most once per
// MinRefresh; a failed refresh keeps the cached keys. errNoKeys when there
// are no keys at all.
func (k *Keys) find(ctx context.Context, src source, kid string) (key, error) {
	s := k.set(src)
	found, ok, fetch := s.lookup(kid, k.now())
	if !fetch {
		return s.answer(found, ok)
	}
	s.fetching.Lock()
	defer s.fetching.Unlock()
	// Another request may have fetched while this one waited.
	if found, ok, fetch = s.lookup(kid, k.now()); !fetch {
		return s.answer(found, ok)
	}
	if s.failedJustNow(k.now()) {
		return key{}, errNoKeys
	}
	// The fetch is the set's, not this request's: a caller that hangs up
	// (on purpose, with a made-up kid, as each minute's refresh comes due)
	// would otherwise spend the refresh on a fetch it cancels, and an
	// issuer's new key would never be fetched. The client's timeout bounds it.
	err := k.fetch(context.WithoutCancel(ctx), src, s)
	found, ok, _ = s.lookup(kid, k.now())
	switch {
	case ok:
		return found, nil
	case err != nil && s.empty():
		return key{}, fmt.Errorf("%w: %w", errNoKeys, err)
	case err != nil:
		k.log.WarnContext(ctx, "jwks refresh failed; serving cached keys", "jwks", src.where(), "error", err.Error())
	}
	return key{}, errNoKey
}

// MaxAge is how long fetched keys are used before they are fetched again, so
// that a key the issuer withdrew stops verifying.
const MaxAge = 24 * time.Hour

// lookup finds kid and says whether a fetch is due: when the keys were
// never fetched (the caller waits for the fetch in flight, or makes one), or
// when kid is unknown or the keys are older than MaxAge (at most once per
// MinRefresh).
func (s *keySet) lookup(kid string, now time.Time) (found key, ok, fetch bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, ok = s.pick(kid)
	switch {
	case s.fetched.IsZero():
		fetch = true
	case ok && now.Sub(s.fetched) <= MaxAge:
		fetch = false
	default:
		fetch = now.Sub(s.lastFetch) >= MinRefresh
	}
	return found, ok, fetch
}

// failedJustNow reports whether the keys were never fetched and the last
// attempt, less than a second ago, failed: no point hammering a down issuer.
func (s *keySet) failedJustNow(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetched.IsZero() && !s.lastFetch.IsZero() && now.Sub(s.lastFetch) < time.Second
}

// answer is the result of a lookup that fetches nothing.
func (s *keySet) answer(found key, ok bool) (key, error) {
	switch {
	case ok:
		return found, nil
	case s.empty():
		return key{}, errNoKeys
	}
	return key{}, errNoKey
}

func (s *keySet) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys) == 0
}

func (s *keySet) pick(kid string) (key, bool) {
	if kid == "" {
		if len(s.keys) == 1 {
			return s.keys[0], true
		}
		return key{}, false
	}
	for _, k := range s.keys {
		if k.kid == kid {
			return k, true
		}
	}
	return key{}, false
}

// fetch replaces s's keys with url's; on failure the old ones stay.
func (k *Keys) fetch(ctx context.Context, src source, s *keySet) error {
	s.mu.Lock()
	s.lastFetch = k.now()
	s.mu.Unlock()
	keys, err := k.get(ctx, k.clients.pick(src.allowPrivate), src)
	if err != nil {
		// A failure counts from when it came: the requests that waited on a
		// hanging fetch take its answer instead of each fetching in turn.
		s.mu.Lock()
		s.lastFetch = k.now()
		s.mu.Unlock()
		return err
	}
	k.keep(src, s, keys)
	return nil
}

// get fetches src's keys (the first k.perSet). A plain GET and jwk.Parse:
// jwk.Fetch (v3.4.0) does not take WithIgnoreParseError, and a key of an
// unknown type must not hide the others.
func (k *Keys) get(ctx context.Context, client *http.Client, src source) ([]key, error) {
	where := src.where()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", where, err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it quotes the URL whole
		}
		return nil, fmt.Errorf("jwks %s: %w", where, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: status %d", where, res.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", where, err)
	}
	if len(raw) > maxJWKS {
		return nil, fmt.Errorf("jwks %s: larger than %d bytes", where, maxJWKS)
	}
	keys, err := parseJWKS(raw, k.perSet)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", where, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks %s: no signature key", where)
	}
	return keys, nil
}

// parseJWKS is signatureKeys of a JWKS document.
func parseJWKS(raw []byte, most int) ([]key, error) {
	set, err := jwk.Parse(raw, jwk.WithIgnoreParseError(true))
	if err != nil {
		return nil, err
	}
	return signatureKeys(set, most), nil
}

// signatureKeys keeps the first most signature keys of set (keys of a type
// jwx does not know were skipped while parsing, and keys whose kid is longer
// than maxKid are) with the algorithm each is for: the one it declares, or
// the one its type and curve imply.
func signatureKeys(set jwk.Set, most int) []key {
	var out []key
	for i := 0; i < set.Len() && len(out) < most; i++ {
		jk, _ := set.Key(i)
		if use, ok := jk.KeyUsage(); ok && use != "" && use != "sig" {
			continue
		}
		kid, _ := jk.KeyID()
		if len(kid) > maxKid {
			continue
		}
		var pub any
		if err := jwk.Export(jk, &pub); err != nil {
			continue
		}
		declared := ""
		if a, ok := jk.Algorithm(); ok {
			declared = a.String()
		}
		alg, ok := algorithmFor(declared, pub)
		if !ok {
			continue
		}
		out = append(out, key{kid: kid, alg: alg, raw: pub})
	}
	return out
}

// algorithmFor returns the algorithm a key is for: its declared alg when that
// fits the key, otherwise the one its type implies.
func algorithmFor(declared string, pub any) (jwa.SignatureAlgorithm, bool) {
	var implied []jwa.SignatureAlgorithm
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return jwa.SignatureAlgorithm{}, false
		}
		implied = []jwa.SignatureAlgorithm{jwa.RS256(), jwa.RS384(), jwa.RS512(), jwa.PS256(), jwa.PS384(), jwa.PS512()}
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			implied = []jwa.SignatureAlgorithm{jwa.ES256()}
		case elliptic.P384():
			implied = []jwa.SignatureAlgorithm{jwa.ES384()}
		case elliptic.P521():
			implied = []jwa.SignatureAlgorithm{jwa.ES512()}
		}
	case ed25519.PublicKey:
		implied = []jwa.SignatureAlgorithm{jwa.EdDSA()}
	}
	if len(implied) == 0 {
		return jwa.SignatureAlgorithm{}, false
	}
	if declared == "" {
		return implied[0], true
	}
	for _, a := range implied {
		if a.String() == declared {
			return a, true
		}
	}
	return jwa.SignatureAlgorithm{}, false
}
