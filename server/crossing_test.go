package server_test

import (
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store/storetest"
	"github.com/customerd/customerd/token"
)

// What a token, a challenge, an identity or an admin key reaches stays
// within its tenant, its purpose, its caller and its lifetime. Each test is
// one attack.

// nextSecond waits for the wall clock's next second (tokens carry whole
// seconds: one of a revocation's second is refused whatever it is).
func nextSecond() { time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) }

// A thief holding a shopper's token asks to move the account to an address
// of theirs (a contact change: the code goes to the thief). Support then
// revokes every session of the account. The challenge the revoked token
// started must not complete: completing it hands out a new token for the
// account and attaches the thief's address, verified, to it.
func TestARevokedSessionCannotFinishItsContactChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		a := env.Admin(t)
		adm := a.Client(t, a.Key(t, "demo"))
		stolen := env.SignIn(t, "demo", "revoked.owner@example.com")
		id := subOf(t, stolen)

		ch := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"thief@example.net"}`, withToken(stolen)...))
		code := env.Logs.Code("thief@example.net")

		res, err := adm.RevokeCustomerSessionsWithResponse(ctx, "demo", id)
		if err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %v %d %s", err, res.StatusCode(), res.Body)
		}
		if r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(stolen)...); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the stolen token after the revocation: %d", r.StatusCode)
		}
		nextSecond()
		r := exchange(t, env, "demo", ch, code)
		if r.StatusCode == http.StatusOK {
			fresh := mustToken(t, r)
			me := customerOf(t, env, "demo", fresh)
			t.Fatalf("a contact change started by a token revoked since completed: a new token for %v (same account: %v), email now %v verified %v",
				subOf(t, fresh), subOf(t, fresh) == id, me["email"], me["emailVerified"])
		}
		mustProblem(t, r, http.StatusUnprocessableEntity)
	})
}

// The same with a leaked signing key retired (`rotate-key
// --retire-previous`): a contact change a token it signed asked for does not
// complete.
func TestARetiredKeysTokenCannotFinishItsContactChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		stolen := env.SignIn(t, "demo", "retired.owner@example.com")
		ch := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"thief@example.net"}`, withToken(stolen)...))
		code := env.Logs.Code("thief@example.net")

		kid, err := env.App.Tokens.Rotate(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.App.Tokens.RetirePrevious(ctx, "demo", kid); err != nil {
			t.Fatal(err)
		}
		if r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(stolen)...); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the stolen token after its key's retirement: %d", r.StatusCode)
		}
		r := exchange(t, env, "demo", ch, code)
		if r.StatusCode == http.StatusOK {
			t.Fatalf("a contact change a retired key's token asked for completed: %s", r.body)
		}
		mustProblem(t, r, http.StatusUnprocessableEntity)
	})
}

// A leaked signing key retired (`rotate-key --retire-previous`, a process of
// its own): a replica keeps the key it loaded for up to a minute, which
// README accepts for the tokens themselves. Whoever holds the key forges a
// token for a victim in that minute, its iat now or ahead within the skew,
// asks to put their own address on the account (202) and sends its code: the
// change was asked with a retired key and must not complete (the address
// verified on the account, a new token of the new key). Nor when the
// change was let in just before the retirement and written after it. A
// change asked with a token of the new key still completes.
func TestAForgedTokenOfARetiredKeyCannotFinishAContactChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const owner = "forged.owner@example.com"
		mine := env.SignIn(t, "demo", owner)
		victim := subOf(t, mine)
		forge := forger(t, env, mine)
		// The operator's rotate-key, another Service over the database:
		// env.App.Tokens keeps the leaked key it loaded.
		cli, err := token.New(env.App.Store, token.Options{IssuerBase: env.App.Config.PublicURL, Seal: sealKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		kid, err := cli.Rotate(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.RetirePrevious(ctx, "demo", kid); err != nil {
			t.Fatal(err)
		}
		nextSecond() // a forged iat of now falls in a later second than the retirement
		for _, c := range []struct {
			name, thief string
			ahead       time.Duration
		}{
			{"issued now", "forged.now@example.net", 0},
			{"issued 50 s ahead", "forged.ahead@example.net", 50 * time.Second},
		} {
			t.Run(c.name, func(t *testing.T) {
				forged := forge(time.Now().Add(c.ahead))
				r := post(t, env, "/api/demo/customer", `{"email":"`+c.thief+`"}`, withToken(forged)...)
				if r.StatusCode != http.StatusAccepted {
					t.Fatalf("the replica no longer takes the retired key: %d %s (the test needs it to)", r.StatusCode, r.body)
				}
				x := exchange(t, env, "demo", challengeID(t, r), env.Logs.Code(c.thief))
				if x.StatusCode == http.StatusOK {
					t.Fatalf("a contact change a forged token of a retired key asked completed: %s", x.body)
				}
				mustProblem(t, x, http.StatusUnprocessableEntity)
				if me := stored(t, env, "demo", owner); me.ID != victim || !me.EmailVerified {
					t.Fatalf("the victim's verified email is no longer %s", owner)
				}
			})
		}
		fresh, err := cli.Issue(ctx, "demo", token.Claims{Subject: victim, Provider: "otp", AMR: []string{"otp", "email"}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// The same change asked first with the retired key (forged here, or
		// the owner's own in flight at the retirement) can never complete:
		// the owner retrying it with a token of the new key is not handed it
		// back, to type a code that answers 422 until the resend interval ends.
		t.Run("the owner retrying a change asked with the retired key gets a new challenge", func(t *testing.T) {
			const change = `{"email":"forged.owner.retry@example.com"}`
			dead := challengeID(t, post(t, env, "/api/demo/customer", change, withToken(forge(time.Now()))...))
			ch := challengeID(t, post(t, env, "/api/demo/customer", change, withToken(fresh)...))
			if ch == dead {
				t.Fatalf("the owner's retry was handed back the change the retired key asked (%s), which never completes", ch)
			}
			if x := exchange(t, env, "demo", ch, env.Logs.Code("forged.owner.retry@example.com")); x.StatusCode != http.StatusOK {
				t.Fatalf("the owner's retried change: %d %s", x.StatusCode, x.body)
			}
		})
		t.Run("a token of the new key still changes the contact", func(t *testing.T) {
			const moved = "forged.owner.moved@example.com"
			r := post(t, env, "/api/demo/customer", `{"email":"`+moved+`"}`, withToken(fresh)...)
			x := exchange(t, env, "demo", challengeID(t, r), env.Logs.Code(moved))
			if x.StatusCode != http.StatusOK {
				t.Fatalf("the owner's own change after the retirement: %d %s", x.StatusCode, x.body)
			}
			if me := stored(t, env, "demo", moved); me.ID != victim || !me.EmailVerified {
				t.Fatalf("the owner's change did not apply")
			}
		})
	})
	t.Run("in flight as the key is retired", func(t *testing.T) {
		dbURL := storetest.PostgresURL(t) // skips without PostgreSQL
		env := apptest.Start(t, dbURL, "")
		const owner, thief = "forged.inflight.owner@example.com", "forged.inflight.thief@example.net"
		forge := forger(t, env, env.SignIn(t, "demo", owner))
		kid, err := env.App.Tokens.Rotate(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		// An issue time ahead of the retirement, as the forger chooses.
		changeInFlight(t, env, dbURL, forge(time.Now().Add(50*time.Second)), owner, thief, func() {
			if _, err := env.App.Tokens.RetirePrevious(ctx, "demo", kid); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// sealKey is the key test servers seal their signing keys with (app's
// derive from apptest.Secret).
func sealKey(t *testing.T) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, []byte(apptest.Secret), nil, "customerd signing-key seal v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// forger leaks the tenant's newest signing key, which signed tok, and
// returns what its holder can do: sign tokens like tok for tok's subject,
// issued at a time of their choosing.
func forger(t *testing.T, env *apptest.Env, tok string) func(iat time.Time) string {
	t.Helper()
	keys, err := env.App.Store.SigningKeys(ctx, "demo")
	if err != nil || len(keys) == 0 {
		t.Fatalf("signing keys: %d, %v", len(keys), err)
	}
	k := keys[0]
	sealer, err := token.NewSealer(sealKey(t))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := sealer.Open(k.PrivateKey, k.TenantID+"/"+k.KID)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwk.ParseKey(plain)
	if err != nil {
		t.Fatal(err)
	}
	var leaked ecdsa.PrivateKey
	if err := jwk.Export(parsed, &leaked); err != nil {
		t.Fatal(err)
	}
	template := tokenPayload(t, tok)
	return func(iat time.Time) string {
		claims := maps.Clone(template)
		claims["iat"], claims["nbf"], claims["exp"] = iat.Unix(), iat.Unix(), iat.Add(time.Hour).Unix()
		claims["jti"] = uuid.NewString()
		return signES256(t, &leaked, map[string]any{"alg": "ES256", "kid": k.KID, "typ": "JWT"}, claims)
	}
}

// Claiming an account nobody proved refuses every token issued for it
// before (README, Ownership): through a code, and through an identity whose
// verified email is the account's identifier alike.
func TestAnIdentityClaimingAnAccountRefusesItsEarlierTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss := oidctest.New(t)
		brand := brandEndpoint(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      google: {type: google, clientIds: [web-app], issuer: %q, jwksUrl: %q, allowPrivateNetwork: true}
      brand: {type: webhook, url: %q, secret: %q, allowPrivateNetwork: true}
`, iss.URL(), iss.JWKSURL(), brand.URL, brandSecret))
		for _, c := range []struct {
			name, email string
			signIn      func() rawReply
		}{
			{"google", "planted.g@example.com", func() rawReply {
				claims := iss.Claims("web-app", "g-planted")
				claims["email"], claims["email_verified"] = "planted.g@example.com", true
				return authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(claims)})
			}},
			{"brand", "plantedb@example.com", func() rawReply {
				return authenticate(t, env, "shop", "brand", map[string]any{"login": "plantedb", "password": "right"})
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				postOK(t, env, "/api/shop/customer", `{"email":"`+c.email+`","firstName":"Planted"}`)
				planted := stored(t, env, "shop", c.email)
				earlier, err := env.App.Tokens.Issue(ctx, "shop", token.Claims{Subject: planted.ID, Provider: "otp", AMR: []string{"otp"}}, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				nextSecond()
				mine := mustToken(t, c.signIn())
				if subOf(t, mine) != planted.ID {
					t.Fatalf("the identity did not claim the account")
				}
				if r := rawCall(t, env, http.MethodGet, "/api/shop/customer", nil, withToken(earlier)...); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("a token issued before %s claimed the account: %d, want 401", c.name, r.StatusCode)
				}
			})
		}
	})
}

