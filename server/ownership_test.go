package server_test

import (
	"encoding/json"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/token"
)

// The ownership rule, tried as an attacker would (README, "Security
// model"). Each test is one observation of the security review.

// signInPhone signs in by SMS code on tenant and returns the token.
func signInPhone(t *testing.T, env *apptest.Env, tenant, phone string) string {
	t.Helper()
	id := challengeID(t, post(t, env, "/api/"+tenant+"/customer/authenticate?provider=otp", `{"phoneNumber":"`+phone+`"}`))
	return complete(t, env, tenant, id, phone)
}

func subOf(t *testing.T, tok string) string {
	t.Helper()
	sub, _ := tokenPayload(t, tok)["sub"].(string)
	return sub
}

// startCorp starts customerd with one tenant, demo, signing in by code and
// with corp, an OpenID Connect provider at a local issuer; settings are
// corp's further settings ("trustEmail: true").
func startCorp(t *testing.T, dbURL, settings string) (*oidctest.Issuer, *apptest.Env) {
	t.Helper()
	iss := oidctest.New(t)
	if settings != "" {
		settings = ", " + settings
	}
	return iss, apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  demo:
    providers:
      otp: {type: otp}
      corp: {type: oidc, clientIds: [corp-app], issuer: %q, jwksUrl: %q, allowPrivateNetwork: true%s}
`, iss.URL(), iss.JWKSURL(), settings))
}

// withToken is the header pair of a bearer token.
func withToken(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// Observation 1: an unverified contact put on the attacker's account must
// not sign the victim into it.
func TestAnUnverifiedContactNeverSignsIntoSomeoneElsesAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss := oidctest.New(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  demo:
    providers:
      otp: {type: otp}
      corp: {type: oidc, clientIds: [corp-app], issuer: %q, jwksUrl: %q, allowPrivateNetwork: true}
  byphone: {identifier: phoneNumber}
`, iss.URL(), iss.JWKSURL()))

		t.Run("an email set by an SMS-proven attacker waits for its code; the victim gets an account of their own", func(t *testing.T) {
			attacker := signInPhone(t, env, "demo", "+33611111111")
			r := post(t, env, "/api/demo/customer", `{"email":"victim@example.com"}`, withToken(attacker)...)
			if r.StatusCode != http.StatusAccepted {
				t.Fatalf("a new email on a proven account: %d %s, want 202 (verify before apply)", r.StatusCode, r.body)
			}
			if me := customerOf(t, env, "demo", attacker); me["email"] != nil {
				t.Fatalf("the email was applied without its code: %v", me)
			}
			victim := env.SignIn(t, "demo", "victim@example.com")
			if subOf(t, victim) == subOf(t, attacker) {
				t.Fatal("the victim signed into the attacker's account")
			}
		})

		t.Run("the same from an identity-only account (an ID token without email)", func(t *testing.T) {
			attacker := mustToken(t, authenticate(t, env, "demo", "corp",
				map[string]any{"idToken": iss.Key("RS256").Sign(iss.Claims("corp-app", "attacker-sub"))}))
			r := post(t, env, "/api/demo/customer", `{"email":"victim2@example.com"}`, withToken(attacker)...)
			if r.StatusCode != http.StatusAccepted {
				t.Fatalf("a new email on an identity's account: %d %s, want 202", r.StatusCode, r.body)
			}
			if victim := env.SignIn(t, "demo", "victim2@example.com"); subOf(t, victim) == subOf(t, attacker) {
				t.Fatal("the victim signed into the attacker's account")
			}
		})

		t.Run("mirrored on a tenant identified by phone number", func(t *testing.T) {
			attacker := env.SignIn(t, "byphone", "attacker@example.com")
			r := post(t, env, "/api/byphone/customer", `{"phoneNumber":"+33622222222"}`, withToken(attacker)...)
			if r.StatusCode != http.StatusAccepted {
				t.Fatalf("a new phone number on a proven account: %d %s, want 202", r.StatusCode, r.body)
			}
			if victim := signInPhone(t, env, "byphone", "+33622222222"); subOf(t, victim) == subOf(t, attacker) {
				t.Fatal("the victim signed into the attacker's account")
			}
		})
	})
}

