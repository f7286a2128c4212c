package server_test

import (
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
)

// A client generated from the upstream document knows only the contact it
// sent: {email, code} and {phoneNumber, code} complete the newest live
// challenge to it, with the limits of {challengeId, code}.
func TestCodeByContact(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo: {}
  byphone: {identifier: phoneNumber}
`)
		const otp = "/api/demo/customer/authenticate?provider=otp"
		byContact := func(field, value, code string) rawReply {
			return post(t, env, otp, `{"`+field+`":"`+value+`","code":"`+code+`"}`)
		}

		t.Run("after an authenticate 202, by email and by phone number", func(t *testing.T) {
			challengeID(t, post(t, env, otp, `{"email":"form1@example.com"}`))
			tok := mustToken(t, byContact("email", "Form1@Example.com", env.Logs.Code("form1@example.com")))
			if me := customerOf(t, env, "demo", tok); me["email"] != "form1@example.com" || me["emailVerified"] != true {
				t.Fatalf("account: %v", me)
			}
			challengeID(t, post(t, env, otp, `{"phoneNumber":"06 77 77 77 77"}`))
			tok = mustToken(t, byContact("phoneNumber", "+33677777777", env.Logs.Code("+33677777777")))
			if me := customerOf(t, env, "demo", tok); me["phoneNumber"] != "+33677777777" || me["phoneNumberVerified"] != true {
				t.Fatalf("account: %v", me)
			}
		})

		t.Run("after a POST /customer 202 for an existing account", func(t *testing.T) {
			postOK(t, env, "/api/demo/customer", `{"email":"form2@example.com","firstName":"Form"}`)
			created := stored(t, env, "demo", "form2@example.com")
			if r := post(t, env, "/api/demo/customer", `{"email":"form2@example.com","lastName":"Two"}`); r.StatusCode != http.StatusAccepted {
				t.Fatalf("existing: %d %s", r.StatusCode, r.body)
			}
			tok := mustToken(t, byContact("email", "form2@example.com", env.Logs.Code("form2@example.com")))
			if me := customerOf(t, env, "demo", tok); me["id"] != created.ID || me["lastName"] != "Two" {
				t.Fatalf("account: %v", me)
			}

			// The same by phone number, where it is the identifier.
			postOK(t, env, "/api/byphone/customer", `{"phoneNumber":"+33688888888","firstName":"Phone"}`)
			if r := post(t, env, "/api/byphone/customer", `{"phoneNumber":"06 88 88 88 88","lastName":"Two"}`); r.StatusCode != http.StatusAccepted {
				t.Fatalf("existing by phone: %d %s", r.StatusCode, r.body)
			}
			r := post(t, env, "/api/byphone/customer/authenticate?provider=otp",
				`{"phoneNumber":"+33688888888","code":"`+env.Logs.Code("+33688888888")+`"}`)
			if me := customerOf(t, env, "byphone", mustToken(t, r)); me["firstName"] != "Phone" || me["lastName"] != "Two" {
				t.Fatalf("account by phone: %v", me)
			}
		})

		t.Run("five wrong codes then the right one is refused", func(t *testing.T) {
			challengeID(t, post(t, env, otp, `{"email":"form3@example.com"}`))
			code := env.Logs.Code("form3@example.com")
			for range 5 {
				mustProblem(t, byContact("email", "form3@example.com", notCode(code)), http.StatusUnprocessableEntity)
			}
			mustProblem(t, byContact("email", "form3@example.com", code), http.StatusUnprocessableEntity)
		})

		t.Run("a spent challenge is refused, and an unknown contact looks the same", func(t *testing.T) {
			challengeID(t, post(t, env, otp, `{"email":"form4@example.com"}`))
			code := env.Logs.Code("form4@example.com")
			mustToken(t, byContact("email", "form4@example.com", code))
			mustProblem(t, byContact("email", "form4@example.com", code), http.StatusUnprocessableEntity)
			mustProblem(t, byContact("email", "nobody@example.com", code), http.StatusUnprocessableEntity)
		})

		t.Run("an expired challenge is refused", func(t *testing.T) {
			challengeID(t, post(t, env, otp, `{"email":"form5@example.com"}`))
			code := env.Logs.Code("form5@example.com")
			env.Clock.Advance(11 * time.Minute)
			mustProblem(t, byContact("email", "form5@example.com", code), http.StatusUnprocessableEntity)
		})

		t.Run("bodies that mix the forms are a 400", func(t *testing.T) {
			for _, body := range []string{
				`{"email":"a@example.com","phoneNumber":"+33600000000","code":"123456"}`,
				`{"challengeId":"0b7a6d0e-3f55-4d1c-9c55-2f7f6f0e6a11","email":"a@example.com","code":"123456"}`,
				`{"challengeId":"0b7a6d0e-3f55-4d1c-9c55-2f7f6f0e6a11"}`,
				`{"code":"123456"}`,
			} {
				mustProblem(t, post(t, env, otp, body), http.StatusBadRequest)
			}
		})
	})
}
