package server_test

import (
	"encoding/json"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/signature"
)

const brandSecret = "brand-secret-0123456789abcdef01234567"

// brandEndpoint is a brand's own sign-in system behind the webhook contract.
func brandEndpoint(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := signature.Verify([]byte(brandSecret), r.Header.Get(signature.Header), body, time.Now()); err != nil ||
			r.Header.Get("X-Customerd-Tenant") != "shop" || r.Header.Get("X-Customerd-Provider") != "brand" {
			http.Error(w, "unsigned", http.StatusUnauthorized)
			return
		}
		var in struct{ Login, Password string }
		_ = json.Unmarshal(body, &in)
		switch in.Password {
		case "right":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"subject":"member-%s","claims":{"email":"%s@example.com","email_verified":true,"given_name":"Member"}}`, in.Login, in.Login)
		case "wrong":
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
		case "crash":
			http.Error(w, "boom", http.StatusBadGateway)
		case "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		case "garbage":
			_, _ = io.WriteString(w, "<html>hello</html>")
		case "nobody":
			_, _ = io.WriteString(w, `{"claims":{}}`)
		case "nul-subject":
			_, _ = io.WriteString(w, `{"subject":"m\u0000x"}`)
		case "nul-claim":
			_, _ = io.WriteString(w, `{"subject":"member-nul","claims":{"given_name":"Me\u0000mber","family_name":"Kept"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCustomProvider(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		brand := brandEndpoint(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      brand: {type: webhook, url: %q, secret: %q, timeout: 300ms, allowPrivateNetwork: true}
`, brand.URL, brandSecret))
		login := func(name, password string) rawReply {
			return authenticate(t, env, "shop", "brand", map[string]any{"login": name, "password": password})
		}

		t.Run("the brand's answer signs in with its subject and claims", func(t *testing.T) {
			tok := mustToken(t, login("ada", "right"))
			p := tokenPayload(t, tok)
			me := customerOf(t, env, "shop", tok)
			if p["idp"] != "brand" || toStrings(p["amr"])[0] != "ext" || me["email"] != "ada@example.com" || me["emailVerified"] != true || me["firstName"] != "Member" {
				t.Fatalf("claims %v, account %v", p, me)
			}
			if again := customerOf(t, env, "shop", mustToken(t, login("ada", "right"))); again["id"] != me["id"] {
				t.Fatalf("second sign-in found another account")
			}
		})

		for _, c := range []struct {
			name, password string
			status         int
		}{
			{"a 4xx answer is a refusal", "wrong", http.StatusUnprocessableEntity},
			{"a 5xx answer is unavailable", "crash", http.StatusServiceUnavailable},
			{"no answer in time is unavailable", "slow", http.StatusServiceUnavailable},
			{"a garbage answer is unavailable", "garbage", http.StatusServiceUnavailable},
			{"an answer without a subject is unavailable", "nobody", http.StatusServiceUnavailable},
			{"a subject no database keeps as text is refused", "nul-subject", http.StatusUnprocessableEntity},
		} {
			t.Run(c.name, func(t *testing.T) {
				mustProblem(t, login("bob", c.password), c.status)
			})
		}

		t.Run("a claim no database keeps as text is dropped, the rest kept", func(t *testing.T) {
			me := customerOf(t, env, "shop", mustToken(t, login("nul", "nul-claim")))
			if me["firstName"] != nil || me["lastName"] != "Kept" {
				t.Fatalf("account: %v", me)
			}
		})
	})
}

// A custom provider signs and posts the body readBody kept (5cbed34), not a
// decode of it: the brand must get the bytes the validator judged, as sent,
// whatever JSON media type they came under, and never a body refused for
// what two parsers could read differently (a member repeated in another
// case or as an escape, a second value after the first).
func TestACustomProviderGetsTheBodyAsSentAndNoAmbiguousOne(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		got := make(chan string, 1)
		env := brandTenant(t, dbURL, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if signature.Verify([]byte(brandSecret), r.Header.Get(signature.Header), body, time.Now()) == nil {
				got <- string(body)
			}
			http.Error(w, "no", http.StatusUnauthorized)
		})
		const path = "/api/shop/customer/authenticate?provider=brand"
		sent := ` {"login":"ada","pass\u0077ord":"x","n":12345678901234567890, "s":"\ud83d\ude00"} `
		for _, ct := range []string{"application/json", "text/json", "application/problem+json", "application/json-patch+json; charset=utf-8"} {
			mustProblem(t, post(t, env, path, sent, "Content-Type", ct), http.StatusUnprocessableEntity)
			select {
			case b := <-got:
				if b != sent {
					t.Errorf("%s: the brand got %q, sent %q", ct, b, sent)
				}
			default:
				t.Errorf("%s: the brand got nothing", ct)
			}
		}
		for _, body := range []string{
			`{"login":"ada","Login":"eve"}`,
			`{"login":"ada","\u006cogin":"eve"}`,
			`{"s":"ada","\u017f":"eve"}`,
			`{"login":"ada"}{"login":"eve"}`,
		} {
			mustProblem(t, post(t, env, path, body), http.StatusBadRequest)
			select {
			case b := <-got:
				t.Errorf("%s reached the brand as %q", body, b)
			default:
			}
		}
	})
}

// A brand's subject is its own, byte for byte: "alice" and "alice " may be
// two of its members (a login as typed, its own keys), and are two
// identities here. Found by the eleventh audit: the subject was trimmed, so
// a member who registered "alice " at the brand signed into alice's
// account.
func TestABrandsSubjectIsKeptAsItSaidIt(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := brandTenant(t, dbURL, func(w http.ResponseWriter, r *http.Request) {
			var in struct{ Login string }
			body, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(body, &in)
			out, _ := json.Marshal(map[string]any{"subject": in.Login})
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(out)
		})
		login := func(name string) string {
			return subOf(t, mustToken(t, authenticate(t, env, "shop", "brand", map[string]any{"login": name})))
		}
		owner := login("alice")
		for _, other := range []string{"alice ", " alice", "alice\n"} {
			if login(other) == owner {
				t.Fatalf("the brand's member %q signed into the account of its member %q", other, "alice")
			}
		}
		if login("alice") != owner {
			t.Fatal("alice's second sign-in found another account")
		}
	})
}

// brandTenant is customerd with the tenant shop, whose provider brand is the
// endpoint handle serves.
func brandTenant(t *testing.T, dbURL string, handle http.HandlerFunc) *apptest.Env {
	brand := httptest.NewServer(handle)
	t.Cleanup(brand.Close)
	return apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      brand: {type: webhook, url: %q, secret: %q, allowPrivateNetwork: true}
`, brand.URL, brandSecret))
}
