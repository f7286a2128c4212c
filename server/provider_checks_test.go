package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store/storetest"
)

// craftedJWKS serves whatever keys the test sets, counting fetches.
type craftedJWKS struct {
	mu      sync.Mutex
	keys    []map[string]any
	fetches atomic.Int32
	srv     *httptest.Server
}

func newCraftedJWKS(t *testing.T) *craftedJWKS {
	c := &craftedJWKS{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fetches.Add(1)
		c.mu.Lock()
		defer c.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": c.keys})
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *craftedJWKS) set(keys ...map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = keys
}

// TestProviderVerification: an
// attacker holding real credentials for another app, user or key.
func TestProviderVerification(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss := oidctest.New(t)
		jwks := newCraftedJWKS(t)
		// Another host, where a redirect would send the key fetch.
		elsewhere := newCraftedJWKS(t)
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.srv.URL+"/jwks", http.StatusFound)
		}))
		t.Cleanup(redirector.Close)
		// An issuer whose discovery redirects elsewhere.
		discRedirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, iss.URL()+"/.well-known/openid-configuration", http.StatusFound)
		}))
		t.Cleanup(discRedirect.Close)
		rsa := oidctest.NewKey(t, "RS256", "r1")
		ec := oidctest.NewKey(t, "ES256", "e1")
		attacker := oidctest.NewKey(t, "RS256", "evil")
		elsewhere.set(attacker.JWK())
		badRSA := oidctest.NewKey(t, "RS256", "r-bad")
		encEC := oidctest.NewKey(t, "ES256", "e-enc")
		jwks.set(rsa.JWK(),
			oidctest.With(badRSA.JWK(), "alg", "ES256"),
			oidctest.With(encEC.JWK(), "use", "enc"),
			map[string]any{"kty": "oct", "kid": "sym", "alg": "HS256", "k": b64([]byte("shared-secret-0123456789"))})

		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      crafted: {type: oidc, clientIds: [app], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
      redirected: {type: oidc, clientIds: [app], issuer: %[1]q, jwksUrl: %[3]q, allowPrivateNetwork: true}
      discredir: {type: oidc, clientIds: [app], issuer: %[4]q, allowPrivateNetwork: true}
      apple: {type: apple, clientIds: [com.shop.ios, com.shop.web], issuer: %[1]q, jwksUrl: %[5]q, allowPrivateNetwork: true}
      line: {type: line, clientIds: ["1655"], issuer: %[1]q, jwksUrl: %[5]q, channelSecret: line-channel-secret, allowPrivateNetwork: true}
`, iss.URL(), jwks.srv.URL+"/jwks", redirector.URL+"/jwks", discRedirect.URL, iss.JWKSURL()))

		now := time.Now().Unix()
		claims := func(aud, sub string, kv ...any) map[string]any {
			return oidctest.With(iss.Claims(aud, sub), kv...)
		}
		hdr := func(kv ...any) map[string]any { return oidctest.With(map[string]any{}, kv...) }
		sign := func(provider string, tok string) rawReply {
			return authenticate(t, env, "shop", provider, map[string]any{"idToken": tok})
		}

		t.Run("jwks keys whose alg or use disagree are never used", func(t *testing.T) {
			mustToken(t, sign("crafted", rsa.Sign(claims("app", "fine"))))
			_ = ec
			mustProblem(t, sign("crafted", badRSA.Sign(claims("app", "alg-disagree"))), http.StatusUnprocessableEntity)
			mustProblem(t, sign("crafted", badRSA.SignHeader(hdr("alg", "ES256", "kid", "r-bad"), claims("app", "alg-disagree"))), http.StatusUnprocessableEntity)
			mustProblem(t, sign("crafted", encEC.Sign(claims("app", "use-enc"))), http.StatusUnprocessableEntity)
			mustProblem(t, sign("crafted", oidctest.HS256([]byte("shared-secret-0123456789"), hdr("alg", "HS256", "kid", "sym"), claims("app", "oct"))), http.StatusUnprocessableEntity)
		})

		t.Run("header and time claims", func(t *testing.T) {
			for name, tok := range map[string]string{
				"nbf 120 s ahead":           rsa.Sign(claims("app", "n", "nbf", now+120)),
				"crit empty":                rsa.SignHeader(hdr("alg", "RS256", "kid", "r1", "crit", []string{}), claims("app", "n")),
				"jku null":                  rsa.SignHeader(hdr("alg", "RS256", "kid", "r1", "jku", json.RawMessage("null")), claims("app", "n")),
				"x5c":                       rsa.SignHeader(hdr("alg", "RS256", "kid", "r1", "x5c", []string{"AAAA"}), claims("app", "n")),
				"iss with a trailing slash": rsa.Sign(claims("app", "n", "iss", iss.URL()+"/")),
				"exp missing":               rsa.Sign(claims("app", "n", "exp", nil)),
				"exp as a string":           rsa.Sign(claims("app", "n", "exp", "never")),
				"iat far ahead, exp ahead":  rsa.Sign(claims("app", "n", "iat", now+3600, "exp", now+7200)),
				"alg None":                  strings.Replace(rsa.SignHeader(hdr("alg", "None", "kid", "r1"), claims("app", "n")), "", "", 1),
				"alg RS256 key, PS256 hdr":  rsa.SignHeader(hdr("alg", "PS256", "kid", "r1"), claims("app", "n")),
				"sub empty":                 rsa.Sign(claims("app", "")),
				"aud empty list":            rsa.Sign(claims("app", "n", "aud", []string{})),
			} {
				t.Run(name, func(t *testing.T) {
					mustProblem(t, sign("crafted", tok), http.StatusUnprocessableEntity)
				})
			}
			// JWKS with a jku-style header: jwks is keyed by kid; the header
			// jku pointing at elsewhere's key must not be followed.
			before := elsewhere.fetches.Load()
			mustProblem(t, sign("crafted", attacker.SignHeader(hdr("alg", "RS256", "kid", "evil", "jku", elsewhere.srv.URL+"/jwks"), claims("app", "n"))), http.StatusUnprocessableEntity)
			mustProblem(t, sign("crafted", attacker.SignHeader(hdr("alg", "RS256", "kid", "evil", "x5u", elsewhere.srv.URL+"/x"), claims("app", "n"))), http.StatusUnprocessableEntity)
			if elsewhere.fetches.Load() != before {
				t.Fatalf("a header's URL was fetched")
			}
		})

		t.Run("a jwks url redirecting to another host is not followed", func(t *testing.T) {
			before := elsewhere.fetches.Load()
			r := sign("redirected", attacker.Sign(claims("app", "redir")))
			if r.StatusCode == http.StatusOK || elsewhere.fetches.Load() != before {
				t.Fatalf("redirect followed: %d, fetches %d→%d", r.StatusCode, before, elsewhere.fetches.Load())
			}
		})

		t.Run("a discovery redirect is not followed", func(t *testing.T) {
			tok := iss.Key("RS256").SignHeader(hdr("alg", "RS256", "kid", "rsa-1"), oidctest.With(claims("app", "disc"), "iss", discRedirect.URL))
			mustProblem(t, sign("discredir", tok), http.StatusServiceUnavailable)
		})

		t.Run("apple: a bundle id's and a Services ID's tokens, never another app's", func(t *testing.T) {
			k := iss.Key("RS256")
			mustToken(t, sign("apple", k.Sign(claims("com.shop.ios", "a-ios"))))
			mustToken(t, sign("apple", k.Sign(claims("com.shop.web", "a-web"))))
			mustProblem(t, sign("apple", k.Sign(claims("com.other.app", "a-other"))), http.StatusUnprocessableEntity)
		})

		t.Run("apple: the user JSON never carries an email, and is_private_email does not verify", func(t *testing.T) {
			victim := customerOf(t, env, "shop", env.SignIn(t, "shop", "apple-victim@example.com"))
			k := iss.Key("RS256")
			for i, body := range []map[string]any{
				{"idToken": k.Sign(claims("com.shop.ios", "a-att-1")), "user": map[string]any{"email": "apple-victim@example.com", "name": map[string]any{"firstName": "X"}}},
				{"idToken": k.Sign(claims("com.shop.ios", "a-att-2", "email", "apple-victim@example.com", "is_private_email", "true"))},
				{"idToken": k.Sign(claims("com.shop.ios", "a-att-3", "email", "apple-victim@example.com", "email_verified", "TRUE "))},
				{"idToken": k.Sign(claims("com.shop.ios", "a-att-4", "email", "apple-victim@example.com", "email_verified", []any{true}))},
			} {
				me := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "apple", body)))
				if me["id"] == victim["id"] {
					t.Fatalf("case %d signed into the victim's account", i)
				}
			}
		})

		t.Run("line: another channel's tokens, HS384 with the channel secret", func(t *testing.T) {
			mustProblem(t, sign("line", iss.Key("ES256").Sign(claims("1656", "l-other"))), http.StatusUnprocessableEntity)
			mustProblem(t, sign("line", oidctest.HS256([]byte("line-channel-secret"), hdr("alg", "HS256"), claims("1656", "l-other"))), http.StatusUnprocessableEntity)
			mustProblem(t, sign("line", oidctest.HS256([]byte("line-channel-secret"), hdr("alg", "HS256"), claims("1655", "l-x", "iss", "https://evil.example"))), http.StatusUnprocessableEntity)
		})
	})
}

// TestFacebook: access tokens of another app, another user, an app token.
func TestFacebook(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		var (
			mu   sync.Mutex
			seen []*http.Request
		)
		debug := map[string]map[string]any{
			"app-token":     {"app_id": "1234", "is_valid": true, "type": "APP"},
			"other-app":     {"app_id": "999", "is_valid": true, "user_id": "fb-43", "type": "USER"},
			"other-user":    {"app_id": "1234", "is_valid": true, "user_id": "fb-44", "type": "USER"},
			"numeric-app":   {"app_id": 1234, "is_valid": true, "user_id": "fb-45"},
			"valid-as-text": {"app_id": "1234", "is_valid": "true", "user_id": "fb-46"},
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug_token", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
			data, ok := debug[r.URL.Query().Get("input_token")]
			if !ok {
				data = map[string]any{"is_valid": false}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
		})
		mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
			// Facebook answers /me for whoever the token is for.
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "fb-42", "email": "fb@example.com"})
		})
		graph := httptest.NewServer(mux)
		t.Cleanup(graph.Close)
		iss := oidctest.New(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      facebook: {type: facebook, clientIds: ["1234"], issuer: %q, jwksUrl: %q, appSecret: fb-secret, graphURL: %q, allowPrivateNetwork: true}
`, iss.URL(), iss.JWKSURL(), graph.URL))
		for _, tok := range []string{"app-token", "other-app", "other-user", "numeric-app", "valid-as-text"} {
			t.Run(tok, func(t *testing.T) {
				r := authenticate(t, env, "shop", "facebook", map[string]any{"accessToken": tok})
				if r.StatusCode == http.StatusOK {
					t.Fatalf("%s signed in", tok)
				}
			})
		}
		t.Run("the app secret goes to debug_token only, never to /me", func(t *testing.T) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range seen {
				if r.URL.Path == "/me" && strings.Contains(r.URL.RawQuery, "fb-secret") {
					t.Fatalf("/me got the app secret: %s", r.URL.RawQuery)
				}
				if r.Header.Get("Referer") != "" || r.Header.Get("Authorization") != "" {
					t.Fatalf("sent %v", r.Header)
				}
			}
		})
		t.Run("limited login: another app's ID token", func(t *testing.T) {
			mustProblem(t, authenticate(t, env, "shop", "facebook", map[string]any{"idToken": iss.Key("RS256").Sign(iss.Claims("999", "fb-x"))}), http.StatusUnprocessableEntity)
		})
	})
}

