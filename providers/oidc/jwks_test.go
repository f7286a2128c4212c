package oidc

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	"github.com/customerd/customerd/providers/oidc/oidctest"
)

func TestParseJWKS(t *testing.T) {
	rsaKey, ecKey, edKey := oidctest.NewKey(t, "RS256", "r"), oidctest.NewKey(t, "ES256", "e"), oidctest.NewKey(t, "EdDSA", "d")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakKey := (&oidctest.Key{Kid: "weak", Alg: "RS256", Private: weak}).JWK()
	with := oidctest.With
	for _, c := range []struct {
		name string
		key  map[string]any
		alg  string // "" when the key must be dropped
	}{
		{"an RSA key declaring RS256 is for RS256", rsaKey.JWK(), "RS256"},
		{"an RSA key declaring PS256 is for PS256", with(rsaKey.JWK(), "alg", "PS256"), "PS256"},
		{"an RSA key declaring nothing is for RS256", with(rsaKey.JWK(), "alg", nil), "RS256"},
		{"a P-256 key is for ES256", with(ecKey.JWK(), "alg", nil), "ES256"},
		{"an Ed25519 key is for EdDSA", edKey.JWK(), "EdDSA"},
		{"an EC key declaring RS256 is dropped", with(ecKey.JWK(), "alg", "RS256"), ""},
		{"an RSA key declaring HS256 is dropped", with(rsaKey.JWK(), "alg", "HS256"), ""},
		{"an RSA key shorter than 2048 bits is dropped", weakKey, ""},
		{"an encryption key is dropped", with(rsaKey.JWK(), "use", "enc"), ""},
		{"a symmetric key is dropped", map[string]any{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}, ""},
		{"an unknown key type is dropped", map[string]any{"kty": "XYZ", "kid": "x"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, _ := json.Marshal(map[string]any{"keys": []any{c.key}})
			keys, err := parseJWKS(raw, maxKeysPerSet)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.alg == "" && len(keys) != 0:
				t.Fatalf("kept as %s", keys[0].alg)
			case c.alg != "" && (len(keys) != 1 || keys[0].alg.String() != c.alg):
				t.Fatalf("keys %v, want one for %s", keys, c.alg)
			}
		})
	}
}
