// Package token issues and verifies customerd's customer tokens: JWS compact,
// ES256, one key set per tenant kept (sealed) in the database, rotated
// without breaking tokens already issued, and published as a JWKS.
package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/customerd/customerd/store"
)

// Skew is the clock difference tolerated on exp, nbf and iat.
const Skew = 60 * time.Second

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
}

// Service signs and verifies the tokens of every tenant.
type Service struct {
	store store.Store
	opts  Options
	seal  sealer

	mu      sync.Mutex
	tenants map[string]*keyring
}

// keyring is one tenant's keys as loaded from the database.
type keyring struct {
	signing  jwk.Key                     // newest private key
	verify   map[string]*ecdsa.PublicKey // by kid, every key still in its retention
	jwks     []byte                      // the public JWKS document
	loadedAt time.Time
	missAt   time.Time // last reload caused by an unknown kid
}

// reload intervals: keys other replicas created appear within keyTTL; an
// unknown kid reloads at most once per missInterval per tenant.
const (
	keyTTL       = time.Minute
	missInterval = 5 * time.Second
)

// New returns a Service over s.
func New(s store.Store, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retention <= 0 {
		opts.Retention = 24*time.Hour + 2*keyTTL
	}
	se, err := newSealer(opts.Seal)
	if err != nil {
		return nil, err
	}
	return &Service{store: s, opts: opts, seal: se, tenants: map[string]*keyring{}}, nil
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
	tok, err := jwt.NewBuilder().
		Issuer(s.Issuer(tenant)).
		Audience([]string{tenant}).
		Subject(c.Subject).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(lifetime)).
		JwtID(uuid.NewString()).
		Claim("idp", c.Provider).
		Claim("amr", c.AMR).
		Build()
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, "JWT")
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, ring.signing, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return lowS(string(signed)), nil
}

// p256HalfOrder is n/2 for P-256: (r, s) and (r, n-s) are both valid ECDSA
// signatures of one message, so a token has two forms unless one is chosen.
var p256HalfOrder = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// lowS returns an ES256 compact token with its signature in the low-S form
// (s <= n/2), the only one Verify accepts: the signer (crypto/ecdsa) picks
// either.
func lowS(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		return tok
	}
	s := new(big.Int).SetBytes(sig[32:])
	if s.Cmp(p256HalfOrder) <= 0 {
		return tok
	}
	s.Sub(elliptic.P256().Params().N, s).FillBytes(sig[32:])
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// isLowS reports whether a compact ES256 token's signature is r || s with
// s <= n/2.
func isLowS(tok string) bool {
	sig, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	return err == nil && len(sig) == 64 && new(big.Int).SetBytes(sig[32:]).Cmp(p256HalfOrder) <= 0
}

// header is the part of a JOSE header we look at before verifying.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Jku  json.RawMessage `json:"jku"`
	X5u  json.RawMessage `json:"x5u"`
	JWK  json.RawMessage `json:"jwk"`
	X5c  json.RawMessage `json:"x5c"`
	Crit json.RawMessage `json:"crit"`
	Enc  json.RawMessage `json:"enc"`
}

type payload struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Nbf *float64        `json:"nbf"`
	Iat *float64        `json:"iat"`
	Jti string          `json:"jti"`
	Idp string          `json:"idp"`
	AMR []string        `json:"amr"`
}

// Verify checks a token of tenant: compact serialization, ES256 only, a key
// of this tenant only (by kid), iss, aud, exp, nbf and iat within Skew.
func (s *Service) Verify(ctx context.Context, tenant, raw string) (*Claims, error) {
	if !compactJWS(raw) {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrInvalid)
	}
	h, err := decodeHeader(raw[:strings.IndexByte(raw, '.')])
	if err != nil {
		return nil, err
	}
	if !isLowS(raw) {
		return nil, fmt.Errorf("%w: not the low-S form of an ES256 signature", ErrInvalid)
	}
	key, err := s.publicKey(ctx, tenant, h.Kid)
	if err != nil {
		return nil, err
	}
	body, err := jws.Verify([]byte(raw), jws.WithKey(jwa.ES256, key))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalid, err)
	}
	now := s.opts.Now()
	switch {
	case p.Iss != s.Issuer(tenant):
		return nil, fmt.Errorf("%w: iss %q", ErrInvalid, p.Iss)
	case !audienceHas(p.Aud, tenant):
		return nil, fmt.Errorf("%w: aud", ErrInvalid)
	case p.Sub == "":
		return nil, fmt.Errorf("%w: no sub", ErrInvalid)
	case p.Exp == nil || now.After(unix(*p.Exp).Add(Skew)):
		return nil, fmt.Errorf("%w: expired", ErrInvalid)
	case p.Nbf != nil && unix(*p.Nbf).After(now.Add(Skew)):
		return nil, fmt.Errorf("%w: not yet valid", ErrInvalid)
	case p.Iat == nil || unix(*p.Iat).After(now.Add(Skew)):
		return nil, fmt.Errorf("%w: issued in the future", ErrInvalid)
	}
	return &Claims{Subject: p.Sub, Provider: p.Idp, AMR: p.AMR, IssuedAt: unix(*p.Iat), ExpiresAt: unix(*p.Exp), ID: p.Jti}, nil
}

