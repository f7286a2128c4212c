package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// A caller who hangs up while customerd is posting the code to the SMS
// gateway must not get the number's resend interval back: the gateway has
// the message already. Before, the request's context
// was the send's, the hang-up cancelled it, and the failed send undid the
// throttle, so one number got a text per request (SMS pumping at any rate
// the daily budget allows, to a single premium number).
func TestHangingUpDoesNotBuyAnotherText(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		box := startSlowTwilio(t, 700*time.Millisecond)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    senders:
      email: {type: log}
      sms:
        type: twilio
        countries: [FR]
        dailyBudget: 1000
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 5s, allowPrivateNetwork: true}
`, box.srv.URL))
		const phone = "+33612345690"
		impatient := &http.Client{Timeout: 250 * time.Millisecond}
		for range 4 {
			req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/api/shop/customer/authenticate?provider=otp",
				strings.NewReader(`{"phoneNumber":"`+phone+`"}`))
			req.Header.Set("Content-Type", "application/json")
			if res, err := impatient.Do(req); err == nil {
				_ = res.Body.Close()
			}
			time.Sleep(50 * time.Millisecond) // the server notices the hang-up
		}
		time.Sleep(time.Second) // every send in flight is over
		if got := box.all(phone); len(got) > 1 {
			t.Fatalf("one number got %d texts within one resend interval, by callers hanging up mid-send", len(got))
		}
	})
}

// An SMS code goes to a number that can receive one: a premium-rate
// number of an allowed country (+33 89x, audiotel; +1 900) is refused as a
// country outside the list is. Before, the guard read
// only the number's region, and the brand paid for texts to numbers whose
// line earns per call.
func TestASMSCodeIsNotSentToAPremiumRateNumber(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		box := startTwilio(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    senders:
      email: {type: log}
      sms:
        type: twilio
        countries: [FR, US]
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 2s, allowPrivateNetwork: true}
`, box.srv.URL))
		for _, phone := range []string{"+33899123456", "+19002345678"} {
			r := askSMS(t, env, "shop", phone)
			if r.StatusCode != http.StatusBadRequest || len(box.all(phone)) != 0 {
				t.Errorf("%s (premium rate): %d, %d texts sent; want 400 and none", phone, r.StatusCode, len(box.all(phone)))
			}
		}
	})
}

// An anonymous create whose code cannot be sent (a country outside the
// list) is refused whole: the 400 leaves no account behind (before, the
// account was written with the challenge, before the
// sender refused the number).
func TestARefusedCodeLeavesNoAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		box := startTwilio(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    identifier: phoneNumber
    checkInPolicy: full
    senders:
      sms:
        type: twilio
        countries: [FR]
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 2s, allowPrivateNetwork: true}
`, box.srv.URL))
		const phone = "+447911123456"
		r := post(t, env, "/api/shop/customer", `{"phoneNumber":"`+phone+`","firstName":"Mallory"}`)
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("create: %d %s, want 400", r.StatusCode, r.body)
		}
		if c, err := env.App.Store.CustomerByPhone(ctx, "shop", phone); err == nil {
			t.Fatalf("the refused create left an account: %s %v", c.ID, c.Profile)
		}
	})
}
