package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/signature"
	"github.com/customerd/customerd/store"
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

// A brand's subject is text: an answer in another encoding than UTF-8, or
// escaping half a UTF-16 surrogate pair, is a malformed answer, not a
// subject. Found by an audit: encoding/json read both as U+FFFD, so a brand
// endpoint writing Latin-1 made its members "müller" and "mäller" one
// identity "m\uFFFDller", and the second signed into the first's account.
func TestABrandsSubjectThatIsNotUTF8IsNobodysSubject(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		answers := map[string]string{
			"latin1-u": "{\"subject\":\"m\xfcller\"}", "latin1-a": "{\"subject\":\"m\xe4ller\"}",
			"high-half": `{"subject":"m\ud800ller"}`, "low-half": `{"subject":"m\udc00ller"}`,
			"utf8": `{"subject":"müller"}`, "escaped": `{"subject":"m\u00fcller"}`,
		}
		env := brandTenant(t, dbURL, answering(answers))
		login := func(name string) rawReply {
			return authenticate(t, env, "shop", "brand", map[string]any{"login": name})
		}
		for _, pair := range [][2]string{{"latin1-u", "latin1-a"}, {"high-half", "low-half"}} {
			first, second := login(pair[0]), login(pair[1])
			if first.StatusCode == http.StatusOK && second.StatusCode == http.StatusOK && subOf(t, mustToken(t, first)) == subOf(t, mustToken(t, second)) {
				t.Fatalf("the brand's members %q and %q are one account", answers[pair[0]], answers[pair[1]])
			}
			mustProblem(t, first, http.StatusServiceUnavailable)
			mustProblem(t, second, http.StatusServiceUnavailable)
		}
		// "müller" as UTF-8 or as an escape is one string, one member.
		if subOf(t, mustToken(t, login("utf8"))) != subOf(t, mustToken(t, login("escaped"))) {
			t.Fatal("müller written as UTF-8 and as an escape are two accounts")
		}
	})
}

// A brand's answer is read as strictly as a request (strictjson.Check) and
// by its members' exact names. Found by an audit: encoding/json took
// "EMAIL" and "Email_Verified" for the claims email and email_verified, the
// last of a repeated member winning; a brand that copies its members'
// attributes into claims, leaving out the names it reserves as it spells
// them, let a member set a victim's address, verified, and sign into the
// victim's account.
func TestABrandsAnswerWithAmbiguousMembersIsRefused(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		const victimEmail = "victim.brand@example.com"
		answers := map[string]string{
			"case":     `{"subject":"member-eve","claims":{"email":"eve@example.com","email_verified":false,"EMAIL":"` + victimEmail + `","Email_Verified":true}}`,
			"repeated": `{"subject":"member-eve","claims":{"email":"eve@example.com","email":"` + victimEmail + `","email_verified":true}}`,
			"subject":  `{"subject":"member-eve","claims":{},"subject":"member-victim"}`,
			"long-s":   `{"subject":"member-eve","ſubject":"member-victim"}`,
			"alone":    `{"subject":"member-mallory","claims":{"EMAIL":"` + victimEmail + `","Email_Verified":true}}`,
		}
		env := brandTenant(t, dbURL, answering(answers))
		victim := env.SignIn(t, "shop", victimEmail)
		before := customerOf(t, env, "shop", victim)
		for _, name := range []string{"case", "repeated", "subject", "long-s"} {
			r := authenticate(t, env, "shop", "brand", map[string]any{"login": name})
			if r.StatusCode == http.StatusOK && subOf(t, mustToken(t, r)) == subOf(t, victim) {
				t.Fatalf("the answer %s signed into the victim's account", answers[name])
			}
			mustProblem(t, r, http.StatusServiceUnavailable)
		}
		for _, sub := range []string{"member-eve", "member-victim"} {
			if _, err := env.App.Store.Identity(t.Context(), "shop", "brand", sub); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("identity %s: %v, want none linked", sub, err)
			}
		}
		// A member named in another case alone is no claim: not read.
		tok := mustToken(t, authenticate(t, env, "shop", "brand", map[string]any{"login": "alone"}))
		if me := customerOf(t, env, "shop", tok); subOf(t, tok) == subOf(t, victim) || me["email"] != nil {
			t.Fatalf("EMAIL was read as the email claim: %v", me)
		}
		if after := customerOf(t, env, "shop", victim); !reflect.DeepEqual(after, before) {
			t.Fatalf("the victim's account changed: %v, was %v", after, before)
		}
	})
}

// answering is a brand endpoint that answers each login of answers with its
// answer, byte for byte.
func answering(answers map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Login string }
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &in)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answers[in.Login])
	}
}

// brandTenant is customerd with the tenant shop, whose providers are otp and
// brand, the endpoint handle serves.
func brandTenant(t *testing.T, dbURL string, handle http.HandlerFunc) *apptest.Env {
	brand := httptest.NewServer(handle)
	t.Cleanup(brand.Close)
	return apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      brand: {type: webhook, url: %q, secret: %q, allowPrivateNetwork: true}
`, brand.URL, brandSecret))
}