// Observation 2: someone else's phone number put unverified on an account
// must not block its owner's SMS sign-in.
func TestPhoneSquattingDoesNotBlockTheOwner(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const victimPhone = "+33633333333"
		// Anonymously, and unverified: the account has the number, nobody proved it.
		postOK(t, env, "/api/demo/customer", `{"email":"squatter@example.com","phoneNumber":"`+victimPhone+`"}`)
		squatter := stored(t, env, "demo", "squatter@example.com")

		victim := signInPhone(t, env, "demo", victimPhone)
		if subOf(t, victim) == squatter.ID {
			t.Fatal("the victim signed into the squatter's account")
		}
		if me := customerOf(t, env, "demo", victim); me["phoneNumber"] != victimPhone || me["phoneNumberVerified"] != true {
			t.Fatalf("the victim's account: %v", me)
		}
		if c := stored(t, env, "demo", "squatter@example.com"); c.Phone != nil {
			t.Fatalf("the number stayed on the squatter's account: %v", *c.Phone)
		}

		// A token holder cannot squat it either: the number waits for its code.
		holder := env.SignIn(t, "demo", "holder@example.com")
		if r := post(t, env, "/api/demo/customer", `{"phoneNumber":"+33644444444"}`, withToken(holder)...); r.StatusCode != http.StatusAccepted {
			t.Fatalf("a token holder's new phone number: %d %s, want 202", r.StatusCode, r.body)
		}
		if other := signInPhone(t, env, "demo", "+33644444444"); subOf(t, other) == subOf(t, holder) {
			t.Fatal("the number's owner signed into the token holder's account")
		}

		// An email the account was created with, never proven, is claimed by
		// whoever proves it first: the identifier of an account nobody proved.
		postOK(t, env, "/api/demo/customer", `{"email":"claim@example.com","firstName":"Cleo"}`)
		claimed := stored(t, env, "demo", "claim@example.com")
		if tok := env.SignIn(t, "demo", "claim@example.com"); subOf(t, tok) != claimed.ID {
			t.Fatal("proving the identifier of an account nobody proved did not claim it")
		}
	})
}

// Observation 3: a challenge is for one caller: a stranger naming the same
// address within the resend interval never gets it.
func TestAChallengeIsNeverHandedToAStranger(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		owner := env.SignIn(t, "demo", "owner3@example.com")
		r := post(t, env, "/api/demo/customer", `{"email":"new3@example.com"}`, withToken(owner)...)
		mine := challengeID(t, r)
		ownerCode := env.Logs.Code("new3@example.com")
		for _, path := range []string{"/api/demo/customer", "/api/demo/customer?flow=activation"} {
			r := post(t, env, path, `{"email":"new3@example.com","firstName":"Eve","lastName":"Stranger"}`)
			switch r.StatusCode {
			case http.StatusTooManyRequests:
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("%s: 429 without Retry-After", path)
				}
			case http.StatusAccepted:
				if id := decodeObject(t, r)["challengeId"]; id == mine {
					t.Fatalf("%s handed the owner's challenge to a stranger", path)
				}
			case http.StatusOK: // a new account of the stranger's, unproven: nothing of the owner's
			default:
				t.Fatalf("%s: %d %s", path, r.StatusCode, r.body)
			}
		}
		// The owner's code does not complete as "the newest code to new3@"
		// either: that form is for anonymous sign-ins, not for a token
		// holder's change.
		r = post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"email":"new3@example.com","code":"`+ownerCode+`"}`)
		mustProblem(t, r, http.StatusUnprocessableEntity)
		// The owner's own retry gets the live challenge back, and completes it:
		// the address leaves the stranger's account nobody proved.
		again := post(t, env, "/api/demo/customer", `{"email":"new3@example.com"}`, withToken(owner)...)
		if id := challengeID(t, again); id != mine {
			t.Fatalf("the owner's retry: %s, want the live challenge %s", id, mine)
		}
		if tok := exchange(t, env, "demo", mine, ownerCode); tok.StatusCode != http.StatusOK {
			t.Fatalf("the owner completes the change: %d %s", tok.StatusCode, tok.body)
		}
		if me := customerOf(t, env, "demo", owner); me["email"] != "new3@example.com" || me["emailVerified"] != true {
			t.Fatalf("the owner's account after the change: %v", me)
		}
	})
}

// Observation 4: a stranger's anonymous change held for an existing account
// only fills its empty fields: never a consent, never a value.
func TestAStrangersHeldChangeOnlyFillsEmptyFields(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo: {}
  partial: {checkInPolicy: partial, checkInPage: "https://shop.example/check-in"}
`)
		for _, tenant := range []string{"demo", "partial"} {
			t.Run(tenant, func(t *testing.T) {
				email := "owner4." + tenant + "@example.com"
				if r := post(t, env, "/api/"+tenant+"/customer", `{"email":"`+email+`","firstName":"Owner"}`); r.StatusCode/100 != 2 {
					t.Fatalf("create: %d %s", r.StatusCode, r.body)
				}
				env.Clock.Advance(61 * time.Second)
				id := challengeID(t, post(t, env, "/api/"+tenant+"/customer",
					`{"email":"`+email+`","consents_email":true,"consents_sms":true,"firstName":"Hacked","lastName":"Filled","isProspect":false}`))
				// The message says what completing it will fill.
				if fills, _ := sentTo(env, email)["fills"].([]any); !reflect.DeepEqual(fills, []any{"lastName"}) {
					t.Errorf("the message says it fills %v, want [lastName]", fills)
				}
				tok := complete(t, env, tenant, id, email)
				me := customerOf(t, env, tenant, tok)
				if me["consents_email"] != false || me["consents_sms"] != false || me["firstName"] != "Owner" ||
					me["lastName"] != "Filled" || me["isProspect"] != true {
					t.Fatalf("after the owner completed a stranger's change: %v", me)
				}
			})
		}
	})
}

