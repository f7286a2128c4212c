package token_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
	"github.com/customerd/customerd/token"
)

const (
	issuerBase = "https://id.example.test"
	tenantA    = "acme"
	tenantB    = "globex"
	lifetime   = 15 * time.Minute
	retention  = 2 * time.Hour
)

// sealKey is the fixed 32-byte secret the tests seal private keys with.
var sealKey = []byte("0123456789abcdef0123456789abcdef")

// start has a fractional second, so that the truncation of iat shows.
var start = time.Date(2025, 6, 1, 10, 0, 0, 123456789, time.UTC)

// clock is an injectable clock. Reads do not synchronise goroutines with each
// other (an atomic load), so the race detector sees what the Service does.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }

// fixture is a real SQLite store, a clock and a Service over them.
type fixture struct {
	st  store.Store
	clk *clock
	svc *token.Service
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{st: storetest.Open(t, storetest.SQLiteURL(t)), clk: newClock(start)}
	f.svc = f.service(t, sealKey, f.clk)
	return f
}

// service is another Service (another replica) over the fixture's store.
func (f *fixture) service(t testing.TB, seal []byte, clk *clock) *token.Service {
	t.Helper()
	svc, err := token.New(f.st, token.Options{IssuerBase: issuerBase, Retention: retention, Seal: seal, Now: clk.Now})
	if err != nil {
		t.Fatalf("token.New: %v", err)
	}
	return svc
}

func (f *fixture) issue(t testing.TB, svc *token.Service, tenant string) string {
	t.Helper()
	tok, err := svc.Issue(context.Background(), tenant, token.Claims{Subject: "cust-1", Provider: "otp", AMR: []string{"otp"}}, lifetime)
	if err != nil {
		t.Fatalf("Issue(%s): %v", tenant, err)
	}
	return tok
}

// signingKey opens the tenant's newest private key the way the Service
// stores it: AES-256-GCM, nonce first, tenant/kid as additional data. The
// tests need it to sign tokens that differ from an issued one in one claim or
// header only, so that the check under test is the only one that can refuse.
func (f *fixture) signingKey(t testing.TB, tenant string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	keys, err := f.st.SigningKeys(context.Background(), tenant)
	if err != nil || len(keys) == 0 {
		t.Fatalf("SigningKeys(%s) = %d keys, %v", tenant, len(keys), err)
	}
	k := keys[0]
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, k.PrivateKey[:n], k.PrivateKey[n:], []byte(k.TenantID+"/"+k.KID))
	if err != nil {
		t.Fatalf("open sealed key: %v", err)
	}
	key, err := jwk.ParseKey(plain)
	if err != nil {
		t.Fatal(err)
	}
	var priv ecdsa.PrivateKey
	if err := jwk.Export(key, &priv); err != nil {
		t.Fatal(err)
	}
	return &priv, k.KID
}

// claims are valid claims of tenant at now, as a map a case can change.
func claims(tenant string, now time.Time) map[string]any {
	return map[string]any{
		"iss": issuerBase + "/api/" + tenant,
		"aud": []string{tenant},
		"sub": "cust-1",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
		"jti": "jti-1",
		"idp": "otp",
		"amr": []string{"otp"},
	}
}

// sign builds a compact JWS with jwx: alg and key, protected header fields hdr.
func sign(t testing.TB, alg jwa.SignatureAlgorithm, key any, hdr map[string]any, body map[string]any, opts ...jws.SignOption) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		if err := h.Set(k, v); err != nil {
			t.Fatalf("header %s: %v", k, err)
		}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	signed, err := jws.Sign(payload, opts...)
	if err != nil {
		t.Fatalf("jws.Sign(%s): %v", alg, err)
	}
	if alg == jwa.ES256() && strings.Count(string(signed), ".") == 2 {
		return otherForm(t, string(signed), false) // as customerd signs
	}
	return string(signed)
}

// p256 is the curve of customerd's tokens.
var p256 = elliptic.P256().Params()

// otherForm returns tok with its ES256 signature (r, s) in the high-S form
// (r, n-s) when high, in the low-S form otherwise: both verify as ECDSA.
func otherForm(t testing.TB, tok string, high bool) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v", err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	isHigh := s.Cmp(new(big.Int).Rsh(p256.N, 1)) > 0
	if isHigh != high {
		s.Sub(p256.N, s).FillBytes(sig[32:])
	}
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// flipped is tok with one bit of its signature flipped: never tok itself
// (replacing its last characters by fixed ones was tok once in 256 runs).
func flipped(t testing.TB, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		t.Fatalf("no signature: %v", err)
	}
	sig[0] ^= 1
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// assemble builds a compact JWS by hand, for what jwx refuses to sign.
func assemble(t testing.TB, hdr, body map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString(sig)
}

// assembleES256 builds and signs a compact JWS by hand, for headers jwx
// will not set.
func assembleES256(t testing.TB, priv *ecdsa.PrivateKey, hdr, body map[string]any) string {
	t.Helper()
	unsigned := strings.TrimSuffix(assemble(t, hdr, body, nil), ".")
	sum := sha256.Sum256([]byte(unsigned))
	r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return otherForm(t, unsigned+"."+base64.RawURLEncoding.EncodeToString(sig), false)
}

