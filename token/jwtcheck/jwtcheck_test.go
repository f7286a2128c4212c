package jwtcheck_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/customerd/customerd/token/jwtcheck"
)

func b64(v any) string {
	raw, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestPrecheckNamesWhatItRefuses(t *testing.T) {
	payload := b64(map[string]any{"sub": "s"})
	with := func(h map[string]any) string { return b64(h) + "." + payload + ".c2lnbg" }
	ok := with(map[string]any{"alg": "ES256", "kid": "k", "typ": "JWT"})
	for _, c := range []struct {
		name, token string
		want        error
	}{
		{"a token longer than the limit", ok + strings.Repeat("A", 4096), jwtcheck.ErrTooLong},
		{"the JSON serialization", `{"payload":"e30","signatures":[]}`, jwtcheck.ErrJSON},
		{"a JWE", "a.b.c.d.e", jwtcheck.ErrEncrypted},
		{"two segments", "a.b", jwtcheck.ErrForm},
		{"padding", ok + "==", jwtcheck.ErrEncoding},
		{"a line break", ok[:10] + "\n" + ok[10:], jwtcheck.ErrEncoding},
		{"the standard alphabet", strings.Replace(ok, "c2lnbg", "c2+/bg", 1), jwtcheck.ErrEncoding},
		{"stray bits", strings.Replace(ok, "c2lnbg", "c2lnbh", 1), jwtcheck.ErrEncoding},
		{"a header that is not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + payload + ".c2lnbg", jwtcheck.ErrHeader},
		{"enc in the header", with(map[string]any{"alg": "ES256", "enc": "A256GCM"}), jwtcheck.ErrEncrypted},
		{"jku", with(map[string]any{"alg": "ES256", "jku": "https://evil.example/jwks"}), jwtcheck.ErrOwnKey},
		{"x5u", with(map[string]any{"alg": "ES256", "x5u": "https://evil.example/cert"}), jwtcheck.ErrOwnKey},
		{"x5c", with(map[string]any{"alg": "ES256", "x5c": []string{"MIIB"}}), jwtcheck.ErrOwnKey},
		{"jwk", with(map[string]any{"alg": "ES256", "jwk": map[string]any{"kty": "EC"}}), jwtcheck.ErrOwnKey},
		{"crit", with(map[string]any{"alg": "ES256", "crit": []string{"exp"}}), jwtcheck.ErrCrit},
		{"alg none", with(map[string]any{"alg": "none"}), jwtcheck.ErrUnsigned},
		{"alg None", with(map[string]any{"alg": "None"}), jwtcheck.ErrUnsigned},
		{"no alg", with(map[string]any{"kid": "k"}), jwtcheck.ErrUnsigned},
	} {
		t.Run(c.name+" is refused", func(t *testing.T) {
			if _, err := jwtcheck.Precheck(c.token, 4096); !errors.Is(err, c.want) {
				t.Fatalf("Precheck = %v, want %v", err, c.want)
			}
		})
	}
	h, err := jwtcheck.Precheck(ok, 4096)
	if err != nil || h != (jwtcheck.Header{Alg: "ES256", Kid: "k", Typ: "JWT"}) {
		t.Fatalf("Precheck(ok) = %+v, %v", h, err)
	}
}

func TestParse(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	signRaw := func(payload []byte) string {
		signed, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), priv))
		if err != nil {
			t.Fatal(err)
		}
		return string(signed)
	}
	sign := func(claims map[string]any) string {
		raw, _ := json.Marshal(claims)
		return signRaw(raw)
	}
	valid, _ := json.Marshal(map[string]any{"sub": "s", "iat": now.Unix(), "exp": now.Unix() + 60})
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"sub": "s", "iat": now.Unix(), "exp": now.Unix() + 60}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	parse := func(tok string, checks ...jwt.ValidateOption) error {
		h, err := jwtcheck.Precheck(tok, 4096)
		if err != nil {
			return err
		}
		_, err = jwtcheck.Parse(tok, h, jwa.ES256(), &priv.PublicKey, func() time.Time { return now }, checks...)
		return err
	}
	for _, c := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid claims are accepted", sign(claims()), true},
		{"exp 60 s ago is within the skew", sign(claims("exp", now.Unix()-60)), true},
		{"exp 61 s ago is refused", sign(claims("exp", now.Unix()-61)), false},
		{"iat 60 s ahead is within the skew", sign(claims("iat", now.Unix()+60)), true},
		{"iat 61 s ahead is refused", sign(claims("iat", now.Unix()+61)), false},
		{"nbf 61 s ahead is refused", sign(claims("nbf", now.Unix()+61)), false},
		{"no exp is refused", sign(claims("exp", nil)), false},
		{"no iat is refused", sign(claims("iat", nil)), false},
		{"no sub is refused", sign(claims("sub", nil)), false},
		{"an empty sub is refused", sign(claims("sub", "")), false},
		{"exp as a string of its seconds is read as them", sign(claims("exp", fmt.Sprint(now.Unix()+60))), true},
		{"exp that is no date is refused", sign(claims("exp", "soon")), false},
		{"exp null is refused", signRaw([]byte(`{"sub":"s","iat":1800000000,"exp":null}`)), false},
		{"aud that is neither a string nor strings is refused", sign(claims("aud", 7)), false},
		// What the signature covers is one JSON object of claims, and only that.
		{"data after the claims is refused", signRaw(append(append([]byte{}, valid...), []byte(` {"sub":"t"}`)...)), false},
		{"claims that are not an object are refused", signRaw([]byte(`["s"]`)), false},
		{"claims that are null are refused", signRaw([]byte(`null`)), false},
		{"a signed token inside the token is refused", signRaw([]byte(sign(claims()))), false},
		{"the last of a repeated claim is the one read", signRaw([]byte(`{"sub":"s","iat":1800000000,"exp":1700000000,"exp":1800000060}`)), true},
		// encoding/json reads both as U+FFFD: two subjects, or emails, would be one.
		{"a sub that is not UTF-8 is refused", signRaw([]byte("{\"sub\":\"m\xfcller\",\"iat\":1800000000,\"exp\":1800000060}")), false},
		{"a sub escaping half a surrogate pair is refused", signRaw([]byte(`{"sub":"m\ud800ller","iat":1800000000,"exp":1800000060}`)), false},
		{"an email escaping half a surrogate pair is refused", signRaw([]byte(`{"sub":"s","email":"m\udc00ller@example.com","iat":1800000000,"exp":1800000060}`)), false},
		{"a sub escaping a whole surrogate pair is read", signRaw([]byte(`{"sub":"m\ud83d\ude00ller","iat":1800000000,"exp":1800000060}`)), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := parse(c.token); (err == nil) != c.ok {
				t.Fatalf("Parse = %v, want ok=%v", err, c.ok)
			}
		})
	}
	t.Run("the header must name the key's algorithm", func(t *testing.T) {
		tok := sign(claims())
		h, _ := jwtcheck.Precheck(tok, 4096)
		if _, err := jwtcheck.Parse(tok, h, jwa.ES384(), &priv.PublicKey, time.Now); !errors.Is(err, jwtcheck.ErrAlgorithm) {
			t.Fatalf("Parse = %v", err)
		}
	})
	t.Run("OneOf accepts a listed value only", func(t *testing.T) {
		iss := jwtcheck.OneOf(jwt.IssuerKey, []string{"https://a.example", "a.example"})
		if err := parse(sign(claims("iss", "a.example")), iss); err != nil {
			t.Fatalf("listed issuer: %v", err)
		}
		for _, bad := range []any{"https://b.example", "", nil} {
			if err := parse(sign(claims("iss", bad)), iss); err == nil {
				t.Fatalf("issuer %v accepted", bad)
			}
		}
	})
}

