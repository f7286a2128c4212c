// Package token issues and verifies customerd's customer tokens: JWS compact,
// ES256, one key set per tenant kept (sealed) in the database, rotated
// without breaking tokens already issued, and published as a JWKS.
package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/token/jwtcheck"
)

// maxToken bounds a customer token.
const maxToken = 4096

// ErrInvalid: the token is not one of ours, or no longer valid. The wrapped
// reason is for logs, never for responses.
var ErrInvalid = errors.New("invalid token")

// Claims are what a customer token says.
type Claims struct {
	Subject   string    // the customer id
	Provider  string    // idp: the provider that authenticated the customer
	AMR       []string  // how: otp, sms, fed, …
	IssuedAt  time.Time // iat
	ExpiresAt time.Time // exp
	ID        string    // jti
	// KeyID is the kid of the key that signed the token, read from its
	// header on verification (Issue ignores it).
	KeyID string
}

// Options configure a Service.
type Options struct {
	// IssuerBase prefixes the iss claim: IssuerBase + "/api/" + tenant.
	IssuerBase string
	// Retention is how long a rotated-out key keeps verifying: the longest
	// token lifetime of any tenant, plus margin.
	Retention time.Duration
	// Seal encrypts private keys at rest (32 bytes).
	Seal []byte
	Now  func() time.Time
	// Cache bounds the verified-token cache (off when MaxEntries is 0).
	Cache CacheOptions
	// Metrics, when set, receives the cache's metrics.
	Metrics prometheus.Registerer
}

// Keys is where the tenants' signing keys are kept.
type Keys interface {
	AddSigningKey(ctx context.Context, k *store.SigningKey) error
	// SigningKeys are a tenant's keys, newest first.
	SigningKeys(ctx context.Context, tenant string) ([]store.SigningKey, error)
	RetireSigningKeys(ctx context.Context, tenant, keep string, at time.Time) (int, error)
	NewestSigningKey(ctx context.Context) (*store.SigningKey, error)
}