// Observation 5: where the tenant asks for it, anonymous answers do not
// tell whether an account exists, and never show a contact the caller did
// not send.
func TestNoEnumerationUnderCheckInPolicies(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  full: {checkInPolicy: full}
  partial: {checkInPolicy: partial, checkInPage: "https://shop.example/check-in"}
`)
		for _, tenant := range []string{"full", "partial"} {
			t.Run(tenant, func(t *testing.T) {
				base := "/api/" + tenant + "/customer"
				known := "known5." + tenant + "@example.com"
				if r := post(t, env, base, `{"email":"`+known+`","phoneNumber":"+33655555555"}`); r.StatusCode != http.StatusAccepted {
					t.Fatalf("seed: %d %s", r.StatusCode, r.body)
				}
				env.Clock.Advance(61 * time.Second)
				for _, flow := range []string{"", "?flow=preregistration", "?flow=activation"} {
					env.Clock.Advance(61 * time.Second)
					fresh := fmt.Sprintf("fresh5.%s.%d@example.com", tenant, len(flow))
					body := `,"firstName":"A","lastName":"B"}`
					knownR := post(t, env, base+flow, `{"email":"`+known+`"`+body)
					freshR := post(t, env, base+flow, `{"email":"`+fresh+`"`+body)
					if knownR.StatusCode != freshR.StatusCode || knownR.StatusCode != http.StatusAccepted {
						t.Fatalf("flow %q: known %d, new %d: %s / %s", flow, knownR.StatusCode, freshR.StatusCode, knownR.body, freshR.body)
					}
					k, f := decodeObject(t, knownR), decodeObject(t, freshR)
					if !slices.Equal(keysOf(k), keysOf(f)) || k["channel"] != f["channel"] || k["attemptsLeft"] != f["attemptsLeft"] {
						t.Fatalf("flow %q: the answers differ:\n%s\n%s", flow, knownR.body, freshR.body)
					}
				}
				// A new email with an existing account's phone number: the code
				// goes to the email sent, not to that account.
				env.Clock.Advance(61 * time.Second)
				other := "other5." + tenant + "@example.com"
				r := post(t, env, base, `{"email":"`+other+`","phoneNumber":"+33655555555"}`)
				if d := decodeObject(t, r)["destination"]; r.StatusCode != http.StatusAccepted || d != "o***@e***.com" {
					t.Fatalf("a new email with a known phone number: %d %s", r.StatusCode, r.body)
				}
				if n := env.Logs.Sent("+33655555555"); n != 0 {
					t.Fatalf("the phone number got %d codes for someone else's request", n)
				}
			})
		}
	})
}

// Observation 12: an account without an email (an SMS sign-in on an
// email-identified tenant) can be updated: the identifier is required on
// anonymous creates only.
func TestAnAccountWithoutItsIdentifierCanBeUpdated(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := signInPhone(t, env, "demo", "+33666666666")
		r := post(t, env, "/api/demo/customer", `{"firstName":"Sam"}`, withToken(tok)...)
		if r.StatusCode != http.StatusOK || decodeObject(t, r)["firstName"] != "Sam" {
			t.Fatalf("update without an email: %d %s", r.StatusCode, r.body)
		}
		// Clearing the identifier an account has is still refused.
		tok = env.SignIn(t, "demo", "keep@example.com")
		mustProblem(t, post(t, env, "/api/demo/customer", `{"email":null}`, withToken(tok)...), http.StatusPreconditionFailed)
	})
}

// An ID token's verified email links the identity to an existing account
// only where the email proves that account: verified there, or the
// identifier of an account nobody proved.
func TestAVerifiedEmailClaimLinksOnlyWhereItProves(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss := oidctest.New(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  byphone:
    identifier: phoneNumber
    providers:
      otp: {type: otp}
      corp: {type: oidc, clientIds: [corp-app], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
  demo:
    providers:
      otp: {type: otp}
      corp: {type: oidc, clientIds: [corp-app], issuer: %[1]q, jwksUrl: %[2]q, allowPrivateNetwork: true}
`, iss.URL(), iss.JWKSURL()))
		idToken := func(sub, email string) map[string]any {
			c := iss.Claims("corp-app", sub)
			c["email"], c["email_verified"] = email, true
			return map[string]any{"idToken": iss.Key("RS256").Sign(c)}
		}

		// An account its owner proved by phone, with an email nobody proved on it.
		postOK(t, env, "/api/byphone/customer", `{"phoneNumber":"+33677700001","email":"loose@example.com"}`)
		owner := signInPhone(t, env, "byphone", "+33677700001")
		tok := mustToken(t, authenticate(t, env, "byphone", "corp", idToken("loose-sub", "loose@example.com")))
		if subOf(t, tok) == subOf(t, owner) {
			t.Fatal("an email that did not prove the account linked an identity to it")
		}
		if me := customerOf(t, env, "byphone", tok); me["email"] != "loose@example.com" || me["emailVerified"] != true {
			t.Fatalf("the identity's own account: %v", me)
		}
		if me := customerOf(t, env, "byphone", owner); me["email"] != nil {
			t.Fatalf("the email stayed on the phone owner's account: %v", me)
		}

		// The identifier of an account nobody proved: the identity claims it.
		postOK(t, env, "/api/demo/customer", `{"email":"unclaimed@example.com","firstName":"Una"}`)
		unclaimed := stored(t, env, "demo", "unclaimed@example.com")
		tok = mustToken(t, authenticate(t, env, "demo", "corp", idToken("una-sub", "unclaimed@example.com")))
		if subOf(t, tok) != unclaimed.ID {
			t.Fatal("the identity did not claim the account nobody proved")
		}
	})
}

