package oidc

import (
	"context"
	"fmt"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/providers/oidc/oidctest"
)

// BenchmarkGooglePreset compares a Google-preset sign-in's token check with
// a warm JWKS cache (header checks, cache lookup, signature, claims, the
// identity) against the floor: a bare jws.Verify with the key in hand. It
// prints the ratio of the two in the same run.
func BenchmarkGooglePreset(b *testing.B) {
	iss := oidctest.New(b)
	f := New(nil, nil, nil)
	p, err := f.open(TypeGoogle, "google", Config{ClientIDs: []string{"web-app"}, Issuer: iss.URL(), JWKSURL: iss.JWKSURL()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	tenant := &account.Tenant{ID: "shop"}
	ctx := context.Background()
	for _, alg := range []string{"RS256", "ES256"} {
		k := iss.Key(alg)
		tok := k.Sign(iss.Claims("web-app", "bench"))
		body := []byte(`{"idToken":"` + tok + `"}`)
		if _, err := p.Authenticate(ctx, tenant, body); err != nil { // warms the cache
			b.Fatal(err)
		}
		var floor, cached float64
		b.Run(alg+"/floor-jws.Verify", func(b *testing.B) {
			pub := k.Private.Public()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.SignatureAlgorithm(alg), pub)); err != nil {
					b.Fatal(err)
				}
			}
			floor = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		b.Run(alg+"/google-preset-cached-jwks", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Authenticate(ctx, tenant, body); err != nil {
					b.Fatal(err)
				}
			}
			cached = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		if floor > 0 && cached > 0 {
			fmt.Printf("%s: floor %.0f verifications/s, google preset %.0f verifications/s, ratio %.2f of the floor (%d JWKS fetches)\n",
				alg, 1e9/floor, 1e9/cached, floor/cached, iss.Fetches.Load())
		}
	}
}