// strayBits re-encodes the last character of tok with padding bits set: the
// same signature bytes under a lenient decoder, a different string.
func strayBits(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

// segment decodes part i (0 header, 1 payload) of a compact token.
func segment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	m := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	return m
}

func number(t testing.TB, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer", v)
	}
	return i
}

// jwks decodes a JWKS document into its keys, member by member.
func jwks(t testing.TB, doc []byte) []map[string]any {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS %s: %v", doc, err)
	}
	return set.Keys
}

func kids(t testing.TB, doc []byte) []string {
	t.Helper()
	var out []string
	for _, k := range jwks(t, doc) {
		kid, _ := k["kid"].(string)
		out = append(out, kid)
	}
	return out
}

func mustJWKS(t testing.TB, svc *token.Service, tenant string) []byte {
	t.Helper()
	doc, err := svc.JWKS(context.Background(), tenant)
	if err != nil {
		t.Fatalf("JWKS(%s): %v", tenant, err)
	}
	return doc
}

func refused(t testing.TB, svc *token.Service, tenant, tok string) {
	t.Helper()
	c, err := svc.Verify(context.Background(), tenant, tok)
	if !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("Verify = %+v, %v; want an error wrapping token.ErrInvalid", c, err)
	}
	if c != nil {
		t.Fatalf("Verify refused the token but returned claims %+v", c)
	}
}