func TestLowS(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for range 32 {
		signed, err := jws.Sign([]byte(`{"sub":"s"}`), jws.WithKey(jwa.ES256(), priv))
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.LastIndexByte(signed, '.')
		sig, err := base64.RawURLEncoding.DecodeString(string(signed[i+1:]))
		if err != nil {
			t.Fatal(err)
		}
		changed := jwtcheck.LowSSignature(sig)
		low := string(signed[:i+1]) + base64.RawURLEncoding.EncodeToString(sig)
		if changed == (low == string(signed)) {
			t.Fatalf("LowSSignature says changed=%v", changed)
		}
		if err := jwtcheck.CheckLowS(low); err != nil {
			t.Fatalf("LowS left a high-S signature: %v", err)
		}
		if _, err := jws.Verify([]byte(low), jws.WithKey(jwa.ES256(), &priv.PublicKey)); err != nil {
			t.Fatalf("the low-S form does not verify: %v", err)
		}
		if low != string(signed) && !errors.Is(jwtcheck.CheckLowS(string(signed)), jwtcheck.ErrHighS) {
			t.Fatal("a high-S signature passed CheckLowS")
		}
	}
}

// BenchmarkParse compares Parse with jwx's jwt.Parse given the same key and
// checks (the way Parse read tokens before), on an RS256 token with a
// Google ID token's claims, in rounds that alternate the two.
func BenchmarkParse(b *testing.B) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	claims, _ := json.Marshal(map[string]any{"iss": "https://accounts.google.com", "azp": "web-app", "aud": "web-app",
		"sub": "110169484474386276334", "email": "shopper@example.com", "email_verified": true, "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
		"name": "A Shopper", "picture": "https://lh3.googleusercontent.com/a/x", "given_name": "A", "family_name": "Shopper",
		"locale": "en", "iat": now.Unix(), "exp": now.Unix() + 3600, "nonce": "n-0S6_WzA2Mj"})
	signed, err := jws.Sign(claims, jws.WithKey(jwa.RS256(), priv))
	if err != nil {
		b.Fatal(err)
	}
	raw, clock := string(signed), func() time.Time { return now }
	iss := jwtcheck.OneOf(jwt.IssuerKey, []string{"https://accounts.google.com"})
	h, err := jwtcheck.Precheck(raw, 8192)
	if err != nil {
		b.Fatal(err)
	}
	var perOp [2]float64
	for round := range 3 {
		b.Run(fmt.Sprintf("jwx-jwt.Parse/round-%d", round), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jwt.Parse(signed, jwt.WithKey(jwa.RS256(), &priv.PublicKey), jwt.WithClock(jwt.ClockFunc(clock)),
					jwt.WithValidate(true), jwt.WithAcceptableSkew(jwtcheck.Skew), iss); err != nil {
					b.Fatal(err)
				}
			}
			perOp[0] += float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		b.Run(fmt.Sprintf("jwtcheck.Parse/round-%d", round), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jwtcheck.Parse(raw, h, jwa.RS256(), &priv.PublicKey, clock, iss); err != nil {
					b.Fatal(err)
				}
			}
			perOp[1] += float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	if perOp[0] > 0 && perOp[1] > 0 {
		fmt.Printf("jwtcheck.Parse takes %.2f of jwt.Parse's time (3 rounds)\n", perOp[1]/perOp[0])
	}
}