// CheckSeal opens the newest signing key stored (of any tenant): store.ErrWrongSecret
// when the seal key cannot, nil when it can or there is none yet. Without it,
// a service started with another secret answered 500 at every sign-in.
func (s *Service) CheckSeal(ctx context.Context) error {
	k, err := s.store.NewestSigningKey(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := s.seal.Open(k.PrivateKey, k.TenantID+"/"+k.KID); err != nil {
		return store.ErrWrongSecret
	}
	return nil
}

// Service signs and verifies the tokens of every tenant.
type Service struct {
	store Keys
	opts  Options
	seal  Sealer

	mu      sync.Mutex
	tenants map[string]*keyring
	cache   *tokenCache // nil: off
}

// keyring is one tenant's keys as loaded from the database.
type keyring struct {
	signing  *ecdsa.PrivateKey           // newest private key
	kid      string                      // its id
	prefix   []byte                      // base64url of its protected header, and the dot
	verify   map[string]*ecdsa.PublicKey // by kid, every key still in its retention
	jwks     []byte                      // the public JWKS document
	keys     uint64                      // identifies the set of verify keys: it changes when they do
	loadedAt time.Time
	missAt   time.Time // last reload caused by an unknown kid
}

// reload intervals: keys other replicas created appear within keyTTL; an
// unknown kid reloads at most once per missInterval per tenant.
const (
	keyTTL       = time.Minute
	missInterval = 5 * time.Second
)

// within reports whether at is less than d before now. A time after now is
// not: the clock stepped back (Options.Now is the wall clock, which
// store.Clock reads without Go's monotonic reading), and a ring kept while
// now-at < d would outlive d by the whole step.
func within(now, at time.Time, d time.Duration) bool {
	age := now.Sub(at)
	return age >= 0 && age < d
}

// New returns a Service over s.
func New(s Keys, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retention <= 0 {
		opts.Retention = 24*time.Hour + 2*keyTTL
	}
	se, err := NewSealer(opts.Seal)
	if err != nil {
		return nil, err
	}
	cache, err := newTokenCache(opts.Cache, opts.Now, opts.Metrics)
	if err != nil {
		return nil, err
	}
	return &Service{store: s, opts: opts, seal: se, tenants: map[string]*keyring{}, cache: cache}, nil
}

// Issuer is the iss of a tenant's tokens.
func (s *Service) Issuer(tenant string) string {
	return strings.TrimSuffix(s.opts.IssuerBase, "/") + "/api/" + tenant
}

// Issue signs a token for tenant valid for lifetime.
func (s *Service) Issue(ctx context.Context, tenant string, c Claims, lifetime time.Duration) (string, error) {
	ring, err := s.ring(ctx, tenant, true)
	if err != nil {
		return "", err
	}
	now := s.opts.Now().UTC().Truncate(time.Second)
	payload, err := json.Marshal(claimsJSON{
		AMR: c.AMR, Aud: [1]string{tenant}, Exp: now.Add(lifetime).Unix(), Iat: now.Unix(), Idp: c.Provider,
		Iss: s.Issuer(tenant), Jti: uuid.NewString(), Nbf: now.Unix(), Sub: c.Subject,
	})
	if err != nil {
		return "", err
	}
	// jws's building blocks over the header encoded once per key: the
	// same bytes jwt.Sign writes, without building a jwt.Token and its
	// headers for every token.
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(ring.prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	buf = enc.AppendEncode(append(buf, ring.prefix...), payload)
	sig, err := jwsbb.Sign(ring.signing, jwa.ES256().String(), buf, nil)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	jwtcheck.LowSSignature(sig)
	return string(jwsbb.AppendSignature(buf, sig, enc)), nil
}

// claimsJSON is the payload of a token: the claims of Claims with iss,
// aud (one tenant) and nbf, in the order jwt.Sign writes them.
type claimsJSON struct {
	AMR []string  `json:"amr"`
	Aud [1]string `json:"aud"`
	Exp int64     `json:"exp"`
	Iat int64     `json:"iat"`
	Idp string    `json:"idp"`
	Iss string    `json:"iss"`
	Jti string    `json:"jti"`
	Nbf int64     `json:"nbf"`
	Sub string    `json:"sub"`
}

// Verify checks a token of tenant: compact serialization in canonical
// base64url, ES256 only with a low-S signature, a key of this tenant only (by
// kid), iss, aud, sub, and exp, nbf and iat within the skew. A token it
// verified before under the same keys comes from the cache until it
// expires. The claims it returns are shared: read them, never change them.
func (s *Service) Verify(ctx context.Context, tenant, raw string) (*Claims, error) {
	var key [32]byte
	if s.cache != nil {
		ring, err := s.ring(ctx, tenant, false)
		if err != nil {
			return nil, err
		}
		key = cacheKey(tenant, raw)
		if c, ok := s.cache.get(key, ring.keys, s.opts.Now()); ok {
			return c, nil
		}
	}
	h, err := jwtcheck.Precheck(raw, maxToken)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch {
	case h.Alg != jwa.ES256().String():
		return nil, fmt.Errorf("%w: %w: alg %q", ErrInvalid, jwtcheck.ErrAlgorithm, h.Alg)
	case h.Kid == "":
		return nil, fmt.Errorf("%w: no kid", ErrInvalid)
	}
	if err := jwtcheck.CheckLowS(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	pub, keys, err := s.publicKey(ctx, tenant, h.Kid)
	if err != nil {
		return nil, err
	}
	tok, err := jwtcheck.Parse(raw, h, jwa.ES256(), pub, s.opts.Now,
		jwt.WithIssuer(s.Issuer(tenant)), jwt.WithAudience(tenant))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := &Claims{KeyID: h.Kid}
	c.Subject, _ = tok.Subject()
	c.IssuedAt, _ = tok.IssuedAt()
	c.ExpiresAt, _ = tok.Expiration()
	c.ID, _ = tok.JwtID()
	_ = tok.Get("idp", &c.Provider)
	var amr []any
	_ = tok.Get("amr", &amr)
	for _, m := range amr {
		if s, ok := m.(string); ok {
			c.AMR = append(c.AMR, s)
		}
	}
	if s.cache != nil {
		s.cache.put(key, keys, c, s.opts.Now())
	}
	return c, nil
}

// JWKS is the tenant's public key set document.
func (s *Service) JWKS(ctx context.Context, tenant string) ([]byte, error) {
	ring, err := s.ring(ctx, tenant, true)
	if err != nil {
		return nil, err
	}
	return ring.jwks, nil
}

// Rotate adds a new signing key to tenant; older keys keep verifying for Retention.
func (s *Service) Rotate(ctx context.Context, tenant string) (string, error) {
	kid, err := s.addKey(ctx, tenant)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	delete(s.tenants, tenant)
	s.mu.Unlock()
	return kid, nil
}

// RetirePrevious retires every key of tenant but its newest (kid, which
// Rotate returned): tokens the others signed are refused at once here, and
// on other replicas at their next signing-key read (within keyTTL). It
// returns how many keys it retired.
func (s *Service) RetirePrevious(ctx context.Context, tenant, kid string) (int, error) {
	n, err := s.store.RetireSigningKeys(ctx, tenant, kid, s.opts.Now())
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	delete(s.tenants, tenant)
	s.mu.Unlock()
	return n, nil
}

// publicKey is the tenant's key kid, with the generation of the key set
// it was found in.
func (s *Service) publicKey(ctx context.Context, tenant, kid string) (*ecdsa.PublicKey, uint64, error) {
	ring, err := s.ring(ctx, tenant, false)
	if err != nil {
		return nil, 0, err
	}
	if k, ok := ring.verify[kid]; ok {
		return k, ring.keys, nil
	}
	// Another replica may have rotated: reload, but not for every stray kid.
	s.mu.Lock()
	now := s.opts.Now()
	stale := !within(now, ring.missAt, missInterval)
	if stale {
		ring.missAt = now
		delete(s.tenants, tenant)
	}
	s.mu.Unlock()
	if stale {
		if ring, err = s.ring(ctx, tenant, false); err != nil {
			return nil, 0, err
		}
		s.mu.Lock()
		ring.missAt = now
		s.mu.Unlock()
		if k, ok := ring.verify[kid]; ok {
			return k, ring.keys, nil
		}
	}
	return nil, 0, fmt.Errorf("%w: unknown kid", ErrInvalid)
}

// ring returns the tenant's loaded keys, loading them when absent or stale,
// and creating the first key when create is set and the tenant has none.
func (s *Service) ring(ctx context.Context, tenant string, create bool) (*keyring, error) {
	s.mu.Lock()
	ring, ok := s.tenants[tenant]
	s.mu.Unlock()
	if ok && within(s.opts.Now(), ring.loadedAt, keyTTL) && (ring.signing != nil || !create) {
		return ring, nil
	}
	var stale *keyring
	if ok {
		stale = ring
	}
	ring, err := s.load(ctx, tenant, stale)
	if err != nil {
		return nil, err
	}
	if ring.signing == nil {
		if !create {
			// Nothing to verify with, not worth a key yet; kept as a loaded
			// ring is, so that tokens for a tenant without keys (junk ones
			// too) do not each read the database. A key another replica
			// makes is seen at the first token that names it (missInterval).
			s.mu.Lock()
			s.tenants[tenant] = ring
			s.mu.Unlock()
			return ring, nil
		}
		if _, err := s.addKey(ctx, tenant); err != nil {
			return nil, err
		}
		if ring, err = s.load(ctx, tenant, nil); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.tenants[tenant] = ring
	s.mu.Unlock()
	return ring, nil
}

// load reads the tenant's keys. When they are the keys of stale (a ring
// loaded before, whose time is up), stale is kept with a new loadedAt: the
// keys are not unsealed and parsed again, which with thousands of tenants
// in use was a tenth of a code verification's time on a random tenant
// (every ring reloads each keyTTL).
func (s *Service) load(ctx context.Context, tenant string, stale *keyring) (*keyring, error) {
	keys, err := s.store.SigningKeys(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	// A retired key verifies nothing (rotate-key --retire-previous, after a
	// leak); a key stays while tokens it signed before the next key took
	// over may live.
	keys = slices.DeleteFunc(keys, func(k store.SigningKey) bool { return k.RetiredAt != nil })
	for i := 1; i < len(keys); i++ {
		if now.Sub(keys[i-1].CreatedAt) > s.opts.Retention {
			keys = keys[:i]
			break
		}
	}
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.KID
	}
	if stale != nil && len(keys) > 0 && stale.kid == keys[0].KID && stale.keys == keySet(kids) {
		ring := *stale
		ring.loadedAt = now
		return &ring, nil
	}
	ring := &keyring{verify: map[string]*ecdsa.PublicKey{}, loadedAt: now, keys: keySet(kids)}
	set := jwk.NewSet()
	for i, k := range keys {
		pub, err := jwk.ParseKey([]byte(k.PublicJWK))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		var raw ecdsa.PublicKey
		if err := jwk.Export(pub, &raw); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		ring.verify[k.KID] = &raw
		_ = set.AddKey(pub)
		if i == 0 {
			priv, err := s.seal.Open(k.PrivateKey, k.TenantID+"/"+k.KID)
			if err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
			}
			key, err := jwk.ParseKey(priv)
			if err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
			}
			ring.signing, ring.kid = new(ecdsa.PrivateKey), k.KID
			if err := jwk.Export(key, ring.signing); err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
			}
			hdr, err := json.Marshal(struct {
				Alg string `json:"alg"`
				Kid string `json:"kid"`
				Typ string `json:"typ"`
			}{jwa.ES256().String(), k.KID, "JWT"})
			if err != nil {
				return nil, err
			}
			ring.prefix = jwsbb.SigningPrefix(nil, hdr, base64.RawURLEncoding)
		}
	}
	if ring.jwks, err = json.Marshal(set); err != nil {
		return nil, err
	}
	return ring, nil
}

// keySet identifies a set of verify keys by their ids: two loads of the
// same keys give the same value, and a rotation or a retired key another.
func keySet(kids []string) uint64 {
	h := fnv.New64a()
	for _, kid := range slices.Sorted(slices.Values(kids)) {
		h.Write([]byte(kid))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func (s *Service) addKey(ctx context.Context, tenant string) (string, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	now := s.opts.Now().UTC()
	kid := now.Format("20060102T150405Z") + "-" + uuid.NewString()[:8]
	priv, err := jwk.Import(raw)
	if err != nil {
		return "", err
	}
	_ = priv.Set(jwk.KeyIDKey, kid)
	_ = priv.Set(jwk.AlgorithmKey, jwa.ES256())
	_ = priv.Set(jwk.KeyUsageKey, "sig")
	pub, err := priv.PublicKey()
	if err != nil {
		return "", err
	}
	privJSON, err := json.Marshal(priv)
	if err != nil {
		return "", err
	}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return "", err
	}
	sealed, err := s.seal.Seal(privJSON, tenant+"/"+kid)
	if err != nil {
		return "", err
	}
	err = s.store.AddSigningKey(ctx, &store.SigningKey{TenantID: tenant, KID: kid, Alg: jwa.ES256().String(),
		PrivateKey: sealed, PublicJWK: string(pubJSON), CreatedAt: now})
	return kid, err
}
