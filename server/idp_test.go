package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
)

// authenticate posts body to authenticate?provider=name of tenant.
func authenticate(t *testing.T, env *apptest.Env, tenant, name string, body any) rawReply {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return rawCall(t, env, http.MethodPost, "/api/"+tenant+"/customer/authenticate?provider="+name, strings.NewReader(string(raw)))
}

// mustToken checks a 200 with a token and returns it.
func mustToken(t *testing.T, r rawReply) string {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s → %d, want 200: %s", r.Request.URL, r.StatusCode, r.body)
	}
	var tok string
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatalf("token: %v: %s", err, r.body)
	}
	return tok
}

// flipSignatureBit flips one bit of the signature itself (its first byte).
func flipSignatureBit(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	sig[0] ^= 1
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// graphAPI is a local Graph API for app 1234 with secret fb-secret.
func graphAPI(t *testing.T) *httptest.Server {
	users := map[string]map[string]any{
		"good-token":  {"app_id": "1234", "is_valid": true, "user_id": "fb-42"},
		"other-app":   {"app_id": "999", "is_valid": true, "user_id": "fb-43"},
		"expired-tok": {"app_id": "1234", "is_valid": false, "user_id": "fb-42"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug_token", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("access_token") != "1234|fb-secret" {
			http.Error(w, `{"error":{"code":190}}`, http.StatusBadRequest)
			return
		}
		if q.Get("input_token") == "graph-down" {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		data, ok := users[q.Get("input_token")]
		if !ok {
			data = map[string]any{"is_valid": false}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		m := hmac.New(sha256.New, []byte("fb-secret"))
		m.Write([]byte(q.Get("access_token")))
		if q.Get("appsecret_proof") != fmt.Sprintf("%x", m.Sum(nil)) || q.Get("access_token") != "good-token" {
			http.Error(w, `{"error":{"code":190}}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "fb-42", "first_name": "Fay", "last_name": "Book", "email": "fay@example.com"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func idpConfig(iss, down *oidctest.Issuer, graph string) string {
	return fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      google: {type: google, clientIds: [web-app, ios-app], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
      apple: {type: apple, clientIds: [com.shop.ios], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
      facebook: {type: facebook, clientIds: ["1234"], issuer: %[1]q, jwksUrl: %[2]q, appSecret: fb-secret, graphURL: %[3]q, allowPrivateNetwork: true}
      line: {type: line, clientIds: ["1655"], issuer: %[1]q, jwksUrl: %[2]q, channelSecret: line-channel-secret, allowPrivateNetwork: true}
      corp: {type: oidc, clientIds: [corp-app], issuer: %[1]q, allowPrivateNetwork: true}
      strict: {type: google, clientIds: [web-app], issuer: %[1]q, jwksUrl: %[2]q, requireNonce: true, allowPrivateNetwork: true}
  other:
    providers:
      line: {type: line, clientIds: ["1655"], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
      gone: {type: oidc, clientIds: [x], issuer: %[4]q, jwksUrl: %[5]q, allowPrivateNetwork: true}
`, iss.URL(), iss.JWKSURL(), graph, down.URL(), down.JWKSURL())
}

func TestIdentityProviders(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, down := oidctest.New(t), oidctest.New(t)
		down.SetDown(true)
		graph := graphAPI(t)
		env := apptest.Start(t, dbURL, idpConfig(iss, down, graph.URL))
		claims := func(aud, sub string, extra ...any) map[string]any {
			c := iss.Claims(aud, sub)
			for i := 0; i+1 < len(extra); i += 2 {
				c[extra[i].(string)] = extra[i+1]
			}
			return c
		}

		t.Run("each preset and a generic issuer sign in with their algorithm", func(t *testing.T) {
			for _, c := range []struct{ provider, alg, aud string }{
				{"google", "RS256", "web-app"},
				{"google", "ES256", "ios-app"},
				{"apple", "RS256", "com.shop.ios"},
				{"facebook", "RS256", "1234"},
				{"line", "ES256", "1655"},
				{"corp", "EdDSA", "corp-app"},
			} {
				tok := mustToken(t, authenticate(t, env, "shop", c.provider,
					map[string]any{"idToken": iss.Key(c.alg).Sign(claims(c.aud, c.provider+"-"+c.alg))}))
				p := tokenPayload(t, tok)
				if p["idp"] != c.provider || !slices.Equal(toStrings(p["amr"]), []string{"fed"}) {
					t.Errorf("%s: idp %v amr %v", c.provider, p["idp"], p["amr"])
				}
			}
		})

		t.Run("apple keeps the name sent next to the first token", func(t *testing.T) {
			tok := mustToken(t, authenticate(t, env, "shop", "apple", map[string]any{
				"idToken": iss.Key("RS256").Sign(claims("com.shop.ios", "apple-named", "email", "ann@privaterelay.appleid.com", "email_verified", "true")),
				"user":    map[string]any{"name": map[string]any{"firstName": "Ann", "lastName": "Apple"}},
			}))
			me := customerOf(t, env, "shop", tok)
			if me["firstName"] != "Ann" || me["lastName"] != "Apple" || me["email"] != "ann@privaterelay.appleid.com" || me["emailVerified"] != true {
				t.Fatalf("account: %v", me)
			}
			// Later sign-ins send no name: the one kept stays.
			again := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "apple",
				map[string]any{"idToken": iss.Key("RS256").Sign(claims("com.shop.ios", "apple-named"))})))
			if again["id"] != me["id"] || again["firstName"] != "Ann" {
				t.Fatalf("second sign-in: %v", again)
			}
		})

		t.Run("a verified email links to the account that has it", func(t *testing.T) {
			existing := customerOf(t, env, "shop", env.SignIn(t, "shop", "linked@example.com"))
			tok := mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(
				claims("web-app", "g-linked", "email", "Linked@Example.com", "email_verified", true, "given_name", "Lin"))}))
			me := customerOf(t, env, "shop", tok)
			if me["id"] != existing["id"] || me["firstName"] != "Lin" {
				t.Fatalf("linked account %v, want %v", me, existing["id"])
			}
		})

		t.Run("an unverified email never links and makes a separate account", func(t *testing.T) {
			existing := customerOf(t, env, "shop", env.SignIn(t, "shop", "victim@example.com"))
			tok := mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(
				claims("web-app", "g-attacker", "email", "victim@example.com", "email_verified", false))}))
			me := customerOf(t, env, "shop", tok)
			if me["id"] == existing["id"] || me["email"] != nil {
				t.Fatalf("an unverified email reached the account: %v", me)
			}
		})

		t.Run("later sign-ins find the account by the identity even when the email changed", func(t *testing.T) {
			first := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(
				claims("web-app", "g-mover", "email", "old@example.com", "email_verified", true))})))
			later := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(
				claims("web-app", "g-mover", "email", "new@example.com", "email_verified", true))})))
			if later["id"] != first["id"] || later["email"] != "old@example.com" {
				t.Fatalf("later sign-in: %v, first %v", later, first)
			}
		})

		t.Run("claims fill empty fields and never overwrite what the shopper entered", func(t *testing.T) {
			tok := env.SignIn(t, "shop", "entered@example.com")
			upd := rawCall(t, env, http.MethodPost, "/api/shop/customer", strings.NewReader(`{"firstName":"Mine","language":"de"}`), "Authorization", "Bearer "+tok)
			if upd.StatusCode != http.StatusOK {
				t.Fatalf("update: %d %s", upd.StatusCode, upd.body)
			}
			me := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(
				claims("web-app", "g-entered", "email", "entered@example.com", "email_verified", true,
					"given_name", "Theirs", "family_name", "Filled", "locale", "en-GB"))})))
			if me["firstName"] != "Mine" || me["lastName"] != "Filled" || me["language"] != "de" {
				t.Fatalf("account after claims: %v", me)
			}
		})

		t.Run("twenty concurrent first sign-ins of one identity make one account", func(t *testing.T) {
			tok := iss.Key("RS256").Sign(claims("web-app", "g-crowd", "email", "crowd@example.com", "email_verified", true))
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				ids = map[string]int{}
			)
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := authenticate(t, env, "shop", "google", map[string]any{"idToken": tok})
					mu.Lock()
					defer mu.Unlock()
					if r.StatusCode != http.StatusOK {
						ids[fmt.Sprintf("status %d", r.StatusCode)]++
						return
					}
					var token string
					_ = json.Unmarshal(r.body, &token)
					sub, _ := tokenPayloadNoT(token)["sub"].(string)
					ids[sub]++
				}()
			}
			wg.Wait()
			if len(ids) != 1 {
				t.Fatalf("accounts (or failures) by id: %v", ids)
			}
		})

		t.Run("an identity whose account was deleted starts over with a new account", func(t *testing.T) {
			tok := iss.Key("RS256").Sign(claims("web-app", "g-deleted", "email", "deleted@example.com", "email_verified", true))
			first := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": tok})))
			if err := env.App.Store.DeleteCustomer(ctx, "shop", first["id"].(string), time.Now()); err != nil {
				t.Fatal(err)
			}
			again := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": tok})))
			if again["id"] == first["id"] || again["email"] != "deleted@example.com" {
				t.Fatalf("after deletion: %v (was %v)", again, first)
			}
		})

		t.Run("facebook classic access tokens are checked with the graph API", func(t *testing.T) {
			tok := mustToken(t, authenticate(t, env, "shop", "facebook", map[string]any{"accessToken": "good-token"}))
			me := customerOf(t, env, "shop", tok)
			if me["firstName"] != "Fay" || tokenPayload(t, tok)["idp"] != "facebook" {
				t.Fatalf("facebook account: %v", me)
			}
			for _, bad := range []string{"expired-tok", "other-app", "unknown"} {
				mustProblem(t, authenticate(t, env, "shop", "facebook", map[string]any{"accessToken": bad}), http.StatusUnprocessableEntity)
			}
			mustProblem(t, authenticate(t, env, "shop", "facebook", map[string]any{"accessToken": "graph-down"}), http.StatusServiceUnavailable)
			mustProblem(t, authenticate(t, env, "shop", "google", map[string]any{"accessToken": "good-token"}), http.StatusBadRequest)
		})

		t.Run("line takes HS256 tokens signed with the channel secret when configured so", func(t *testing.T) {
			hs := oidctest.HS256([]byte("line-channel-secret"), map[string]any{"alg": "HS256", "typ": "JWT"}, claims("1655", "line-hs"))
			mustToken(t, authenticate(t, env, "shop", "line", map[string]any{"idToken": hs}))
			// The same token for a channel that signs ES256 only.
			mustProblem(t, authenticate(t, env, "other", "line", map[string]any{"idToken": hs}), http.StatusUnprocessableEntity)
			mustToken(t, authenticate(t, env, "other", "line", map[string]any{"idToken": iss.Key("ES256").Sign(claims("1655", "line-es"))}))
			wrong := oidctest.HS256([]byte("another-secret"), map[string]any{"alg": "HS256"}, claims("1655", "line-hs"))
			mustProblem(t, authenticate(t, env, "shop", "line", map[string]any{"idToken": wrong}), http.StatusUnprocessableEntity)
		})

		t.Run("the OpenID conformance negative cases are refused with 422", func(t *testing.T) {
			rsa, ec := iss.Key("RS256"), iss.Key("ES256")
			now := time.Now().Unix()
			without := func(name string) map[string]any {
				c := claims("web-app", "neg")
				delete(c, name)
				return c
			}
			attacker := oidctest.NewKey(t, "RS256", "attacker")
			der, _ := x509.MarshalPKIXPublicKey(rsa.Private.Public())
			rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			hdr := func(kv ...any) map[string]any {
				h := map[string]any{}
				for i := 0; i+1 < len(kv); i += 2 {
					h[kv[i].(string)] = kv[i+1]
				}
				return h
			}
			jsonSerialization, _ := json.Marshal(map[string]any{"payload": "e30", "protected": "eyJhbGciOiJSUzI1NiJ9", "signature": "AAAA"})
			for _, c := range []struct {
				name, provider, token string
				nonce                 string
			}{
				{"invalid iss", "google", rsa.Sign(claims("web-app", "neg", "iss", "https://evil.example")), ""},
				{"invalid aud", "google", rsa.Sign(claims("someone-else", "neg")), ""},
				{"missing aud", "google", rsa.Sign(without("aud")), ""},
				{"several audiences and no azp", "google", rsa.Sign(claims("web-app", "neg", "aud", []string{"web-app", "other"})), ""},
				{"missing sub", "google", rsa.Sign(without("sub")), ""},
				{"missing iat", "google", rsa.Sign(without("iat")), ""},
				{"kid absent with several keys", "google", rsa.SignHeader(hdr("alg", "RS256"), claims("web-app", "neg")), ""},
				{"unknown kid", "google", oidctest.NewKey(t, "RS256", "nope").Sign(claims("web-app", "neg")), ""},
				{"alg none", "google", oidctest.Unsigned(claims("web-app", "neg")), ""},
				{"flipped signature bit RS256", "google", flipSignatureBit(rsa.Sign(claims("web-app", "neg"))), ""},
				{"flipped signature bit ES256", "google", flipSignatureBit(ec.Sign(claims("web-app", "neg"))), ""},
				{"HS256 signed with the RSA public key", "google", oidctest.HS256(rsaPEM, hdr("alg", "HS256", "kid", rsa.Kid), claims("web-app", "neg")), ""},
				{"HS256 signed with the RSA public key on an HS256 channel", "line", oidctest.HS256(rsaPEM, hdr("alg", "HS256", "kid", rsa.Kid), claims("1655", "neg")), ""},
				{"RS256 key used as ES256", "google", ec.SignHeader(hdr("alg", "ES256", "kid", rsa.Kid), claims("web-app", "neg")), ""},
				{"wrong nonce", "google", rsa.Sign(claims("web-app", "neg", "nonce", "n-2")), "n-1"},
				{"missing nonce", "google", rsa.Sign(claims("web-app", "neg")), "n-1"},
				{"nonce required and none sent", "strict", rsa.Sign(claims("web-app", "neg", "nonce", "n-1")), ""},
				{"expired by 61 s", "google", rsa.Sign(claims("web-app", "neg", "exp", now-61, "iat", now-600)), ""},
				{"iat 120 s ahead", "google", rsa.Sign(claims("web-app", "neg", "iat", now+120)), ""},
				{"jku header", "google", rsa.SignHeader(hdr("alg", "RS256", "kid", rsa.Kid, "jku", "https://evil.example/jwks"), claims("web-app", "neg")), ""},
				{"x5u header", "google", rsa.SignHeader(hdr("alg", "RS256", "kid", rsa.Kid, "x5u", "https://evil.example/cert"), claims("web-app", "neg")), ""},
				{"embedded jwk header", "google", attacker.SignHeader(hdr("alg", "RS256", "kid", rsa.Kid, "jwk", attacker.JWK()), claims("web-app", "neg")), ""},
				{"JSON serialization", "google", string(jsonSerialization), ""},
				{"an access token (typ at+jwt)", "google", rsa.SignHeader(hdr("alg", "RS256", "kid", rsa.Kid, "typ", "at+jwt"), claims("web-app", "neg")), ""},
				{"a JWE", "google", b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + ".AAAA.AAAA.AAAA.AAAA", ""},
				{"garbage", "google", "not-a-token", ""},
			} {
				t.Run(c.name, func(t *testing.T) {
					body := map[string]any{"idToken": c.token}
					if c.nonce != "" {
						body["nonce"] = c.nonce
					}
					mustProblem(t, authenticate(t, env, "shop", c.provider, body), http.StatusUnprocessableEntity)
				})
			}
			t.Run("accepted 30 s after exp", func(t *testing.T) {
				mustToken(t, authenticate(t, env, "shop", "google", map[string]any{
					"idToken": rsa.Sign(claims("web-app", "skew", "exp", now-30, "iat", now-600))}))
			})
			t.Run("accepted with the nonce it carries", func(t *testing.T) {
				mustToken(t, authenticate(t, env, "shop", "strict", map[string]any{
					"idToken": rsa.Sign(claims("web-app", "nonced", "nonce", "n-1")), "nonce": "n-1"}))
			})
			t.Run("accepted with several audiences and our azp", func(t *testing.T) {
				mustToken(t, authenticate(t, env, "shop", "google", map[string]any{
					"idToken": rsa.Sign(claims("web-app", "azp", "aud", []string{"web-app", "other"}, "azp", "web-app"))}))
			})
		})

		t.Run("a refused ID token is logged at info with the reason and never the token", func(t *testing.T) {
			tok := iss.Key("RS256").Sign(claims("someone-else", "logged"))
			mustProblem(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": tok}), http.StatusUnprocessableEntity, tok)
			var line map[string]any
			for _, l := range env.Logs.Lines() {
				if l["msg"] == "id token refused" && l["provider"] == "google" && strings.Contains(fmt.Sprint(l["reason"]), "aud") {
					line = l
				}
			}
			if line == nil || line["level"] != "INFO" || line["tenant"] != "shop" {
				t.Fatalf("no info line naming the refusal: %v", line)
			}
			for _, part := range append(strings.Split(tok, "."), tok) {
				if strings.Contains(env.Logs.String(), part) {
					t.Fatalf("the log holds the token (or a part of it): %.40s…", part)
				}
			}
		})

		t.Run("an issuer down after a first fetch still verifies from the cache", func(t *testing.T) {
			mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(claims("web-app", "cached"))}))
			iss.SetDown(true)
			defer iss.SetDown(false)
			mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("ES256").Sign(claims("web-app", "cached"))}))
		})

		t.Run("an issuer with no key at all is a 503", func(t *testing.T) {
			c := down.Claims("x", "nobody")
			mustProblem(t, authenticate(t, env, "other", "gone", map[string]any{"idToken": down.Key("RS256").Sign(c)}), http.StatusServiceUnavailable)
		})

		t.Run("a provider the tenant does not enable is a 400 listing the enabled ones", func(t *testing.T) {
			p := mustProblem(t, authenticate(t, env, "other", "google", map[string]any{"idToken": "x"}), http.StatusBadRequest)
			if d, _ := p["detail"].(string); !strings.Contains(d, "[gone line otp]") && !strings.Contains(d, "[gone line]") {
				t.Errorf("detail %q does not list the enabled providers", d)
			}
		})

		t.Run("a body that does not fit is a 400", func(t *testing.T) {
			mustProblem(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": 42}), http.StatusBadRequest)
			mustProblem(t, authenticate(t, env, "shop", "google", map[string]any{"email": "a@b.c"}), http.StatusBadRequest)
		})
	})
}