// trustEmail vouches for an email whose issuer says nothing of it, never for
// one it says is unverified: an ID token with email_verified false (or
// "false") for a victim's verified email gets an account of its own. Found
// by an audit: trustEmail made every token's email verified, and Google,
// Auth0 or Keycloak tokens for an address nobody confirmed, saying so,
// signed into the account where that address is verified.
func TestATrustedIssuersUnverifiedEmailNeverLinks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, env := startCorp(t, dbURL, "trustEmail: true")
		signIn := func(sub, email string, verified ...any) string {
			c := iss.Claims("corp-app", sub)
			c["email"] = email
			if len(verified) > 0 {
				c["email_verified"] = verified[0]
			}
			return mustToken(t, authenticate(t, env, "demo", "corp", map[string]any{"idToken": iss.Key("RS256").Sign(c)}))
		}
		const victim = "trusted.victim@example.com"
		owner := env.SignIn(t, "demo", victim)
		before := customerOf(t, env, "demo", owner)
		for i, said := range []any{false, "false"} {
			tok := signIn(fmt.Sprintf("attacker-%d", i), victim, said)
			if subOf(t, tok) == subOf(t, owner) {
				t.Fatalf("email_verified %#v with trustEmail signed into the victim's account", said)
			}
			if me := customerOf(t, env, "demo", tok); me["email"] != nil || me["emailVerified"] != false {
				t.Fatalf("email_verified %#v: the attacker's own account holds %v", said, me)
			}
		}
		if after := customerOf(t, env, "demo", owner); !reflect.DeepEqual(after, before) {
			t.Fatalf("the victim's account changed:\n%v\nwas\n%v", after, before)
		}
		// An email the issuer says nothing of is trusted, as the setting says.
		if tok := signIn("silent", victim); subOf(t, tok) != subOf(t, owner) {
			t.Fatal("trustEmail did not vouch for an email without email_verified")
		}
	})
}

// A token holder cannot remove the account's only verified contact (no
// identity linked): the account would become one nobody ever proved, whose
// contacts change without a code and which the first prover of its
// identifier claims, while the remover's token still opens it. Found by an
// audit: an attacker cleared their own number, put a victim's email on the
// account (applied at once, unverified), and the victim's first sign-in
// with that email landed in the account the attacker's token opened.
func TestTheOnlyVerifiedContactCannotBeRemoved(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const victim = "victim.claim@example.com" // no account at this brand yet
		attacker := signInPhone(t, env, "demo", "+33699990002")
		r := post(t, env, "/api/demo/customer", `{"phoneNumber":""}`, withToken(attacker)...)
		if r.StatusCode != http.StatusPreconditionFailed || !strings.Contains(string(r.body), "only verified contact") {
			t.Fatalf("remove the only verified number: %d %s, want 412", r.StatusCode, r.body)
		}
		me := decodeObject(t, rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(attacker)...))
		if me["phoneNumber"] != "+33699990002" || me["phoneNumberVerified"] != true {
			t.Fatalf("the refused removal changed the account: %v", me)
		}
		// The victim's email is held behind a code to the victim, not applied.
		if r := post(t, env, "/api/demo/customer", `{"email":"`+victim+`"}`, withToken(attacker)...); r.StatusCode != http.StatusAccepted {
			t.Fatalf("the victim's email on the attacker's account: %d %s, want 202 (verify-before-apply)", r.StatusCode, r.body)
		}
		env.Clock.Advance(61 * time.Second)
		if v := env.SignIn(t, "demo", victim); subOf(t, v) == subOf(t, attacker) {
			t.Errorf("the victim's first sign-in put them into the attacker's account (%s)", subOf(t, v))
		}
		// With a second verified contact, either may go.
		both := signInPhone(t, env, "demo", "+33699990004")
		r = post(t, env, "/api/demo/customer", `{"email":"both@example.com"}`, withToken(both)...)
		complete(t, env, "demo", challengeID(t, r), "both@example.com")
		postOK(t, env, "/api/demo/customer", `{"phoneNumber":""}`, withToken(both)...)
	})
}

