package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/customerd/customerd/providers/oidc/oidctest"
)

// The Google-preset scenario: POST authenticate?provider=google with RS256
// ID tokens of a local issuer (oidctest, an httptest server on 127.0.0.1 in
// the bench process) whose JWKS customerd fetches once and then serves from
// its cache.

// googleAudience is the client id of the bench tenant's google provider.
const googleAudience = "bench-web.apps.googleusercontent.com"

// googleFirstEvery: one request in this many is a first sign-in (a subject
// never seen, whose account is created), while the prepared ones last; the
// others are returning shoppers.
const googleFirstEvery = 10

// googleProviderYAML is the provider block of the demo tenant: the google
// preset pointed at the local issuer, which allowPrivateNetwork lets it reach.
func googleProviderYAML(iss *oidctest.Issuer) string {
	return fmt.Sprintf("    providers:\n      otp: {type: otp}\n      google: {type: google, clientIds: [%s], issuer: %q, jwksUrl: %q, allowPrivateNetwork: true}\n",
		googleAudience, iss.URL(), iss.JWKSURL())
}

// googlePool holds the pre-signed ID tokens and counts what was sent.
type googlePool struct {
	returning [][]byte // request bodies of subjects signed in once during preparation
	first     [][]byte // of subjects never seen: each used once, a first sign-in
	nextFirst atomic.Int64
	sent      atomic.Int64
	sentFirst atomic.Int64
}

// googleBody is the request body of one ID token.
func googleBody(tok string) []byte {
	b, _ := json.Marshal(map[string]string{"idToken": tok})
	return b
}

// signGoogleTokens signs n tokens with the issuer's RS256 key, for subjects
// kind followed by i on 18 digits (21 digits, as Google's), valid for life,
// on every CPU.
func signGoogleTokens(ctx context.Context, iss *oidctest.Issuer, kind string, n int, life time.Duration) ([]string, error) {
	key := iss.Key("RS256")
	if key == nil {
		return nil, fmt.Errorf("oidctest issuer has no RS256 key")
	}
	now := time.Now()
	out := make([]string, n)
	err := parallel(ctx, n, runtime.NumCPU(), func(_ context.Context, i int) error {
		c := iss.Claims(googleAudience, fmt.Sprintf("%s%018d", kind, i))
		c["iat"], c["exp"] = now.Unix(), now.Add(life).Unix()
		c["azp"] = googleAudience
		c["email"] = fmt.Sprintf("bench.google.%s.%d@example.com", kind, i)
		c["email_verified"] = true
		c["given_name"], c["family_name"] = "Gina", fmt.Sprintf("Google %s%d", kind, i)
		c["name"] = c["given_name"].(string) + " " + c["family_name"].(string)
		c["locale"] = "en"
		out[i] = key.Sign(c)
		return nil
	})
	return out, err
}

// prepareGoogle signs the pools and signs the returning shoppers in once
// through customerd (base), so that in the measured run they are known
// identities with their accounts.
func prepareGoogle(ctx context.Context, base string, iss *oidctest.Issuer, returning, first int, life time.Duration) (*googlePool, error) {
	ret, err := signGoogleTokens(ctx, iss, "101", returning, life)
	if err != nil {
		return nil, err
	}
	fst, err := signGoogleTokens(ctx, iss, "102", first, life)
	if err != nil {
		return nil, err
	}
	p := &googlePool{}
	for _, t := range ret {
		p.returning = append(p.returning, googleBody(t))
	}
	for _, t := range fst {
		p.first = append(p.first, googleBody(t))
	}
	hc := &http.Client{Transport: newTransport(32), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	url := base + "/api/" + tenantID + "/customer/authenticate?provider=google"
	err = parallel(ctx, len(ret), 32, func(ctx context.Context, i int) error {
		var tok string
		if err := call(ctx, hc, http.MethodPost, url, "", map[string]string{"idToken": ret[i]}, http.StatusOK, &tok); err != nil {
			return fmt.Errorf("first google sign-in of a returning shopper: %w", err)
		}
		return nil
	})
	return p, err
}

// googleSignIn sends one first sign-in in googleFirstEvery while they last,
// otherwise a random returning shopper's token.
func googleSignIn(base string, p *googlePool) makeRequest {
	url := base + "/api/" + tenantID + "/customer/authenticate?provider=google"
	return func(rng *rand.Rand) (*http.Request, bool) {
		if (p.sent.Add(1)-1)%googleFirstEvery == 0 {
			if i := int(p.nextFirst.Add(1)) - 1; i < len(p.first) {
				p.sentFirst.Add(1)
				return jsonPost(url, "", p.first[i]), true
			}
		}
		return jsonPost(url, "", p.returning[rng.IntN(len(p.returning))]), true
	}
}