// What holds, tried once each on both databases.
func TestNothingCrossesTenantsProvidersOrScopes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss := oidctest.New(t)
		brand := brandEndpoint(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      google: {type: google, clientIds: [web-app, ios-app], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
      corp: {type: oidc, clientIds: [corp-app], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
      brand: {type: webhook, url: %[3]q, secret: %[4]q, allowPrivateNetwork: true}
  other:
    providers:
      otp: {type: otp}
      google: {type: google, clientIds: [other-app], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
`, iss.URL(), iss.JWKSURL(), brand.URL, brandSecret))
		idTok := func(aud, sub string, extra ...any) map[string]any {
			c := iss.Claims(aud, sub)
			for i := 0; i+1 < len(extra); i += 2 {
				c[extra[i].(string)] = extra[i+1]
			}
			return map[string]any{"idToken": iss.Key("RS256").Sign(c)}
		}

		t.Run("a token of one tenant is refused by another", func(t *testing.T) {
			tok := env.SignIn(t, "shop", "cross@example.com")
			for _, m := range []string{http.MethodGet, http.MethodDelete} {
				if r := rawCall(t, env, m, "/api/other/customer", nil, withToken(tok)...); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s on other with shop's token: %d", m, r.StatusCode)
				}
			}
			if r := post(t, env, "/api/other/customer", `{"firstName":"X"}`, withToken(tok)...); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("POST on other with shop's token: %d", r.StatusCode)
			}
		})

		t.Run("a challenge of one tenant does not complete on another", func(t *testing.T) {
			id := challengeID(t, post(t, env, "/api/shop/customer/authenticate?provider=otp", `{"email":"crossch@example.com"}`))
			mustProblem(t, exchange(t, env, "other", id, env.Logs.Code("crossch@example.com")), http.StatusUnprocessableEntity)
			mustProblem(t, post(t, env, "/api/other/customer/authenticate?provider=otp",
				`{"email":"crossch@example.com","code":"`+env.Logs.Code("crossch@example.com")+`"}`), http.StatusUnprocessableEntity)
		})

		t.Run("an ID token for another tenant's client, or another provider's, is refused", func(t *testing.T) {
			mustProblem(t, authenticate(t, env, "other", "google", idTok("web-app", "g-x")), http.StatusUnprocessableEntity)
			mustProblem(t, authenticate(t, env, "shop", "google", idTok("other-app", "g-x")), http.StatusUnprocessableEntity)
			mustProblem(t, authenticate(t, env, "shop", "google", idTok("corp-app", "g-x")), http.StatusUnprocessableEntity)
			mustProblem(t, authenticate(t, env, "shop", "google", idTok("", "g-x", "aud", []string{"other-app", "web-app"}, "azp", "other-app")), http.StatusUnprocessableEntity)
		})

		t.Run("email_verified false, \"false\" or absent never links", func(t *testing.T) {
			victim := subOf(t, env.SignIn(t, "shop", "ev@example.com"))
			for i, v := range []any{false, "false", "False", nil, 1, "1"} {
				extra := []any{"email", "ev@example.com"}
				if v != nil {
					extra = append(extra, "email_verified", v)
				}
				tok := mustToken(t, authenticate(t, env, "shop", "google", idTok("web-app", fmt.Sprintf("g-ev-%d", i), extra...)))
				if subOf(t, tok) == victim {
					t.Fatalf("email_verified %#v linked to the owner's account", v)
				}
			}
		})

		t.Run("the same subject under another provider name is another identity", func(t *testing.T) {
			g := subOf(t, mustToken(t, authenticate(t, env, "shop", "google", idTok("web-app", "shared-sub"))))
			c := subOf(t, mustToken(t, authenticate(t, env, "shop", "corp", idTok("corp-app", "shared-sub"))))
			if g == c {
				t.Fatal("one subject of two providers signed into one account")
			}
		})

		t.Run("a subject signs into a new account after its account was erased", func(t *testing.T) {
			first := mustToken(t, authenticate(t, env, "shop", "google", idTok("web-app", "g-erased", "email", "erased@example.com", "email_verified", true)))
			if r := rawCall(t, env, http.MethodDelete, "/api/shop/customer", nil, withToken(first)...); r.StatusCode != http.StatusNoContent {
				t.Fatalf("erase: %d %s", r.StatusCode, r.body)
			}
			again := mustToken(t, authenticate(t, env, "shop", "google", idTok("web-app", "g-erased")))
			if subOf(t, again) == subOf(t, first) {
				t.Fatal("the erased account came back")
			}
			if r := rawCall(t, env, http.MethodGet, "/api/shop/customer", nil, withToken(first)...); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the erased account's token: %d", r.StatusCode)
			}
		})

		t.Run("a scoped admin key touches nothing of another tenant", func(t *testing.T) {
			a := env.Admin(t)
			adm := a.Client(t, a.Key(t, "shop"))
			victim := subOf(t, env.SignIn(t, "other", "scoped.victim@example.com"))
			if r, _ := adm.GetCustomerByIdWithResponse(ctx, "other", victim); r.StatusCode() != http.StatusForbidden {
				t.Fatalf("get: %d", r.StatusCode())
			}
			if r, _ := adm.GetCustomerByIdWithResponse(ctx, "shop", victim); r.StatusCode() != http.StatusNotFound {
				t.Fatalf("other's customer through shop: %d", r.StatusCode())
			}
			if r, _ := adm.ExportCustomerWithResponse(ctx, "shop", victim); r.StatusCode() != http.StatusNotFound {
				t.Fatalf("export through shop: %d", r.StatusCode())
			}
			if r, _ := adm.RevokeCustomerSessionsWithResponse(ctx, "shop", victim); r.StatusCode() != http.StatusNotFound {
				t.Fatalf("revoke through shop: %d", r.StatusCode())
			}
			if r, _ := adm.EraseCustomerWithResponse(ctx, "shop", victim); r.StatusCode() != http.StatusNotFound {
				t.Fatalf("erase through shop: %d", r.StatusCode())
			}
			if r, _ := adm.ExportCustomerWithResponse(ctx, "other", victim); r.StatusCode() != http.StatusForbidden {
				t.Fatalf("export: %d", r.StatusCode())
			}
			if r, _ := adm.DeleteTenantWithResponse(ctx, "other", nil); r.StatusCode() != http.StatusForbidden {
				t.Fatalf("delete: %d", r.StatusCode())
			}
			other := "other"
			if r, _ := adm.ListAuditEntriesWithResponse(ctx, nil); r.StatusCode() != http.StatusOK {
				t.Fatalf("audit: %d", r.StatusCode())
			} else {
				for _, e := range r.JSON200.Items {
					if e.TenantId != "shop" {
						t.Fatalf("audit entry of %s", e.TenantId)
					}
				}
			}
			_ = other
			for _, p := range []string{"/admin/tenants/oth%65r/customers/" + victim, "/admin/tenants/%6Fther"} {
				res, body := adminGet(t, a, a.Key(t, "shop"), p)
				if res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusNotFound {
					t.Fatalf("%s: %d %s", p, res.StatusCode, body)
				}
			}
		})
	})
}

func adminGet(t *testing.T, a *apptest.Admin, key, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.Server.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := a.HTTP.Do(req) // the answer is checked against admin.openapi.yaml
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := make([]byte, 4096)
	n, _ := res.Body.Read(b)
	return res, string(b[:n])
}