// Erasing an account forgets the codes, wrong-code counters and resend
// waits only of the contacts it proved. Found by an audit: it forgot those
// of every contact on it, so an attacker who put an address nobody holds on
// an account of their own (unverified), spent that address's day of wrong
// codes and erased the account got a fresh day of guesses at once.
func TestErasingAnAccountKeepsTheLimitsOfAnAddressItNeverProved(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo:
    otp: {maxAttempts: 5, maxFailuresPerDay: 5}
`)
		if now := env.Clock.Now().UTC(); now.Add(15*time.Minute).Day() != now.Day() {
			env.Clock.Advance(20 * time.Minute)
		}
		const victim = "+33699990001" // nobody's account has it yet
		const otp = "/api/demo/customer/authenticate?provider=otp"
		// The attacker's account, with the victim's number on it, unverified.
		postOK(t, env, "/api/demo/customer", `{"email":"mallory@example.com","phoneNumber":"`+victim+`"}`)
		attacker := env.SignIn(t, "demo", "mallory@example.com") // claims it

		// A day's worth of wrong codes for the victim's number: locked.
		id := challengeID(t, post(t, env, otp, `{"phoneNumber":"`+victim+`"}`))
		code := env.Logs.Code(victim)
		for range 5 {
			mustProblem(t, exchange(t, env, "demo", id, notCode(code)), http.StatusUnprocessableEntity)
		}
		env.Clock.Advance(61 * time.Second)
		mustProblem(t, post(t, env, otp, `{"phoneNumber":"`+victim+`"}`), http.StatusTooManyRequests)

		// The attacker erases their own account...
		if r := rawCall(t, env, http.MethodDelete, "/api/demo/customer", nil, withToken(attacker)...); r.StatusCode != http.StatusNoContent {
			t.Fatalf("erase: %d %s", r.StatusCode, r.body)
		}
		// ...and the victim's number must still be locked for the day.
		if r := post(t, env, otp, `{"phoneNumber":"`+victim+`"}`); r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("after the attacker erased an account that only carried the victim's number unverified, "+
				"a code for it: %d %s, want 429 (the day's wrong codes were forgotten: a fresh day of guesses)", r.StatusCode, r.body)
		}
	})
}

// Claiming an account nobody proved (the ownership rule's one exception)
// makes every token issued for it before refused: whoever held one is not
// the person who just proved it. No sign-in issues such a token today (a
// token holder cannot remove the last proof, above); this is the second
// line, tried with a token the tenant signs for the account directly.
func TestClaimingAnAccountRefusesItsEarlierTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const owner = "claimed.owner@example.com"
		postOK(t, env, "/api/demo/customer", `{"email":"`+owner+`","firstName":"Planted"}`)
		planted := stored(t, env, "demo", owner)
		earlier, err := env.App.Tokens.Issue(ctx, "demo", token.Claims{Subject: planted.ID, Provider: "otp", AMR: []string{"otp"}}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(earlier)...); r.StatusCode != http.StatusOK {
			t.Fatalf("the earlier token before the claim: %d %s", r.StatusCode, r.body)
		}
		// The next second of the wall clock, which tokens are issued by
		// (the test clock, which accounts are written by, is not moved).
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		mine := env.SignIn(t, "demo", owner)
		if subOf(t, mine) != planted.ID {
			t.Fatalf("the owner's sign-in did not claim the account")
		}
		if r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(earlier)...); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the earlier token after the claim: %d %s, want 401", r.StatusCode, r.body)
		}
		if r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(mine)...); r.StatusCode != http.StatusOK {
			t.Fatalf("the claimer's token, issued in the claim's second: %d %s", r.StatusCode, r.body)
		}
	})
}

// A stranger who names an existing account sends its owner a real code,
// whose message says what the stranger's change fills: the account fields
// by name, the free-form properties only counted. Found by an audit: their
// names, the stranger's own text (line breaks included), were written into
// the owner's message beside a genuine code.
func TestAStrangerWritesNoTextIntoTheOwnersCodeMessage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		email := "owner.fills@example.com"
		if r := post(t, env, "/api/demo/customer", `{"email":"`+email+`","firstName":"Owner"}`); r.StatusCode/100 != 2 {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		env.Clock.Advance(61 * time.Second)
		lure := []string{
			"\r\n\r\nSECURITY ALERT: your account will be closed.",
			"To keep it, call +44 20 7946 0000 and read",
			"out the code above to our agent, or visit",
			"https://acme-support.evil.example/verify",
		}
		var extras []string
		for _, l := range lure {
			extras = append(extras, fmt.Sprintf("%q:true", l))
		}
		challengeID(t, post(t, env, "/api/demo/customer", `{"email":"`+email+`",`+strings.Join(extras, ",")+`}`))
		sent := sentTo(env, email)
		if fills := fmt.Sprint(sent["fills"]); strings.Contains(fills, "evil.example") || strings.Contains(fills, "\n") {
			t.Fatalf("the owner's code message carries the stranger's text: %q", fills)
		}
		if sent["moreFills"] != float64(len(lure)) {
			t.Fatalf("the message counts %v other properties, want %d: %v", sent["moreFills"], len(lure), sent)
		}
	})
}

// optInTenant's flow optin sets its mark of a step passed, optInConfirmedAt.
const optInTenant = `
tenants:
  demo:
    flows:
      optin:
        - verified: true
        - set: {optInConfirmedAt: $now, segment: confirmed}
        - emit: Customer:Activated
          whenChanged: true
`

// What a tenant's flow sets (after its verified step: the brand's proof that
// the step passed, as activatedAt is for activation) is the flow's to
// write, never a request's. Found by an audit: any caller wrote it as a
// free-form property, with no code, and the flow's "$now, once" then never
// overwrote the forged value.
func TestACallerCannotWriteWhatAFlowSets(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, optInTenant)
		email := "forger@example.com"
		r := post(t, env, "/api/demo/customer", `{"email":"`+email+`","optInConfirmedAt":"2019-01-01T00:00:00Z","segment":"confirmed"}`)
		if r.StatusCode/100 != 2 {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		c := stored(t, env, "demo", email)
		if c.EmailVerified {
			t.Fatal("nobody verified anything")
		}
		if v, ok := c.Profile["optInConfirmedAt"]; ok {
			t.Fatalf("an anonymous caller, with no code, stored the flow's own proof optInConfirmedAt=%v (segment=%v)", v, c.Profile["segment"])
		}
	})
}

// A field's name in another case is never a free-form property beside the
// field: "ActivatedAt" or "EmailVerified" is ignored as the read-only field
// is, "FirstName" refused naming firstName. Found by an audit: they were
// stored and answered (and sent to webhooks), and a brand's receiver that
// matches names without case (encoding/json does) read "ActivatedAt" as
// activatedAt on an account never activated.
func TestACaseVariantOfAFieldIsNotAProperty(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		r := post(t, env, "/api/demo/customer", `{"email":"notactive@example.com","ActivatedAt":"2020-01-01T00:00:00Z","EmailVerified":true}`)
		if r.StatusCode/100 != 2 {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		var brand struct {
			ActivatedAt *time.Time `json:"activatedAt"`
		}
		if err := json.Unmarshal(r.body, &brand); err != nil {
			t.Fatal(err)
		}
		if brand.ActivatedAt != nil {
			t.Fatalf("a never-activated account reads as activated at %s: %s", brand.ActivatedAt, r.body)
		}
		r = post(t, env, "/api/demo/customer", `{"email":"named@example.com","FirstName":"Ada"}`)
		if r.StatusCode != http.StatusPreconditionFailed || !strings.Contains(string(r.body), "send firstName") {
			t.Fatalf("FirstName: %d %s, want 412 naming firstName", r.StatusCode, r.body)
		}
	})
}

// What a tenant's flow sets is the flow's in any case: "OptInConfirmedAt"
// is ignored as optInConfirmedAt is, whether a caller posts it or a
// stranger's held change would fill it when the owner signs in. Found by an
// audit: it was stored, answered and sent in Customer:Upserted, and a
// brand's receiver matching names without case read a double opt-in that
// never happened.
func TestACaseVariantOfWhatAFlowSetsIsNotAProperty(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, optInTenant)
		forged := func(t *testing.T, email string) {
			t.Helper()
			for name, v := range stored(t, env, "demo", email).Profile {
				if strings.EqualFold(name, "optInConfirmedAt") {
					t.Fatalf("%s holds %s=%v, and nobody confirmed anything", email, name, v)
				}
			}
		}
		t.Run("a caller's", func(t *testing.T) {
			email := "casevariant@example.com"
			r := post(t, env, "/api/demo/customer", `{"email":"`+email+`","OptInConfirmedAt":"2019-01-01T00:00:00Z"}`)
			if r.StatusCode/100 != 2 {
				t.Fatalf("create: %d %s", r.StatusCode, r.body)
			}
			var brand struct {
				OptInConfirmedAt *string `json:"optInConfirmedAt"`
			}
			if err := json.Unmarshal(r.body, &brand); err != nil {
				t.Fatal(err)
			}
			if brand.OptInConfirmedAt != nil {
				t.Fatalf("the answer reads as opted in at %s: %s", *brand.OptInConfirmedAt, r.body)
			}
			forged(t, email)
		})
		t.Run("a stranger's, filled at the owner's sign-in", func(t *testing.T) {
			email := "casevariant.owner@example.com"
			postOK(t, env, "/api/demo/customer", `{"email":"`+email+`"}`)
			env.Clock.Advance(61 * time.Second)
			id := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"`+email+`","OptInConfirmedAt":"2019-01-01T00:00:00Z"}`))
			complete(t, env, "demo", id, email)
			forged(t, email)
		})
	})
}

