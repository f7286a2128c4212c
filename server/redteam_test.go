package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// Under checkInPolicy partial or full a token holder's contact change to a
// number verified on another account is answered as one to a free number,
// and its code goes nowhere. Found by the black-box red team: "nowhere"
// answered at once, while a free number's answer waited for the gateway
// (Twilio, an SMTP relay: tens to hundreds of milliseconds), so one request
// told whether the number has an account. A withheld code now takes as long
// as the tenant's deliveries on the channel have lately taken.
func TestAWithheldContactChangeTakesAsLongAsADelivery(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		const delay = 300 * time.Millisecond
		twilio := startSlowTwilio(t, delay)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  full:
    checkInPolicy: full
    senders:
      email: {type: log}
      sms:
        type: twilio
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 5s, allowPrivateNetwork: true}
`, twilio.srv.URL))
		const taken = "+33612345678"
		smsSignIn(t, env, "full", askSMS(t, env, "full", taken), twilio.code(taken)) // a shopper of the brand
		prober := env.SignIn(t, "full", "prober@example.com")
		env.Clock.Advance(61 * time.Second)

		timed := func(phone string) time.Duration {
			start := time.Now()
			r := post(t, env, "/api/full/customer", `{"phoneNumber":"`+phone+`"}`, withToken(prober)...)
			took := time.Since(start)
			if r.StatusCode != http.StatusAccepted {
				t.Fatalf("a change to %s: %d %s, want 202", phone, r.StatusCode, r.body)
			}
			return took
		}
		known := timed(taken)
		sent := twilio.count()
		unknown := timed("+33687654321")
		if twilio.count() != sent+1 {
			t.Fatalf("the free number got %d messages, want 1", twilio.count()-sent)
		}
		if known < delay*3/4 {
			t.Fatalf("a verified number answered in %v, a free one in %v (the gateway takes %v): the time tells who has an account",
				known, unknown, delay)
		}
	})
}

// Media types compare without case (RFC 9110 8.3.1). Found by the black-box
// red team: a body sent as "Application/JSON" passed the media type check,
// but the generated handler, which matches "application/json" byte for
// byte, decoded nothing: an update answered 200 having written nothing, and
// a create answered 412 "email is required" for a body holding one.
func TestAMediaTypeInAnotherCaseIsReadAsJSON(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "ada@example.com")
		for _, ct := range []string{"Application/JSON", "APPLICATION/JSON; charset=UTF-8", "Text/Json"} {
			r := post(t, env, "/api/demo/customer", `{"firstName":"Ada `+ct+`"}`, append(withToken(tok), "Content-Type", ct)...)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %s", ct, r.StatusCode, r.body)
			}
			if me := customerOf(t, env, "demo", tok); me["firstName"] != "Ada "+ct {
				t.Fatalf("sent as %s, the update wrote nothing: %v", ct, me["firstName"])
			}
		}
		r := post(t, env, "/api/demo/customer", `{"email":"grace@example.com"}`, "Content-Type", "APPLICATION/JSON")
		if r.StatusCode != http.StatusOK || decodeObject(t, r)["email"] != "grace@example.com" {
			t.Fatalf("a create sent as APPLICATION/JSON: %d %s", r.StatusCode, r.body)
		}
	})
}