// TestWebhook: what the brand's endpoint gets and what its answers do.
func TestWebhook(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		var (
			mu      sync.Mutex
			headers http.Header
		)
		brand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			headers = r.Header.Clone()
			mu.Unlock()
			var in struct{ Mode string }
			_ = json.Unmarshal(body, &in)
			switch in.Mode {
			case "trickle":
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				for range 40 {
					if _, err := io.WriteString(w, " "); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
				_, _ = io.WriteString(w, `{"subject":"trickled"}`)
			case "huge":
				_, _ = io.WriteString(w, `{"subject":"huge","claims":{"given_name":"`+strings.Repeat("a", 10<<20)+`"}}`)
			case "redirect":
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			case "twice":
				_, _ = io.WriteString(w, `{"subject":"first"}{"subject":"second"}`)
			default:
				_, _ = io.WriteString(w, `{"subject":"ok-`+in.Mode+`"}`)
			}
		}))
		t.Cleanup(brand.Close)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      brand: {type: webhook, url: %q, secret: %q, timeout: 1s, allowPrivateNetwork: true}
`, brand.URL, brandSecret))
		post := func(mode string, header ...string) rawReply {
			raw, _ := json.Marshal(map[string]any{"mode": mode})
			return rawCall(t, env, http.MethodPost, "/api/shop/customer/authenticate?provider=brand", strings.NewReader(string(raw)), header...)
		}
		t.Run("a trickled answer past the timeout is unavailable", func(t *testing.T) {
			start := time.Now()
			mustProblem(t, post("trickle"), http.StatusServiceUnavailable)
			if d := time.Since(start); d > 1800*time.Millisecond {
				t.Fatalf("took %s", d)
			}
		})
		t.Run("a huge answer is unavailable", func(t *testing.T) {
			mustProblem(t, post("huge"), http.StatusServiceUnavailable)
		})
		t.Run("a redirect is unavailable", func(t *testing.T) {
			mustProblem(t, post("redirect"), http.StatusServiceUnavailable)
		})
		t.Run("the shopper's headers are not forwarded", func(t *testing.T) {
			tok := env.SignIn(t, "shop", "wh-shopper@example.com")
			mustToken(t, post("plain", "Authorization", "Bearer "+tok, "Cookie", "session=abc", "X-Customerd-Signature", "t=1,v1=00", "X-Customerd-Tenant", "other", "X-Forwarded-For", "1.2.3.4"))
			mu.Lock()
			defer mu.Unlock()
			if headers.Get("Authorization") != "" || headers.Get("Cookie") != "" || headers.Get("X-Customerd-Tenant") != "shop" ||
				strings.HasPrefix(headers.Get("X-Customerd-Signature"), "t=1,") || headers.Get("X-Forwarded-For") != "" {
				t.Fatalf("the endpoint got %v", headers)
			}
		})
		t.Run("an answer with a second JSON value after its object is not JSON: unavailable", func(t *testing.T) {
			// The contract: "not JSON" → 503. {"subject":"first"}{"subject":"second"}
			// is no JSON document; customerd signed in "first".
			mustProblem(t, post("twice"), http.StatusServiceUnavailable)
		})
	})
}

// TestTheBrandsEndpointKnowsTheClient: every guess reaches the
// brand's endpoint, which cannot tell one client from another (all come from
// customerd, with no client address), and customerd throttles none.
func TestTheBrandsEndpointKnowsTheClient(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		var (
			mu       sync.Mutex
			reached  int
			clientIP bool
		)
		brand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			reached++
			for name, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(v, "203.0.113.7") {
						clientIP = true
					}
					_ = name
				}
			}
			mu.Unlock()
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
		}))
		t.Cleanup(brand.Close)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
trustedProxies: [127.0.0.1/32]
tenants:
  shop:
    providers:
      otp: {type: otp}
      brand: {type: webhook, url: %q, secret: %q, allowPrivateNetwork: true}
`, brand.URL, brandSecret))
		throttled := 0
		for i := range 200 {
			body := fmt.Sprintf(`{"login":"ada","password":"guess-%d"}`, i)
			r := rawCall(t, env, http.MethodPost, "/api/shop/customer/authenticate?provider=brand", strings.NewReader(body), "X-Forwarded-For", "203.0.113.7")
			if r.StatusCode == http.StatusTooManyRequests {
				throttled++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if throttled == 0 && !clientIP {
			t.Fatalf("200 guesses from one client: %d reached the endpoint, none throttled, and the endpoint was never told the client's address", reached)
		}
	})
}

