package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// doubleOptIn is a tenant flow whose challenge step stands for the shopper's
// confirmation: the steps after it run once the code it asked for is entered.
const doubleOptIn = `
    flows:
      doubleOptIn:
        - challenge: code
        - set: {optInConfirmedAt: $now}
        - emit: Customer:Activated
          whenChanged: true
      other:
        - challenge: code
`

// activatedEvents counts the Customer:Activated events stored for customer.
func activatedEvents(t *testing.T, env *apptest.Env, tenant, customer string) int {
	t.Helper()
	n := 0
	for _, e := range eventsOf(t, env, tenant) {
		if e.Type == "Customer:Activated" && e.CustomerID == customer {
			n++
		}
	}
	return n
}

// Found by an audit: completing the code of a flow's challenge step ran the
// flow again, which stopped at the same step, so the steps after it (a
// double opt-in's mark and event) never ran. The completion of the flow's
// own challenge passes the step, in the transaction that uses the code up;
// whoever asked (anonymous, new or existing account, under every check-in
// policy, or a token holder) and whatever the policy, the shopper who enters
// the code is confirmed.
func TestCompletingAFlowsChallengeRunsTheStepsAfterIt(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  none:
    checkInPolicy: none`+doubleOptIn+`
  partial:
    checkInPolicy: partial
    checkInPage: https://shop.example/check-in`+doubleOptIn+`
  full:
    checkInPolicy: full`+doubleOptIn+`
`)
		// The shopper enters the code of the challenge the flow's request got.
		confirmed := func(t *testing.T, tenant, email, tok string) string {
			t.Helper()
			me := customerOf(t, env, tenant, tok)
			at, _ := me["optInConfirmedAt"].(string)
			if at == "" || me["emailVerified"] != true {
				t.Fatalf("after the code: optInConfirmedAt %v, emailVerified %v", me["optInConfirmedAt"], me["emailVerified"])
			}
			if n := activatedEvents(t, env, tenant, me["id"].(string)); n != 1 {
				t.Fatalf("%d Customer:Activated events, want 1", n)
			}
			return at
		}
		for _, policy := range []string{"none", "partial", "full"} {
			t.Run("an anonymous new account under check-in "+policy, func(t *testing.T) {
				email := "new.optin." + policy + "@example.com"
				r := post(t, env, "/api/"+policy+"/customer?flow=doubleOptIn", `{"email":"`+email+`"}`)
				id := challengeID(t, r)
				if c := stored(t, env, policy, email); c.Profile["optInConfirmedAt"] != nil {
					t.Fatalf("confirmed before the code: %v", c.Profile)
				}
				confirmed(t, policy, email, complete(t, env, policy, id, email))
			})
			t.Run("an anonymous caller naming an existing account under check-in "+policy, func(t *testing.T) {
				email := "known.optin." + policy + "@example.com"
				env.SignIn(t, policy, email)
				env.Clock.Advance(61 * time.Second) // past the sign-in's resend interval
				id := challengeID(t, post(t, env, "/api/"+policy+"/customer?flow=doubleOptIn", `{"email":"`+email+`"}`))
				confirmed(t, policy, email, complete(t, env, policy, id, email))
			})
		}
		t.Run("a token holder, and naming the flow again asks for a code again", func(t *testing.T) {
			const email = "holder.optin@example.com"
			tok := env.SignIn(t, "none", email)
			env.Clock.Advance(61 * time.Second)
			id := challengeID(t, post(t, env, "/api/none/customer?flow=doubleOptIn", `{}`, withToken(tok)...))
			at := confirmed(t, "none", email, complete(t, env, "none", id, email))

			// The step asks on every request: the mark passed is no pass.
			env.Clock.Advance(61 * time.Second)
			id = challengeID(t, post(t, env, "/api/none/customer?flow=doubleOptIn", `{}`, withToken(tok)...))
			if again := confirmed(t, "none", email, complete(t, env, "none", id, email)); again != at {
				t.Fatalf("confirmed again at %s, first at %s", again, at)
			}
		})
	})
}

// The challenge step of a flow passes only with the code of that flow's own
// challenge: a sign-in's code, a contact change's code (even one asked
// through the flow) and another flow's code never write what comes after it.
func TestOnlyAFlowsOwnCodePassesItsChallengeStep(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo:`+doubleOptIn)
		unconfirmed := func(t *testing.T, email string) {
			t.Helper()
			c := stored(t, env, "demo", email)
			if c.Profile["optInConfirmedAt"] != nil || activatedEvents(t, env, "demo", c.ID) != 0 {
				t.Fatalf("confirmed without the flow's own code: %v", c.Profile)
			}
		}
		t.Run("a sign-in's code", func(t *testing.T) {
			const email = "signin.optin@example.com"
			tok := env.SignIn(t, "demo", email)
			unconfirmed(t, email)
			// Naming the flow with the token asks for a code, and writes nothing after the step.
			env.Clock.Advance(61 * time.Second)
			r := post(t, env, "/api/demo/customer?flow=doubleOptIn", `{}`, withToken(tok)...)
			challengeID(t, r)
			unconfirmed(t, email)
		})
		t.Run("a contact change's code", func(t *testing.T) {
			const email, moved = "change.optin@example.com", "moved.optin@example.com"
			tok := env.SignIn(t, "demo", email)
			r := post(t, env, "/api/demo/customer?flow=doubleOptIn", `{"email":"`+moved+`"}`, withToken(tok)...)
			complete(t, env, "demo", challengeID(t, r), moved)
			unconfirmed(t, moved)
		})
		t.Run("the flow's code typed into a sign-in form", func(t *testing.T) {
			// A stranger names the flow for the owner's address; the owner,
			// whose own request for a code waits out the minute, types the
			// code received with their address: signed in, nothing confirmed.
			const email = "typed.optin@example.com"
			env.SignIn(t, "demo", email)
			env.Clock.Advance(61 * time.Second)
			challengeID(t, post(t, env, "/api/demo/customer?flow=doubleOptIn", `{"email":"`+email+`"}`))
			mustToken(t, post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"email":"`+email+`","code":"`+env.Logs.Code(email)+`"}`))
			unconfirmed(t, email)
		})
		t.Run("another flow's code", func(t *testing.T) {
			const email = "other.optin@example.com"
			tok := env.SignIn(t, "demo", email)
			env.Clock.Advance(61 * time.Second)
			r := post(t, env, "/api/demo/customer?flow=other", `{}`, withToken(tok)...)
			if r.StatusCode != http.StatusAccepted {
				t.Fatalf("other: %d %s", r.StatusCode, r.body)
			}
			complete(t, env, "demo", challengeID(t, r), email)
			unconfirmed(t, email)
		})
	})
}

// A flow without a challenge step (or its steps before one) runs on the
// completion of a code for a proven account only when the code comes back
// with its challenge's id, as its caller's form or its link sends it. Found by an audit: a
// stranger named such a flow (a newsletter's consent, an activation) for
// an owner's address, and the owner, typing the code received into a
// sign-in form as {email, code}, was subscribed and activated by it. A
// typed code still runs it on an account it proves for the first time.
func TestAStrangersFlowSetsNothingOnTheOwnersSignIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo:
    flows:
      subscribe:
        - set: {consents_email: true, newsletterSince: $now}
        - emit: Customer:Activated
`)
		for _, flow := range []string{"subscribe", "activation"} {
			t.Run(flow, func(t *testing.T) {
				email := flow + ".owner@example.com"
				env.SignIn(t, "demo", email)
				env.Clock.Advance(61 * time.Second)
				// The stranger fills the empty fields activation requires, as a held change may.
				challengeID(t, post(t, env, "/api/demo/customer?flow="+flow, `{"email":"`+email+`","firstName":"Mallory","lastName":"Stranger"}`))
				mustToken(t, post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"email":"`+email+`","code":"`+env.Logs.Code(email)+`"}`))
				c := stored(t, env, "demo", email)
				if c.Profile["consents_email"] != false || c.Profile["newsletterSince"] != nil || c.Profile["isProspect"] != true ||
					c.Profile["activatedAt"] != nil || activatedEvents(t, env, "demo", c.ID) != 0 {
					t.Errorf("the stranger's flow ran on the owner's sign-in: %v", c.Profile)
				}
			})
		}
		t.Run("a typed code claiming an account nobody proved", func(t *testing.T) {
			// An upstream-only client: it creates the account, names the
			// flow, and sends the code with the address, having no challenge id.
			const email = "upstream.subscriber@example.com"
			if r := post(t, env, "/api/demo/customer", `{"email":"`+email+`"}`); r.StatusCode != http.StatusOK {
				t.Fatalf("create: %d %s", r.StatusCode, r.body)
			}
			challengeID(t, post(t, env, "/api/demo/customer?flow=subscribe", `{"email":"`+email+`"}`))
			mustToken(t, post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"email":"`+email+`","code":"`+env.Logs.Code(email)+`"}`))
			if c := stored(t, env, "demo", email); c.Profile["consents_email"] != true || activatedEvents(t, env, "demo", c.ID) != 1 {
				t.Errorf("the flow did not run on the claiming code: %v", c.Profile)
			}
		})
		t.Run("its own caller's code", func(t *testing.T) {
			const email = "subscriber@example.com"
			env.SignIn(t, "demo", email)
			env.Clock.Advance(61 * time.Second)
			complete(t, env, "demo", challengeID(t, post(t, env, "/api/demo/customer?flow=subscribe", `{"email":"`+email+`"}`)), email)
			if c := stored(t, env, "demo", email); c.Profile["consents_email"] != true || activatedEvents(t, env, "demo", c.ID) != 1 {
				t.Errorf("the flow did not run on its own challenge's completion: %v", c.Profile)
			}
		})
	})
}
