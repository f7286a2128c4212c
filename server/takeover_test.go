package server_test

import (
	"net/http"
	"testing"

	"github.com/customerd/customerd/app/apptest"
)

// Proving a contact signs in as the account that has it only when the
// contact is the account's identifier or already verified there: whoever
// holds a mistyped phone number does not get the account.
func TestAnUnverifiedSecondaryContactDoesNotSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo: {}
  byphone: {identifier: phoneNumber}
`)
		// An account identified by its email, with a phone number nobody proved.
		if r := post(t, env, "/api/demo/customer", `{"email":"owner@example.com","phoneNumber":"+33612345678"}`); r.StatusCode != http.StatusOK {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		id := challengeID(t, post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"phoneNumber":"+33612345678"}`))
		r := exchange(t, env, "demo", id, env.Logs.Code("+33612345678"))
		mustProblem(t, r, http.StatusUnprocessableEntity)
		if c := stored(t, env, "demo", "owner@example.com"); c.PhoneVerified {
			t.Fatal("the phone number was marked verified")
		}

		// The owner's email still signs in.
		id = challengeID(t, post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"email":"owner@example.com"}`))
		if tok := complete(t, env, "demo", id, "owner@example.com"); tok == "" {
			t.Fatal("no token for the owner")
		}

		// Where the phone number is the identifier, proving it signs in.
		if r := post(t, env, "/api/byphone/customer", `{"phoneNumber":"+33698765432"}`); r.StatusCode != http.StatusOK {
			t.Fatalf("create by phone: %d %s", r.StatusCode, r.body)
		}
		id = challengeID(t, post(t, env, "/api/byphone/customer/authenticate?provider=otp", `{"phoneNumber":"+33698765432"}`))
		if tok := complete(t, env, "byphone", id, "+33698765432"); tok == "" {
			t.Fatal("no token for the phone identifier")
		}
	})
}
