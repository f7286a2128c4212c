package server_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

// A shopper signed in with a provider that proved no contact (no email, or
// one the provider does not say is verified) holds a token to an account
// with a linked identity and no verified email or phone number: a flow
// step that wants a code (verified: true, challenge: code) has nowhere to
// send it. Found by an audit: the request's change and its events were
// committed, then the caller was answered an error (503). The answer is a
// 412 naming the contact to verify, and nothing is written.
func TestAFlowNeedingACodeOnAnAccountWithNoVerifiedContactWritesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss := oidctest.New(t)
		env := apptest.Start(t, dbURL, `
tenants:
  shop:
    providers:
      otp: {type: otp}
      google: {type: google, clientIds: [web-app], issuer: "`+iss.URL()+`", jwksUrl: "`+iss.JWKSURL()+`", allowPrivateNetwork: true}
    flows:
      doubleOptIn:
        - challenge: code
        - set: {optInConfirmedAt: $now}
`)
		for _, tc := range []struct {
			name, sub, flow string
			claims          []any
		}{
			{"activation, no email from the provider", "g-no-email", "activation", nil},
			{"activation, an email the provider does not say is verified", "g-unverified", "activation",
				[]any{"email", "unverified.google@example.com", "email_verified", false}},
			{"a challenge step, no email from the provider", "g-no-email-optin", "doubleOptIn", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := iss.Claims("web-app", tc.sub)
				for i := 0; i+1 < len(tc.claims); i += 2 {
					c[tc.claims[i].(string)] = tc.claims[i+1]
				}
				tok := mustToken(t, authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(c)}))
				id := subOf(t, tok)
				before, err := env.App.Store.Customer(ctx, "shop", id)
				if err != nil {
					t.Fatal(err)
				}
				eventsBefore := eventsOf(t, env, "shop")
				_, challengesBefore := rowCounts(t, dbURL)

				r := post(t, env, "/api/shop/customer?flow="+tc.flow, `{"firstName":"Gil","lastName":"Google","storeId":"S1"}`, withToken(tok)...)
				after, err := env.App.Store.Customer(ctx, "shop", id)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(before, after) {
					t.Errorf("the account was written by a refused request:\nbefore %+v\nafter  %+v", before, after)
				}
				if got := eventsOf(t, env, "shop"); len(got) != len(eventsBefore) {
					t.Errorf("a refused request wrote %d events", len(got)-len(eventsBefore))
				}
				if _, n := rowCounts(t, dbURL); n != challengesBefore {
					t.Errorf("a refused request stored %d challenges", n-challengesBefore)
				}
				p := mustProblem(t, r, http.StatusPreconditionFailed)
				if !problemFields(p)["email"] {
					t.Errorf("the problem does not name the contact to verify: %s", r.body)
				}
			})
		}
	})
}

// eventsOf are the events stored for tenant.
func eventsOf(t *testing.T, env *apptest.Env, tenant string) []store.Event {
	t.Helper()
	evs, err := env.App.Store.Events(ctx, store.EventQuery{Tenant: tenant, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// A token holder whose flow asks for a code a moment after a code was sent
// to the account's contact (the one that signed them in) is answered 429:
// the change and its events wait for the retry, as the challenge does.
// Found with the audit above: the change was committed before the 429.
func TestAFlowWhoseCodeCannotBeSentYetWritesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo:
    flows:
      doubleOptIn:
        - challenge: code
        - set: {optInConfirmedAt: $now}
`)
		const email = "soon.again@example.com"
		tok := env.SignIn(t, "demo", email) // a code went to the address just now
		before := stored(t, env, "demo", email)
		eventsBefore := eventsOf(t, env, "demo")

		r := post(t, env, "/api/demo/customer?flow=doubleOptIn", `{"firstName":"Sonia"}`, withToken(tok)...)
		if after := stored(t, env, "demo", email); !reflect.DeepEqual(before, after) {
			t.Errorf("the account was written by a refused request:\nbefore %+v\nafter  %+v", before, after)
		}
		if got := eventsOf(t, env, "demo"); len(got) != len(eventsBefore) {
			t.Errorf("a refused request wrote %d events", len(got)-len(eventsBefore))
		}
		mustProblem(t, r, http.StatusTooManyRequests)

		// Once a code may be sent again, the same request goes through.
		env.Clock.Advance(61 * time.Second)
		r = post(t, env, "/api/demo/customer?flow=doubleOptIn", `{"firstName":"Sonia"}`, withToken(tok)...)
		id := challengeID(t, r)
		if c := stored(t, env, "demo", email); c.Profile["firstName"] != "Sonia" {
			t.Fatalf("the change with its challenge: %v", c.Profile)
		}
		// Asked again while that challenge is live: the same challenge, and this change.
		r = post(t, env, "/api/demo/customer?flow=doubleOptIn", `{"lastName":"Again"}`, withToken(tok)...)
		if again := challengeID(t, r); again != id {
			t.Fatalf("the repeated request got challenge %s, want its live %s", again, id)
		}
		if c := stored(t, env, "demo", email); c.Profile["lastName"] != "Again" {
			t.Fatalf("the repeated request's change: %v", c.Profile)
		}
	})
}