func accepted(t testing.TB, svc *token.Service, tenant, tok string) *token.Claims {
	t.Helper()
	c, err := svc.Verify(context.Background(), tenant, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func TestIssuedTokenVerifiesAndCarriesItsClaims(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, err := f.svc.Issue(ctx, tenantA, token.Claims{Subject: "cust-42", Provider: "google", AMR: []string{"fed", "otp"}}, lifetime)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	iat := start.Truncate(time.Second)

	c := accepted(t, f.svc, tenantA, tok)
	tests := []struct {
		name      string
		got, want any
	}{
		{"sub", c.Subject, "cust-42"},
		{"idp", c.Provider, "google"},
		{"amr", fmt.Sprint(c.AMR), fmt.Sprint([]string{"fed", "otp"})},
		{"iat", c.IssuedAt.Unix(), iat.Unix()},
		{"exp is iat plus the lifetime", c.ExpiresAt.Unix(), iat.Add(lifetime).Unix()},
		{"jti is set", c.ID != "", true},
	}
	hdr, body := segment(t, tok, 0), segment(t, tok, 1)
	var aud []string
	switch a := body["aud"].(type) {
	case string:
		aud = []string{a}
	case []any:
		for _, v := range a {
			s, _ := v.(string)
			aud = append(aud, s)
		}
	}
	tests = append(tests, []struct {
		name      string
		got, want any
	}{
		{"iss is IssuerBase/api/tenant", body["iss"], issuerBase + "/api/" + tenantA},
		{"Issuer agrees with iss", f.svc.Issuer(tenantA), issuerBase + "/api/" + tenantA},
		{"aud is the tenant", fmt.Sprint(aud), fmt.Sprint([]string{tenantA})},
		{"payload sub", body["sub"], "cust-42"},
		{"payload idp", body["idp"], "google"},
		{"payload iat", number(t, body["iat"]), iat.Unix()},
		{"payload nbf", number(t, body["nbf"]), iat.Unix()},
		{"payload exp", number(t, body["exp"]), iat.Add(lifetime).Unix()},
		{"payload jti matches Claims.ID", body["jti"], c.ID},
		{"header alg", hdr["alg"], "ES256"},
		{"header typ", hdr["typ"], "JWT"},
		{"header kid is the JWKS key", hdr["kid"], kids(t, mustJWKS(t, f.svc, tenantA))[0]},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}

	t.Run("the payload is the bytes jwx writes for its claims", func(t *testing.T) {
		parsed, err := jwt.ParseInsecure([]byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(parsed)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if string(got) != string(want) {
			t.Errorf("payload\n%s\njwx writes\n%s", got, want)
		}
	})

	t.Run("each token has its own jti", func(t *testing.T) {
		other := accepted(t, f.svc, tenantA, f.issue(t, f.svc, tenantA))
		if other.ID == c.ID {
			t.Errorf("two tokens share jti %q", c.ID)
		}
	})
}

func TestFirstUseCreatesOneKeyAndTheJWKSPublishesIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// Verifying for a tenant that has no key yet creates none.
	refused(t, f.svc, tenantA, assemble(t, map[string]any{"alg": "ES256", "kid": "k"}, claims(tenantA, start), make([]byte, 64)))
	if keys, err := f.st.SigningKeys(ctx, tenantA); err != nil || len(keys) != 0 {
		t.Fatalf("after Verify: %d keys, %v; want none", len(keys), err)
	}

	tok := f.issue(t, f.svc, tenantA)
	doc := mustJWKS(t, f.svc, tenantA)
	f.issue(t, f.svc, tenantA)
	if again := mustJWKS(t, f.svc, tenantA); !bytes.Equal(again, doc) {
		t.Errorf("JWKS changed without a rotation:\n%s\n%s", doc, again)
	}

	keys, err := f.st.SigningKeys(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	published := jwks(t, doc)
	if len(keys) != 1 || len(published) != 1 {
		t.Fatalf("%d stored keys and %d published (%s); want one of each", len(keys), len(published), doc)
	}
	k := published[0]
	tests := []struct {
		name string
		ok   bool
	}{
		{"kty is EC", k["kty"] == "EC"},
		{"crv is P-256", k["crv"] == "P-256"},
		{"alg is ES256", k["alg"] == "ES256"},
		{"use is sig", k["use"] == "sig"},
		{"kid is the stored kid", k["kid"] == keys[0].KID},
		{"kid is the token's kid", k["kid"] == segment(t, tok, 0)["kid"]},
		{"x and y are published", k["x"] != nil && k["y"] != nil},
		{"the private member d is not published", k["d"] == nil},
		{"no private member anywhere in the document", !bytes.Contains(doc, []byte(`"d"`))},
		{"the stored public key has no d", !strings.Contains(keys[0].PublicJWK, `"d"`)},
		{"the stored private key is sealed, not JSON", !bytes.Contains(keys[0].PrivateKey, []byte(`"d"`)) && !json.Valid(keys[0].PrivateKey)},
		{"the stored alg is ES256", keys[0].Alg == "ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("key %v; stored %+v", k, keys[0].PublicJWK)
			}
		})
	}

	t.Run("a relying party verifies the token with the JWKS", func(t *testing.T) {
		set, err := jwk.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify([]byte(tok), jws.WithKeySet(set)); err != nil {
			t.Fatalf("jws.Verify with the published set: %v", err)
		}
	})

	t.Run("JWKS alone creates the first key", func(t *testing.T) {
		doc := mustJWKS(t, f.svc, tenantB)
		keys, err := f.st.SigningKeys(ctx, tenantB)
		if err != nil || len(keys) != 1 || fmt.Sprint(kids(t, doc)) != fmt.Sprint([]string{keys[0].KID}) {
			t.Fatalf("JWKS %s, stored %d keys, %v", doc, len(keys), err)
		}
	})
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	valid := f.issue(t, f.svc, tenantA)
	priv, kid := f.signingKey(t, tenantA)
	now := f.clk.Now()
	doc := mustJWKS(t, f.svc, tenantA)

	es256 := func(hdr map[string]any, body map[string]any) string {
		h := map[string]any{"kid": kid, "typ": "JWT"}
		for k, v := range hdr {
			h[k] = v
		}
		return sign(t, jwa.ES256(), priv, h, body)
	}
	with := func(name string, v any) map[string]any {
		c := claims(tenantA, now)
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
		return c
	}

	// Keys an attacker holds or can derive from what is public.
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	attackerJWK, err := jwk.Import(attacker.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	publicJWK, err := json.Marshal(jwks(t, doc)[0])
	if err != nil {
		t.Fatal(err)
	}
	otherTenant := f.issue(t, f.svc, tenantB)
	parts := strings.Split(valid, ".")
	jsonGeneral := sign(t, jwa.ES256(), priv, map[string]any{"kid": kid}, claims(tenantA, now), jws.WithJSON())
	jsonFlattened, _ := json.Marshal(map[string]string{"protected": parts[0], "payload": parts[1], "signature": parts[2]})

	tests := []struct {
		name  string
		token string
	}{
		{"the empty string", ""},
		{"a truncated token", valid[:len(valid)-10]},
		{"a token cut after its payload", parts[0] + "." + parts[1]},
		{"a token cut after its payload with the dot", parts[0] + "." + parts[1] + "."},
		{"a token with a fourth segment", valid + ".e30"},
		{"a token with a space inside", parts[0] + "." + parts[1] + ". " + parts[2]},
		{"a token with a leading space", " " + valid},
		{"a token with a trailing space", valid + " "},
		{"a token with a trailing newline", valid + "\n"},
		{"a token with a newline in its payload", parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:] + "." + parts[2]},
		{"a token with CRLF in its signature", parts[0] + "." + parts[1] + "." + parts[2][:20] + "\r\n" + parts[2][20:]},
		{"a token with a newline in its header", parts[0][:8] + "\n" + parts[0][8:] + "." + parts[1] + "." + parts[2]},
		{"a token with a tab", parts[0] + ".\t" + parts[1] + "." + parts[2]},
		{"a token with base64 padding", valid + "=="},
		{"a token in the standard base64 alphabet", func() string {
			for range 50 { // one with a character the alphabets spell differently
				if tok := f.issue(t, f.svc, tenantA); strings.ContainsAny(tok, "-_") {
					return strings.NewReplacer("-", "+", "_", "/").Replace(tok)
				}
			}
			t.Fatal("50 tokens without - or _")
			return ""
		}()},
		{"a token with stray bits in its last character", strayBits(valid)},
		{"a token of more than 4 KiB", es256(nil, with("pad", strings.Repeat("x", 4096)))},
		{"the JWS JSON serialization of a valid token", jsonGeneral},
		{"the flattened JWS JSON serialization of a valid token", string(jsonFlattened)},
		{"alg none, unsigned", assemble(t, map[string]any{"alg": "none", "kid": kid, "typ": "JWT"}, claims(tenantA, now), nil)},
		{"alg none, no kid", assemble(t, map[string]any{"alg": "none"}, claims(tenantA, now), nil)},
		{"alg None, capitalised", assemble(t, map[string]any{"alg": "None", "kid": kid}, claims(tenantA, now), []byte("x"))},
		{"HS256 keyed with the JWKS document", sign(t, jwa.HS256(), doc, map[string]any{"kid": kid}, claims(tenantA, now))},
		{"HS256 keyed with the public JWK", sign(t, jwa.HS256(), publicJWK, map[string]any{"kid": kid}, claims(tenantA, now))},
		{"HS256 keyed with the PEM public key", sign(t, jwa.HS256(), pemKey, map[string]any{"kid": kid}, claims(tenantA, now))},
		{"HS256 keyed with the DER public key", sign(t, jwa.HS256(), der, map[string]any{"kid": kid}, claims(tenantA, now))},
		{"RS256 by a foreign RSA key with the tenant's kid", sign(t, jwa.RS256(), rsaKey, map[string]any{"kid": kid}, claims(tenantA, now))},
		{"ES384 by a foreign key with the tenant's kid", func() string {
			k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return sign(t, jwa.ES384(), k, map[string]any{"kid": kid}, claims(tenantA, now))
		}()},
		{"ES256 by another key with the tenant's kid", sign(t, jwa.ES256(), attacker, map[string]any{"kid": kid}, claims(tenantA, now))},
		{"another tenant's token", otherTenant},
		{"another tenant's claims under the tenant's header and signature", parts[0] + "." + strings.Split(otherTenant, ".")[1] + "." + parts[2]},
		{"the valid payload under another signature", parts[0] + "." + parts[1] + "." + strings.Split(otherTenant, ".")[2]},
		{"a header with jku", es256(map[string]any{"jku": "https://evil.example/jwks.json"}, claims(tenantA, now))},
		{"a header with x5u", es256(map[string]any{"x5u": "https://evil.example/cert.pem"}, claims(tenantA, now))},
		{"a header with jwk", es256(map[string]any{"jwk": attackerJWK}, claims(tenantA, now))},
		{"a header with x5c", assembleES256(t, priv, map[string]any{"alg": "ES256", "kid": kid, "x5c": []string{base64.StdEncoding.EncodeToString(der)}}, claims(tenantA, now))},
		{"a header with crit", es256(map[string]any{"crit": []string{"exp"}}, claims(tenantA, now))},
		{"a header with enc", assembleES256(t, priv, map[string]any{"alg": "ES256", "kid": kid, "enc": "A256GCM"}, claims(tenantA, now))},
		{"a header without kid", sign(t, jwa.ES256(), priv, nil, claims(tenantA, now))},
		{"an unknown kid", es256(map[string]any{"kid": "20250101T000000Z-deadbeef"}, claims(tenantA, now))},
		{"a header that is not JSON", "bm90IGpzb24." + parts[1] + "." + parts[2]},
		{"a payload that is not JSON", sign(t, jwa.ES256(), priv, map[string]any{"kid": kid}, nil)},
		{"wrong iss", es256(nil, with("iss", issuerBase+"/api/"+tenantB))},
		{"iss with a trailing slash", es256(nil, with("iss", issuerBase+"/api/"+tenantA+"/"))},
		{"missing iss", es256(nil, with("iss", nil))},
		{"wrong aud", es256(nil, with("aud", []string{tenantB}))},
		{"wrong aud as a string", es256(nil, with("aud", tenantB))},
		{"missing aud", es256(nil, with("aud", nil))},
		{"missing sub", es256(nil, with("sub", nil))},
		{"empty sub", es256(nil, with("sub", ""))},
		{"missing exp", es256(nil, with("exp", nil))},
		{"expired 61s ago", es256(nil, with("exp", now.Add(-61*time.Second).Unix()))},
		{"expired a day ago", es256(nil, with("exp", now.Add(-24*time.Hour).Unix()))},
		{"iat 120s in the future", es256(nil, with("iat", now.Add(120*time.Second).Unix()))},
		{"missing iat", es256(nil, with("iat", nil))},
		{"nbf 61s in the future", es256(nil, with("nbf", now.Add(61*time.Second).Unix()))},
		{"nbf an hour in the future", es256(nil, with("nbf", now.Add(time.Hour).Unix()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused(t, f.svc, tenantA, tt.token)
		})
	}

	// The same signer and claims pass when the one thing under test is right,
	// so that each refusal above is due to that thing.
	ok := []struct {
		name  string
		token string
	}{
		{"the issued token", valid},
		{"a token signed like the refused ones", es256(nil, claims(tenantA, now))},
		{"aud as a string", es256(nil, with("aud", tenantA))},
		{"aud among others", es256(nil, with("aud", []string{tenantB, tenantA}))},
		{"expired 30s ago, within the skew", es256(nil, with("exp", now.Add(-30*time.Second).Unix()))},
		{"iat 30s in the future, within the skew", es256(nil, with("iat", now.Add(30*time.Second).Unix()))},
		{"nbf 30s in the future, within the skew", es256(nil, with("nbf", now.Add(30*time.Second).Unix()))},
		{"no nbf", es256(nil, with("nbf", nil))},
		{"no typ", sign(t, jwa.ES256(), priv, map[string]any{"kid": kid}, claims(tenantA, now))},
		{"a token signed by hand", assembleES256(t, priv, map[string]any{"alg": "ES256", "kid": kid}, claims(tenantA, now))},
	}
	for _, tt := range ok {
		t.Run("but accepts "+tt.name, func(t *testing.T) {
			accepted(t, f.svc, tenantA, tt.token)
		})
	}

	t.Run("tenant B still accepts its own token", func(t *testing.T) {
		accepted(t, f.svc, tenantB, otherTenant)
	})
	if keys, err := f.st.SigningKeys(ctx, tenantA); err != nil || len(keys) != 1 {
		t.Errorf("refusals changed the keys: %d keys, %v", len(keys), err)
	}
}

func TestATokenHasOneForm(t *testing.T) {
	f := newFixture(t)
	f.issue(t, f.svc, tenantA)
	priv, _ := f.signingKey(t, tenantA)
	low := func(tok string) bool {
		sig, _ := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
		return len(sig) == 64 && new(big.Int).SetBytes(sig[32:]).Cmp(new(big.Int).Rsh(p256.N, 1)) <= 0
	}

	t.Run("the signer produces only low-S signatures", func(t *testing.T) {
		// crypto/ecdsa picks s at random: 64 tokens all low-S by chance is 2^-64.
		for range 64 {
			if tok := f.issue(t, f.svc, tenantA); !low(tok) {
				t.Fatalf("issued a high-S token %s", tok)
			}
		}
	})

	t.Run("the same token with (r, n-s) is refused", func(t *testing.T) {
		tok := f.issue(t, f.svc, tenantA)
		high := otherForm(t, tok, true)
		if high == tok {
			t.Fatal("the mutation changed nothing")
		}
		// The mutated signature is valid ECDSA: only the low-S rule can refuse it.
		in := tok[:strings.LastIndexByte(tok, '.')]
		sig, _ := base64.RawURLEncoding.DecodeString(high[strings.LastIndexByte(high, '.')+1:])
		sum := sha256.Sum256([]byte(in))
		if !ecdsa.Verify(&priv.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("the high-S form does not verify as ECDSA")
		}
		refused(t, f.svc, tenantA, high)
		accepted(t, f.svc, tenantA, tok)
	})
}

func TestExpiryAllowsSixtySecondsOfSkew(t *testing.T) {
	tests := []struct {
		name     string
		after    time.Duration // past exp
		accepted bool
	}{
		{"just before exp", -time.Second, true},
		{"at exp", 0, true},
		{"expired 30s ago", 30 * time.Second, true},
		{"expired 60s ago", 60 * time.Second, true},
		{"expired 61s ago", 61 * time.Second, false},
		{"expired an hour ago", time.Hour, false},
	}
	f := newFixture(t)
	tok := f.issue(t, f.svc, tenantA)
	exp := start.Truncate(time.Second).Add(lifetime)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clk.Set(exp.Add(tt.after))
			if tt.accepted {
				accepted(t, f.svc, tenantA, tok)
			} else {
				refused(t, f.svc, tenantA, tok)
			}
		})
	}

	t.Run("a token issued by a replica whose clock is 120s ahead", func(t *testing.T) {
		ahead := newClock(start.Add(120 * time.Second))
		f.clk.Set(start)
		refused(t, f.svc, tenantA, f.issue(t, f.service(t, sealKey, ahead), tenantA))
		ahead.Set(start.Add(30 * time.Second))
		accepted(t, f.svc, tenantA, f.issue(t, f.service(t, sealKey, ahead), tenantA))
	})
}

