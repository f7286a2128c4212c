package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store/storetest"
)

// BenchmarkCodeVerification is the code-verification half of a first
// sign-in (the account is created), through the whole handler stack
// without the network: middleware, validation, store, token.
func BenchmarkCodeVerification(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			env := apptest.Start(b, be.URL(b), "")
			h := env.Server.Config.Handler
			serve := func(body string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/api/demo/customer/authenticate?provider=otp", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			ids := make([]string, b.N)
			for i := range ids {
				rec := serve(fmt.Sprintf(`{"email":"bench%d@example.com"}`, i))
				var ch struct{ ChallengeID string }
				if err := json.Unmarshal(rec.Body.Bytes(), &ch); err != nil || rec.Code != http.StatusAccepted {
					b.Fatalf("ask for a code: %d %s", rec.Code, rec.Body)
				}
				ids[i] = ch.ChallengeID
			}
			codes := map[string]string{}
			for _, m := range env.Logs.Lines() {
				if m["msg"] == "otp sent" {
					codes[m["to"].(string)], _ = m["code"].(string)
				}
			}
			bodies := make([]string, b.N)
			for i, id := range ids {
				bodies[i] = fmt.Sprintf(`{"challengeId":%q,"code":%q}`, id, codes[fmt.Sprintf("bench%d@example.com", i)])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if rec := serve(bodies[i]); rec.Code != http.StatusOK {
					b.Fatalf("verify: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkReturningGoogleSignIn is a returning shopper's Google sign-in
// through the whole handler stack without the network: middleware,
// validation, the ID token's check against a cached JWKS, the identity and
// its account read, our token signed.
func BenchmarkReturningGoogleSignIn(b *testing.B) {
	iss := oidctest.New(b)
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			env := apptest.Start(b, be.URL(b), fmt.Sprintf(`
tenants:
  shop:
    providers:
      google: {type: google, clientIds: [web-app], issuer: %q, jwksUrl: %q, allowPrivateNetwork: true}
`, iss.URL(), iss.JWKSURL()))
			h := env.Server.Config.Handler
			claims := iss.Claims("web-app", "returning")
			claims["email"], claims["email_verified"] = "returning@example.com", true
			body := `{"idToken":"` + iss.Key("RS256").Sign(claims) + `"}`
			serve := func() *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/api/shop/customer/authenticate?provider=google", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			if rec := serve(); rec.Code != http.StatusOK { // the first sign-in links the identity
				b.Fatalf("first sign-in: %d %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				if rec := serve(); rec.Code != http.StatusOK {
					b.Fatalf("sign-in: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