// compactJWS reports whether raw is three base64url segments in their one
// canonical encoding. jwx decodes leniently (line breaks, padding, the
// standard alphabet, stray trailing bits), which would let variants of a
// token verify as the token.
func compactJWS(raw string) bool {
	if len(raw) > 4096 || strings.Count(raw, ".") != 2 || strings.ContainsAny(raw, "\r\n") {
		return false
	}
	for seg := range strings.SplitSeq(raw, ".") {
		if _, err := base64.RawURLEncoding.Strict().DecodeString(seg); err != nil {
			return false
		}
	}
	return true
}

func decodeHeader(seg string) (*header, error) {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("%w: header encoding", ErrInvalid)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("%w: header", ErrInvalid)
	}
	switch {
	case h.Alg != jwa.ES256.String():
		return nil, fmt.Errorf("%w: alg %q", ErrInvalid, h.Alg)
	case h.Kid == "":
		return nil, fmt.Errorf("%w: no kid", ErrInvalid)
	case h.Jku != nil || h.X5u != nil || h.JWK != nil || h.X5c != nil || h.Crit != nil || h.Enc != nil:
		return nil, fmt.Errorf("%w: header names its own key or extensions", ErrInvalid)
	}
	return &h, nil
}

func audienceHas(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

func unix(f float64) time.Time { return time.Unix(int64(f), 0) }

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

func (s *Service) publicKey(ctx context.Context, tenant, kid string) (*ecdsa.PublicKey, error) {
	ring, err := s.ring(ctx, tenant, false)
	if err != nil {
		return nil, err
	}
	if k, ok := ring.verify[kid]; ok {
		return k, nil
	}
	// Another replica may have rotated: reload, but not for every stray kid.
	s.mu.Lock()
	now := s.opts.Now()
	stale := now.Sub(ring.missAt) >= missInterval
	if stale {
		ring.missAt = now
		delete(s.tenants, tenant)
	}
	s.mu.Unlock()
	if stale {
		if ring, err = s.ring(ctx, tenant, false); err != nil {
			return nil, err
		}
		s.mu.Lock()
		ring.missAt = now
		s.mu.Unlock()
		if k, ok := ring.verify[kid]; ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: unknown kid", ErrInvalid)
}

// ring returns the tenant's loaded keys, loading them when absent or stale,
// and creating the first key when create is set and the tenant has none.
func (s *Service) ring(ctx context.Context, tenant string, create bool) (*keyring, error) {
	s.mu.Lock()
	ring, ok := s.tenants[tenant]
	s.mu.Unlock()
	if ok && s.opts.Now().Sub(ring.loadedAt) < keyTTL {
		return ring, nil
	}
	ring, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if ring.signing == nil {
		if !create {
			return ring, nil // nothing to verify with; not worth a key yet
		}
		if _, err := s.addKey(ctx, tenant); err != nil {
			return nil, err
		}
		if ring, err = s.load(ctx, tenant); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.tenants[tenant] = ring
	s.mu.Unlock()
	return ring, nil
}

func (s *Service) load(ctx context.Context, tenant string) (*keyring, error) {
	keys, err := s.store.SigningKeys(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	ring := &keyring{verify: map[string]*ecdsa.PublicKey{}, loadedAt: now}
	set := jwk.NewSet()
	for i, k := range keys {
		// A key stays while tokens it signed before the next key took over may live.
		if i > 0 && now.Sub(keys[i-1].CreatedAt) > s.opts.Retention {
			break
		}
		pub, err := jwk.ParseKey([]byte(k.PublicJWK))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		var raw ecdsa.PublicKey
		if err := pub.Raw(&raw); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		ring.verify[k.KID] = &raw
		_ = set.AddKey(pub)
		if i == 0 {
			priv, err := s.seal.open(k.PrivateKey, k.TenantID+"/"+k.KID)
			if err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
			}
			key, err := jwk.ParseKey(priv)
			if err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
			}
			ring.signing = key
		}
	}
	if ring.jwks, err = json.Marshal(set); err != nil {
		return nil, err
	}
	return ring, nil
}

func (s *Service) addKey(ctx context.Context, tenant string) (string, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	now := s.opts.Now().UTC()
	kid := now.Format("20060102T150405Z") + "-" + uuid.NewString()[:8]
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		return "", err
	}
	for _, k := range []jwk.Key{priv} {
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.ES256)
		_ = k.Set(jwk.KeyUsageKey, "sig")
	}
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
	sealed, err := s.seal.close(privJSON, tenant+"/"+kid)
	if err != nil {
		return "", err
	}
	err = s.store.AddSigningKey(ctx, &store.SigningKey{TenantID: tenant, KID: kid, Alg: jwa.ES256.String(),
		PrivateKey: sealed, PublicJWK: string(pubJSON), CreatedAt: now})
	return kid, err
}