// Free-form names one fold apart are one property: the newest spelling
// replaces the stored one. Found by an audit: {"Foo":1} then {"foo":2} kept
// both, and posting the account's answer back was refused (its members
// repeat).
func TestAPropertyInAnotherCaseIsTheSameProperty(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "spelling@example.com")
		postOK(t, env, "/api/demo/customer", `{"Foo":1}`, withToken(tok)...)
		postOK(t, env, "/api/demo/customer", `{"foo":2}`, withToken(tok)...)
		r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(tok)...)
		me := decodeObject(t, r)
		if _, old := me["Foo"]; old || me["foo"] != 2.0 {
			t.Fatalf("after Foo then foo: %s", r.body)
		}
		if back := post(t, env, "/api/demo/customer", string(r.body), withToken(tok)...); back.StatusCode != http.StatusOK {
			t.Fatalf("posting the answer back: %d %s", back.StatusCode, back.body)
		}
		// A stranger's held change fills empty fields only: "FOO" is not one.
		env.Clock.Advance(61 * time.Second)
		id := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"spelling@example.com","FOO":3}`))
		me = customerOf(t, env, "demo", complete(t, env, "demo", id, "spelling@example.com"))
		if _, planted := me["FOO"]; planted || me["foo"] != 2.0 {
			t.Fatalf("after a stranger's FOO filled at the owner's sign-in: %v", me)
		}
	})
}

// A profile stored before one spelling of a name was kept may hold several
// (Foo, FOO and foo): a free-form property sent in one spelling replaces
// every stored one, and the answer can be posted back. Found by a review: the
// update removed one other spelling, picked at random, and the rest stayed.
func TestAStoredCaseVariantCanBeRemoved(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		email := "older@example.com"
		tok := env.SignIn(t, "demo", email)
		c := stored(t, env, "demo", email)
		c.Profile["Foo"], c.Profile["FOO"], c.Profile["foo"] = 1, 2, 3 // as versions before wrote them
		if err := env.App.Store.UpdateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
		postOK(t, env, "/api/demo/customer", `{"foo":4}`, withToken(tok)...)
		got := map[string]any{}
		for name, v := range stored(t, env, "demo", email).Profile {
			if strings.EqualFold(name, "foo") {
				got[name] = v
			}
		}
		if len(got) != 1 || fmt.Sprint(got["foo"]) != "4" {
			t.Fatalf("after foo: 4 the account holds %v, want foo alone", got)
		}
		r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(tok)...)
		if back := post(t, env, "/api/demo/customer", string(r.body), withToken(tok)...); back.StatusCode != http.StatusOK {
			t.Fatalf("posting the answer back: %d %s", back.StatusCode, back.body)
		}
	})
}

// An email written with "é" (U+00E9) or with e and a combining accent
// (U+0301, what some keyboards send) is one address and one account: the
// second spelling of a known address is answered as the known one. Found by
// an audit: emails were lower-cased, not composed, and made two accounts.
func TestOneAddressInTwoUnicodeFormsIsOneAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		postOK(t, env, "/api/demo/customer", `{"email":"jos\u00e9@example.com"}`)
		r := post(t, env, "/api/demo/customer", `{"email":"jose\u0301@example.com"}`)
		if r.StatusCode == http.StatusOK {
			t.Fatalf("the decomposed spelling made a second account: %s", r.body)
		}
	})
}

// Where the tenant's policy is that nobody learns who has an account
// (checkInPolicy partial or full), a token holder's contact change to an
// address verified on another account is answered as one to a free address
// (202, the same shape), and no code goes to it. Found by an audit: the
// change answered 412 for a verified address and 202 otherwise. Under
// none, the 412 stays (TestVerifyBeforeApply).
func TestAContactChangeDoesNotTellWhoHasAnAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  full: {checkInPolicy: full}
`)
		const taken = "known.customer@example.com"
		env.SignIn(t, "full", taken) // a shopper of the brand
		prober := env.SignIn(t, "full", "prober@example.com")
		env.Clock.Advance(61 * time.Second)
		before := env.Logs.Sent(taken)
		known := post(t, env, "/api/full/customer", `{"email":"`+taken+`"}`, withToken(prober)...)
		unknown := post(t, env, "/api/full/customer", `{"email":"nobody.here@example.com"}`, withToken(prober)...)
		if known.StatusCode != http.StatusAccepted || unknown.StatusCode != http.StatusAccepted {
			t.Fatalf("a verified address %d %s, a free one %d %s: want 202 both", known.StatusCode, known.body, unknown.StatusCode, unknown.body)
		}
		k, u := decodeObject(t, known), decodeObject(t, unknown)
		if !reflect.DeepEqual(slices.Sorted(maps.Keys(k)), slices.Sorted(maps.Keys(u))) {
			t.Fatalf("the two answers differ in shape: %v and %v", k, u)
		}
		if env.Logs.Sent(taken) != before {
			t.Fatal("a code went to another account's verified address")
		}
		// Nobody can complete it: the address stays the other account's.
		mustProblem(t, exchange(t, env, "full", k["challengeId"].(string), "000000"), http.StatusUnprocessableEntity)
		if me := customerOf(t, env, "full", prober); me["email"] != "prober@example.com" {
			t.Fatalf("the prober's account: %v", me)
		}
	})
}