func TestRotationKeepsTokensAlreadyIssuedValid(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	long := 48 * time.Hour // outlives the retention, so that only the key can refuse
	issue := func() string {
		tok, err := f.svc.Issue(ctx, tenantA, token.Claims{Subject: "cust-1"}, long)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		return tok
	}

	old := issue()
	oldKid := segment(t, old, 0)["kid"]
	f.clk.Advance(time.Minute)
	newKid, err := f.svc.Rotate(ctx, tenantA)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if newKid == oldKid || newKid == "" {
		t.Fatalf("Rotate returned kid %q; the old one is %q", newKid, oldKid)
	}
	fresh := issue()

	t.Run("the new token has the new kid", func(t *testing.T) {
		if got := segment(t, fresh, 0)["kid"]; got != newKid {
			t.Errorf("kid %v, want %v", got, newKid)
		}
	})
	t.Run("both tokens verify", func(t *testing.T) {
		accepted(t, f.svc, tenantA, old)
		accepted(t, f.svc, tenantA, fresh)
	})
	t.Run("the JWKS has both keys, newest first", func(t *testing.T) {
		if got, want := fmt.Sprint(kids(t, mustJWKS(t, f.svc, tenantA))), fmt.Sprint([]any{newKid, oldKid}); got != want {
			t.Errorf("JWKS kids %s, want %s", got, want)
		}
	})
	t.Run("within the retention both still verify", func(t *testing.T) {
		f.clk.Advance(retention - time.Minute)
		accepted(t, f.svc, tenantA, old)
		accepted(t, f.svc, tenantA, fresh)
		if n := len(kids(t, mustJWKS(t, f.svc, tenantA))); n != 2 {
			t.Errorf("JWKS has %d keys, want 2", n)
		}
	})
	t.Run("after the retention the old key is gone", func(t *testing.T) {
		f.clk.Advance(2 * time.Minute) // past the retention, and past the cache
		if got, want := fmt.Sprint(kids(t, mustJWKS(t, f.svc, tenantA))), fmt.Sprint([]any{newKid}); got != want {
			t.Errorf("JWKS kids %s, want %s", got, want)
		}
		refused(t, f.svc, tenantA, old)
		accepted(t, f.svc, tenantA, fresh)
	})
}

