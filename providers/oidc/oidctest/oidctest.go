// Package oidctest is a local OpenID Connect issuer for tests and
// benchmarks: an httptest server that serves a discovery document and a
// JWKS, and signs ID tokens with real RSA, EC and Ed25519 keys — or with
// anything a negative test needs (alg none, a forged header, a flipped bit).
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Key is one signing key of the issuer.
type Key struct {
	Kid     string
	Alg     string // RS256, ES256, EdDSA
	Private crypto.Signer
}

// Issuer is a running local issuer.
type Issuer struct {
	Server *httptest.Server
	// Fetches counts the JWKS requests served (and refused while down).
	Fetches atomic.Int32

	mu        sync.Mutex
	published []*Key
	down      bool
	jwksURI   string // what discovery announces; JWKSURL() when empty
}

// New starts an issuer publishing an RSA (RS256), an EC P-256 (ES256) and an
// Ed25519 (EdDSA) key.
func New(t testing.TB) *Issuer {
	t.Helper()
	i, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(i.Server.Close)
	return i
}

// Start is New outside a test (a load benchmark): the caller closes i.Server.
func Start() (*Issuer, error) {
	i := &Issuer{}
	for _, k := range [][2]string{{"RS256", "rsa-1"}, {"ES256", "ec-1"}, {"EdDSA", "ed-1"}} {
		key, err := GenerateKey(k[0], k[1])
		if err != nil {
			return nil, err
		}
		i.published = append(i.published, key)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", i.serveJWKS)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if i.isDown() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		i.mu.Lock()
		jwksURI := i.jwksURI
		i.mu.Unlock()
		if jwksURI == "" {
			jwksURI = i.JWKSURL()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": i.URL(), "jwks_uri": jwksURI})
	})
	i.Server = httptest.NewServer(mux)
	return i, nil
}

// URL is the issuer identifier, the iss of its tokens.
func (i *Issuer) URL() string { return i.Server.URL }

// JWKSURL is where the issuer publishes its keys.
func (i *Issuer) JWKSURL() string { return i.Server.URL + "/jwks" }

// NewKey generates a key for alg (RS256, ES256 or EdDSA).
func NewKey(t testing.TB, alg, kid string) *Key {
	t.Helper()
	k, err := GenerateKey(alg, kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// GenerateKey is NewKey outside a test.
func GenerateKey(alg, kid string) (*Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("oidctest: no key for %s", alg)
	}
	if err != nil {
		return nil, err
	}
	return &Key{Kid: kid, Alg: alg, Private: priv}, nil
}

// Key returns the published key for alg.
func (i *Issuer) Key(alg string) *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.published {
		if k.Alg == alg {
			return k
		}
	}
	return nil
}

// Publish replaces the published keys (a rotation at the issuer).
func (i *Issuer) Publish(keys ...*Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = keys
}

// Announce makes discovery name u as the issuer's jwks_uri (a tampered
// discovery document).
func (i *Issuer) Announce(u string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksURI = u
}

// SetDown makes the issuer answer 503 to everything (true) or serve again.
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
}

func (i *Issuer) isDown() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.down
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.Fetches.Add(1)
	i.mu.Lock()
	down, keys := i.down, append([]*Key(nil), i.published...)
	i.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	set := []map[string]any{}
	for _, k := range keys {
		set = append(set, k.JWK())
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": set})
}

// JWK is the public JWK of k, declaring its alg.
func (k *Key) JWK() map[string]any {
	m := map[string]any{"kid": k.Kid, "alg": k.Alg, "use": "sig"}
	switch pub := k.Private.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, _ := pub.Bytes() // 0x04 || X || Y, 32 bytes each on P-256
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64(raw[1:33]), b64(raw[33:65])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
	}
	return m
}

// Claims are valid claims of this issuer for aud and sub, issued now.
func (i *Issuer) Claims(aud, sub string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": i.URL(), "aud": aud, "sub": sub, "iat": now, "exp": now + 600}
}

// Sign signs claims with k, its kid and alg in the header.
func (k *Key) Sign(claims map[string]any) string {
	return k.SignHeader(map[string]any{"alg": k.Alg, "kid": k.Kid, "typ": "JWT"}, claims)
}

// SignHeader signs claims with k under exactly header.
func (k *Key) SignHeader(header, claims map[string]any) string {
	input := encode(header) + "." + encode(claims)
	return input + "." + b64(k.signature([]byte(input)))
}

func (k *Key) signature(input []byte) []byte {
	h := sha256.Sum256(input)
	switch priv := k.Private.(type) {
	case *rsa.PrivateKey:
		sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
		return sig
	case *ecdsa.PrivateKey:
		r, s, _ := ecdsa.Sign(rand.Reader, priv, h[:])
		return append(pad32(r.Bytes()), pad32(s.Bytes())...)
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, input)
	}
	return nil
}

// HS256 signs claims with HMAC-SHA256 and secret under header.
func HS256(secret []byte, header, claims map[string]any) string {
	input := encode(header) + "." + encode(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

// Unsigned is a token with alg none and an empty signature.
func Unsigned(claims map[string]any) string {
	return encode(map[string]any{"alg": "none", "typ": "JWT"}) + "." + encode(claims) + "."
}

func encode(v any) string {
	raw, _ := json.Marshal(v)
	return b64(raw)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad32(b []byte) []byte {
	if len(b) >= 32 {
		return b
	}
	return append(make([]byte, 32-len(b)), b...)
}

// With is a copy of m with the pairs kv (key, value) set, a nil value
// deleting its key: a claim set or a JWK with one thing changed.
func With(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}