// A token the issuer gave another of its clients is not ours, even when its
// aud names us: azp, when present, must be one of the provider's clientIds
// (OpenID Connect Core 3.1.3.7), whatever the number of audiences. Found by
// an audit: azp was read only with several audiences, so a Keycloak realm's
// other client X, given tokens with our aud by an audience mapper, took
// its users' customerd tokens with them.
func TestATokenIssuedToAnotherClientIsRefused(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, down := oidctest.New(t), oidctest.New(t)
		env := apptest.Start(t, dbURL, idpConfig(iss, down, graphAPI(t).URL))
		for _, c := range []struct {
			name, provider string
			aud            any
			azp            string
			ok             bool
		}{
			{"our aud, another client's azp", "corp", "corp-app", "X", false},
			{"our aud, an empty azp", "corp", "corp-app", "", false},
			{"our aud and azp", "corp", "corp-app", "corp-app", true},
			{"several audiences, another client's azp", "corp", []string{"corp-app", "X"}, "X", false},
			{"several audiences and our azp", "corp", []string{"corp-app", "X"}, "corp-app", true},
			// Google on a phone: aud is the web client, azp the app's, both listed.
			{"azp another of our platforms", "google", "web-app", "ios-app", true},
		} {
			t.Run(c.name, func(t *testing.T) {
				tok := iss.Key("RS256").Sign(oidctest.With(iss.Claims("", "victim-sub"), "aud", c.aud, "azp", c.azp))
				r := authenticate(t, env, "shop", c.provider, map[string]any{"idToken": tok})
				if c.ok {
					mustToken(t, r)
				} else {
					mustProblem(t, r, http.StatusUnprocessableEntity)
				}
			})
		}
	})
}

// tokenPayloadNoT decodes a token's claims outside the test goroutine.
func tokenPayloadNoT(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	return claims
}

func toStrings(v any) []string {
	var out []string
	if list, ok := v.([]any); ok {
		for _, s := range list {
			str, _ := s.(string)
			out = append(out, str)
		}
	}
	return out
}