// After a leak, retiring the previous keys refuses the tokens they signed at
// once on this replica (its cache included), and on another replica at its
// next signing-key read; the new key's tokens verify, and the JWKS lists
// only the new key.
func TestRetiringThePreviousKeysRefusesTheirTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := f.service(t, sealKey, f.clk)
	old, err := f.svc.Issue(ctx, tenantA, token.Claims{Subject: "cust-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, f.svc, tenantA, old) // in this replica's cache now
	accepted(t, other, tenantA, old)
	otherTenant, err := f.svc.Issue(ctx, tenantB, token.Claims{Subject: "cust-2"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Second)
	kid, err := f.svc.Rotate(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.RetirePrevious(ctx, tenantA, kid); err != nil || n != 1 {
		t.Fatalf("RetirePrevious: %d, %v; want 1 key", n, err)
	}
	refused(t, f.svc, tenantA, old)
	fresh, err := f.svc.Issue(ctx, tenantA, token.Claims{Subject: "cust-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, f.svc, tenantA, fresh)
	if got, want := fmt.Sprint(kids(t, mustJWKS(t, f.svc, tenantA))), fmt.Sprint([]any{kid}); got != want {
		t.Errorf("JWKS kids %s, want %s", got, want)
	}
	accepted(t, f.svc, tenantB, otherTenant) // another tenant's keys are its own
	// The other replica until its next read of the keys, then never.
	f.clk.Advance(2 * time.Minute)
	refused(t, other, tenantA, old)
	accepted(t, other, tenantA, fresh)
}

func TestAnotherReplicasRotationIsPickedUp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.svc
	b := f.service(t, sealKey, f.clk)

	first := f.issue(t, a, tenantA)
	accepted(t, a, tenantA, first) // A has the key set cached
	accepted(t, b, tenantA, first)

	f.clk.Advance(10 * time.Second) // well within A's cache lifetime
	kid, err := b.Rotate(ctx, tenantA)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	second := f.issue(t, b, tenantA)
	if got := segment(t, second, 0)["kid"]; got != kid {
		t.Fatalf("B signed with %v, want its new key %s", got, kid)
	}

	t.Run("A verifies B's new token", func(t *testing.T) {
		accepted(t, a, tenantA, second)
	})
	t.Run("A still verifies the first token", func(t *testing.T) {
		accepted(t, a, tenantA, first)
	})
	t.Run("A now signs with the new key", func(t *testing.T) {
		if got := segment(t, f.issue(t, a, tenantA), 0)["kid"]; got != kid {
			t.Errorf("A signed with %v, want %s", got, kid)
		}
	})
	t.Run("A publishes both keys", func(t *testing.T) {
		if n := len(kids(t, mustJWKS(t, a, tenantA))); n != 2 {
			t.Errorf("A's JWKS has %d keys, want 2", n)
		}
	})
}

// The service's clock is the wall clock without Go's monotonic reading
// (store.Clock), so NTP can step it back: a replica that read its keys an
// hour ahead must not keep them for that hour. A rotation another replica
// makes, and its retirement of the previous keys, still reach it within
// the minute the README promises.
func TestAReplicaWhoseClockStepsBackStillReadsItsKeysEveryMinute(t *testing.T) {
	ctx := context.Background()
	replicas := []struct {
		name string
		open func(*fixture, *clock) *token.Service
	}{
		{"without the token cache", func(f *fixture, clk *clock) *token.Service { return f.service(t, sealKey, clk) }},
		{"with the token cache", func(f *fixture, clk *clock) *token.Service { return f.cached(t, retention, clk).svc }},
	}
	// aheadAnHour is replica A, whose clock reads an hour ahead, having
	// verified old (so holding the keys); another replica (f.svc) signed it.
	aheadAnHour := func(t *testing.T, open func(*fixture, *clock) *token.Service) (f *fixture, clk *clock, a *token.Service, old string) {
		f = newFixture(t)
		old, err := f.svc.Issue(ctx, tenantA, token.Claims{Subject: "cust-1"}, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		clk = newClock(start.Add(time.Hour))
		a = open(f, clk)
		accepted(t, a, tenantA, old)
		return f, clk, a, old
	}
	rotate := func(t *testing.T, f *fixture) string {
		f.clk.Advance(time.Second) // the new key is the newest
		kid, err := f.svc.Rotate(ctx, tenantA)
		if err != nil {
			t.Fatal(err)
		}
		return kid
	}
	for _, replica := range replicas {
		t.Run(replica.name, func(t *testing.T) {
			t.Run("a retired key's token is refused and no longer signs", func(t *testing.T) {
				f, clk, a, old := aheadAnHour(t, replica.open)
				clk.Set(start) // NTP steps A's clock back
				kid := rotate(t, f)
				if n, err := f.svc.RetirePrevious(ctx, tenantA, kid); err != nil || n != 1 {
					t.Fatalf("RetirePrevious: %d, %v; want 1 key", n, err)
				}
				clk.Advance(2 * time.Minute)
				if got := segment(t, f.issue(t, a, tenantA), 0)["kid"]; got != kid {
					t.Errorf("A signed with %v, want the new key %s", got, kid)
				}
				refused(t, a, tenantA, old)
			})
			t.Run("a token of another replica's new key is accepted", func(t *testing.T) {
				f, clk, a, old := aheadAnHour(t, replica.open)
				// A token of a key A does not know makes A read the keys
				// again, an hour ahead.
				stray, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				refused(t, a, tenantA, assembleES256(t, stray, map[string]any{"alg": "ES256", "kid": "stray", "typ": "JWT"}, claims(tenantA, start.Add(time.Hour))))
				clk.Set(start)
				accepted(t, a, tenantA, old) // A's first read of the keys after the step: the same keys
				kid := rotate(t, f)
				fresh := f.issue(t, f.svc, tenantA)
				if got := segment(t, fresh, 0)["kid"]; got != kid {
					t.Fatalf("the other replica signed with %v, want its new key %s", got, kid)
				}
				clk.Advance(10 * time.Second) // past the interval between reads for unknown kids
				accepted(t, a, tenantA, fresh)
			})
		})
	}
}

func TestADifferentSealKeyCannotOpenTheStoredPrivateKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.issue(t, f.svc, tenantA)
	other := f.service(t, []byte("fedcba9876543210fedcba9876543210"), f.clk)

	t.Run("Issue returns an error", func(t *testing.T) {
		got, err := other.Issue(ctx, tenantA, token.Claims{Subject: "cust-1"}, lifetime)
		if err == nil || got != "" {
			t.Fatalf("Issue = %q, %v; want an error", got, err)
		}
		if errors.Is(err, token.ErrInvalid) {
			t.Errorf("a wrong seal key is a server fault, not an invalid token: %v", err)
		}
	})
	t.Run("Verify does not accept", func(t *testing.T) {
		if c, err := other.Verify(ctx, tenantA, tok); err == nil {
			t.Fatalf("Verify = %+v with the wrong seal key", c)
		}
	})
	t.Run("no key is added to hide the failure", func(t *testing.T) {
		if keys, err := f.st.SigningKeys(ctx, tenantA); err != nil || len(keys) != 1 {
			t.Errorf("%d keys, %v; want 1", len(keys), err)
		}
	})
	t.Run("the right seal key still works", func(t *testing.T) {
		accepted(t, f.svc, tenantA, f.issue(t, f.service(t, sealKey, f.clk), tenantA))
	})
}

func TestTheSealKeyMustBe32Bytes(t *testing.T) {
	st := storetest.Open(t, storetest.SQLiteURL(t))
	for _, n := range []int{0, 16, 31, 33, 64} {
		t.Run(fmt.Sprint(n, " bytes"), func(t *testing.T) {
			if _, err := token.New(st, token.Options{Seal: make([]byte, n)}); err == nil {
				t.Errorf("New accepted a %d-byte seal key", n)
			}
		})
	}
}

func TestConcurrentUseIsSafe(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := f.service(t, sealKey, f.clk)
	tok := f.issue(t, f.svc, tenantA)
	priv, _ := f.signingKey(t, tenantA)
	stray := sign(t, jwa.ES256(), priv, map[string]any{"kid": "stray"}, claims(tenantA, f.clk.Now()))

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				switch (i + j) % 4 {
				case 0:
					if _, err := f.svc.Verify(ctx, tenantA, tok); err != nil {
						errs <- fmt.Errorf("verify: %w", err)
					}
				case 1:
					if _, err := f.svc.Verify(ctx, tenantA, stray); !errors.Is(err, token.ErrInvalid) {
						errs <- fmt.Errorf("stray kid: %v", err)
					}
				case 2:
					if _, err := f.svc.Issue(ctx, tenantA, token.Claims{Subject: "c"}, lifetime); err != nil {
						errs <- fmt.Errorf("issue: %w", err)
					}
				case 3:
					if i == 3 && j == 3 {
						if _, err := b.Rotate(ctx, tenantA); err != nil {
							errs <- fmt.Errorf("rotate: %w", err)
						}
					}
					f.clk.Advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	tok := f.issue(b, f.svc, tenantA)
	accepted(b, f.svc, tenantA, tok)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.svc.Verify(ctx, tenantA, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	f.issue(b, f.svc, tenantA)
	c := token.Claims{Subject: "cust-1", Provider: "otp", AMR: []string{"otp"}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.svc.Issue(ctx, tenantA, c, lifetime); err != nil {
			b.Fatal(err)
		}
	}
}

// sealedAway is the fixture's store with every private key unreadable while
// on is set: what a Service that unsealed a key again would fail on.
type sealedAway struct {
	token.Keys
	on bool
}

func (s *sealedAway) SigningKeys(ctx context.Context, tenant string) ([]store.SigningKey, error) {
	keys, err := s.Keys.SigningKeys(ctx, tenant)
	for i := range keys {
		if s.on {
			keys[i].PrivateKey = []byte("not a sealed key")
		}
	}
	return keys, err
}

// A tenant's keys are read again every keyTTL, but unsealed and parsed again
// only when they changed: with thousands of tenants in use, that was a
// tenth of a code verification's time.
func TestUnchangedKeysAreNotUnsealedAgain(t *testing.T) {
	f := newFixture(t)
	keys := &sealedAway{Keys: f.st}
	svc, err := token.New(keys, token.Options{IssuerBase: issuerBase, Retention: retention, Seal: sealKey, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	first := f.issue(t, svc, tenantA)
	keys.on = true
	f.clk.Advance(2 * time.Minute) // past the ring's lifetime: the keys are read again
	second := f.issue(t, svc, tenantA)
	if segment(t, second, 0)["kid"] != segment(t, first, 0)["kid"] {
		t.Fatal("the key changed")
	}
	accepted(t, svc, tenantA, first)

	// Another replica rotates: the new key is read, unsealed and used.
	keys.on = false
	kid, err := f.service(t, sealKey, f.clk).Rotate(context.Background(), tenantA)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(2 * time.Minute)
	if got := segment(t, f.issue(t, svc, tenantA), 0)["kid"]; got != kid {
		t.Fatalf("signed with %v after the rotation, want %s", got, kid)
	}
}

// countingKeys counts the reads of a tenant's signing keys.
type countingKeys struct {
	token.Keys
	reads atomic.Int32
}

func (c *countingKeys) SigningKeys(ctx context.Context, tenant string) ([]store.SigningKey, error) {
	c.reads.Add(1)
	return c.Keys.SigningKeys(ctx, tenant)
}

// A tenant that has signed nothing yet keeps its empty keyring as a loaded
// one is kept: bearer tokens presented to it, junk included, do not each
// read its signing keys; its first token then creates its key and verifies.
// Found by an audit: every refused token read the keys (a well-formed one
// three times).
func TestJunkTokensOfATenantWithoutKeysDoNotReachTheDatabase(t *testing.T) {
	f := newFixture(t)
	keys := &countingKeys{Keys: f.st}
	svc, err := token.New(keys, token.Options{IssuerBase: issuerBase, Retention: retention, Seal: sealKey, Now: f.clk.Now,
		Cache: token.CacheOptions{MaxEntries: 100}})
	if err != nil {
		t.Fatal(err)
	}
	// A well-formed ES256 token of another tenant's key, presented to tenantB, which has none.
	forged := f.issue(t, f.svc, tenantA)
	const n = 20
	for range n {
		if _, err := svc.Verify(context.Background(), tenantB, forged); err == nil {
			t.Fatal("accepted")
		}
		if _, err := svc.Verify(context.Background(), tenantB, "junk"); err == nil {
			t.Fatal("accepted")
		}
	}
	if got := keys.reads.Load(); got > 2 {
		t.Fatalf("%d refused tokens read the tenant's signing keys %d times", 2*n, got)
	}
	tok := f.issue(t, svc, tenantB)
	accepted(t, svc, tenantB, tok)
}

// CheckSeal says whether the seal key opens the signing keys stored: nothing
// stored yet passes; another secret's key does not.
func TestCheckSealOpensTheStoredKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.svc.CheckSeal(ctx); err != nil {
		t.Fatalf("no key stored yet: %v", err)
	}
	f.issue(t, f.svc, tenantA)
	if err := f.svc.CheckSeal(ctx); err != nil {
		t.Fatalf("the same secret: %v", err)
	}
	other := f.service(t, bytes.Repeat([]byte{7}, len(sealKey)), f.clk)
	if err := other.CheckSeal(ctx); !errors.Is(err, store.ErrWrongSecret) {
		t.Fatalf("another secret: %v, want store.ErrWrongSecret", err)
	}
}