// An address whose domain is another domain for mail is another address
// here too. Found by the tenth audit: the domain was lower-cased by Go's
// simple case mapping, which turns "İ" (U+0130) into "i" and "ẞ" (U+1E9E)
// into "ß", where IDNA, which decides where mail goes, makes "i̇" and "ss"
// of them: an identity provider that verified victim@gmaİl.com (its mail
// delivered to a domain its holder registered, xn--gmai-…) linked to the
// account of victim@gmail.com.
func TestAnAddressOnAnotherDomainForMailIsAnotherAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, env := startCorp(t, dbURL, "")
		for i, c := range []struct{ owner, lookalike string }{
			{"victim@gmail.com", "victim@gma\u0130l.com"},
			{"victim@\u00dftrasse.example", "victim@\u1e9etrasse.example"},
		} {
			id := challengeID(t, post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"email":"`+c.owner+`"}`))
			owner := complete(t, env, "demo", id, c.owner)
			claims := iss.Claims("corp-app", fmt.Sprintf("lookalike-%d", i))
			claims["email"], claims["email_verified"] = c.lookalike, true
			tok := mustToken(t, authenticate(t, env, "demo", "corp", map[string]any{"idToken": iss.Key("RS256").Sign(claims)}))
			if subOf(t, tok) == subOf(t, owner) {
				t.Fatalf("an identity verified for %q signed into the account of %q", c.lookalike, c.owner)
			}
			if me := customerOf(t, env, "demo", tok); me["email"] == c.owner {
				t.Fatalf("the identity's own account took %q: %v", c.owner, me)
			}
		}
	})
}

// A stranger's request naming a flow cannot keep the owner from signing in
// with the code it sent them. Found by the tenth audit: the flow held for
// the owner's account ran when the owner typed that code, judging the
// account without what a stranger may not fill (a phone number, a consent);
// a flow requiring one answered the sign-in 412 (outside the contract) with
// no token, and a request a minute held the owner's own code request at
// 429, so the owner could not sign in at all.
func TestAStrangersFlowCannotKeepTheOwnerFromSigningIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  shop:
    activationFields: [firstName, lastName, phoneNumber]
    providers: {otp: {type: otp}}
  shopbyphone:
    identifier: phoneNumber
    activationFields: [email]
    providers: {otp: {type: otp}}
`)
		for _, c := range []struct{ tenant, field, owner, stranger string }{
			{"shop", "email", "owner10@example.com", `{"email":"owner10@example.com","firstName":"Eve","lastName":"S","phoneNumber":"+33611110010"}`},
			{"shopbyphone", "phoneNumber", "+33611110011", `{"phoneNumber":"+33611110011","email":"eve10@example.com"}`},
		} {
			first := challengeID(t, post(t, env, "/api/"+c.tenant+"/customer/authenticate?provider=otp", `{"`+c.field+`":"`+c.owner+`"}`))
			owner := complete(t, env, c.tenant, first, c.owner)
			env.Clock.Advance(2 * time.Minute)

			challengeID(t, post(t, env, "/api/"+c.tenant+"/customer?flow=activation", c.stranger))
			mustProblem(t, post(t, env, "/api/"+c.tenant+"/customer/authenticate?provider=otp", `{"`+c.field+`":"`+c.owner+`"}`),
				http.StatusTooManyRequests)
			r := post(t, env, "/api/"+c.tenant+"/customer/authenticate?provider=otp",
				`{"`+c.field+`":"`+c.owner+`","code":"`+env.Logs.Code(c.owner)+`"}`)
			if subOf(t, mustToken(t, r)) != subOf(t, owner) {
				t.Fatalf("%s: the owner's code signed into another account", c.tenant)
			}
		}
	})
}

// A stranger's request naming a flow that sets a list cannot keep the owner
// of an account nobody proved yet from signing in with the code it sent
// them. Found by an audit: the held flow runs on the owner's claim, and its
// set step compared the list the account held with its own by ==, which
// panicked: the owner's code answered 500, for as long as the stranger
// asked again each minute.
func TestAStrangersFlowSettingAListCannotKeepTheOwnerFromSigningIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  shop:
    providers: {otp: {type: otp}}
    flows:
      signup:
        - set: {interests: [web], prefs: {size: 42}}
`)
		const owner = "owner.list@example.com"
		postOK(t, env, "/api/shop/customer?flow=signup", `{"email":"`+owner+`"}`)
		env.Clock.Advance(2 * time.Minute)
		challengeID(t, post(t, env, "/api/shop/customer?flow=signup", `{"email":"`+owner+`"}`)) // the stranger
		r := post(t, env, "/api/shop/customer/authenticate?provider=otp", `{"email":"`+owner+`","code":"`+env.Logs.Code(owner)+`"}`)
		me := customerOf(t, env, "shop", mustToken(t, r))
		if me["email"] != owner || me["emailVerified"] != true {
			t.Fatalf("the owner's code signed into %v", me)
		}
	})
}
