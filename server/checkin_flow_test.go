package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// A brand under checkInPolicy full whose activation requires the phone
// number: a new shopper sends the complete profile (email, phone, names) to
// ?flow=activation, as the README's Activation walk-through does. The
// phone number is theirs and free: the activation must go through.
func TestANewShopperActivatesWithTheRequiredPhoneUnderCheckIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  full: {checkInPolicy: full, activationFields: [firstName, lastName, phoneNumber]}
`)
		const email, phone = "ada.act@example.com", "+33612345699"
		r := post(t, env, "/api/full/customer?flow=activation",
			`{"email":"`+email+`","phoneNumber":"`+phone+`","firstName":"Ada","lastName":"Lovelace"}`)
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("a complete profile with a free phone number: %d, want 202: %s", r.StatusCode, r.body)
		}
		tok := complete(t, env, "full", challengeID(t, r), email)
		c := customerOf(t, env, "full", tok)
		if c["phoneNumber"] != phone || c["isProspect"] != false {
			t.Fatalf("after the code: phoneNumber %v isProspect %v, want %s and false", c["phoneNumber"], c["isProspect"], phone)
		}
	})
}

// The same request for an existing account and a new one answers alike
// under checkInPolicy full (README: "the flow's required fields are checked
// on the request for both (412 alike)").
func TestActivationWithARequiredPhoneAnswersAlikeForNewAndExisting(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  full: {checkInPolicy: full, activationFields: [firstName, lastName, phoneNumber]}
`)
		const known = "known.act@example.com"
		env.SignIn(t, "full", known)
		env.Clock.Advance(61 * time.Second)
		body := func(email, phone string) string {
			return `{"email":"` + email + `","phoneNumber":"` + phone + `","firstName":"Ada","lastName":"Lovelace"}`
		}
		a := post(t, env, "/api/full/customer?flow=activation", body(known, "+33612345601"))
		b := post(t, env, "/api/full/customer?flow=activation", body("fresh.act@example.com", "+33612345602"))
		if a.StatusCode != b.StatusCode {
			t.Fatalf("existing %d %s, new %d %s: the answer tells who has an account", a.StatusCode, a.body, b.StatusCode, b.body)
		}
	})
}

// Support revokes an owner's sessions while the owner's own contact change
// is pending. The owner signs in again and asks for the same change: the
// answer must be a challenge the owner can finish with the code they get,
// not the one the revocation left unfinishable.
func TestAContactChangeAskedAgainAfterARevocationCanBeFinished(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		a := env.Admin(t)
		adm := a.Client(t, a.Key(t, "demo"))
		const owner, next = "again.owner@example.com", "again.next@example.com"
		tok := env.SignIn(t, "demo", owner)
		env.Clock.Advance(61 * time.Second) // the owner's sign-in may be asked again
		body := `{"email":"` + next + `"}`
		first := challengeID(t, post(t, env, "/api/demo/customer", body, withToken(tok)...))

		if res, err := adm.RevokeCustomerSessionsWithResponse(ctx, "demo", subOf(t, tok)); err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %v", err)
		}
		nextSecond()
		tok = env.SignIn(t, "demo", owner) // the owner, signed in again
		r := post(t, env, "/api/demo/customer", body, withToken(tok)...)
		id := challengeID(t, r)
		code := env.Logs.Code(next)
		if x := exchange(t, env, "demo", id, code); x.StatusCode != http.StatusOK {
			t.Fatalf("the owner's change asked again after the revocation (challenge %s, first %s): %d %s", id, first, x.StatusCode, x.body)
		}
	})
}