// Sign-ins that arrive while the first fetch of an issuer's keys hangs, and
// then fails, are answered 503 when it fails: none fetches again. Each
// waiting sign-in fetched again in turn (the last attempt counted from when
// it began, so a fetch that took more than a second was never "just now"):
// while the issuer's keys hung, anyone posting ID tokens queued fetch after
// fetch, each as long as the client's timeout, and every sign-in with that
// issuer, of any tenant, waited behind all of them.
func TestSignInsWaitingOnAHangingKeyFetchDoNotEachFetchAgain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		var fetches atomic.Int32
		hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetches.Add(1)
			select { // slower than the second after which a failed fetch is tried again
			case <-time.After(1200 * time.Millisecond):
			case <-r.Context().Done():
			}
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		t.Cleanup(hanging.Close)
		iss := oidctest.New(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      corp: {type: oidc, clientIds: [app], issuer: %q, jwksUrl: %q, allowPrivateNetwork: true}
`, iss.URL(), hanging.URL+"/jwks"))
		const n = 4
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := authenticate(t, env, "shop", "corp", map[string]any{"idToken": iss.Key("RS256").Sign(iss.Claims("app", fmt.Sprint("u", i)))})
				statuses[i] = r.StatusCode
			})
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusServiceUnavailable {
				t.Errorf("sign-in %d → %d, want 503", i, s)
			}
		}
		if got := fetches.Load(); got != 1 {
			t.Fatalf("%d sign-ins waiting on one hanging key fetch made %d fetches, want 1", n, got)
		}
	})
}
