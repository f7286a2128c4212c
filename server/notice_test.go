package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// When a token holder replaces the account's verified phone number, the old
// number is told where the account's messages go now (notifyOldContact), as
// the old email is. By SMS, the notice must say so: it must not be a
// "verification code" message with no code in it, which tells the owner
// nothing of the change.
func TestTheOldPhoneNumberIsToldOfAContactChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		box := startTwilio(t)
		env := startPhoneShop(t, dbURL, fmt.Sprintf(`{type: twilio, countries: [FR], twilio: {accountSid: AC123, authToken: twilio-token,
          from: "+33700000000", baseURL: %q, timeout: 2s, allowPrivateNetwork: true}}`, box.srv.URL))
		const oldPhone, newPhone = "+33612345601", "+33612345602"
		id, code := askPhoneChange(t, env, box, oldPhone, newPhone)
		mustToken(t, exchange(t, env, "shop", id, code))

		texts := box.all(oldPhone)
		if len(texts) != 2 {
			t.Fatalf("the old number got %d texts, want the code and the notice: %q", len(texts), texts)
		}
		notice := texts[1]
		if !strings.Contains(notice, "+33*******02") || strings.Contains(strings.ToLower(notice), "verification code") {
			t.Fatalf("the old number's notice does not tell of the change: %q", notice)
		}
	})
}

// A tenant's own gateway is told what each message is: the notice to a
// replaced number is no one-time code. It was posted as one with an empty
// code, which a gateway validating the contract's GatewayMessage (code: six
// digits) refused, and the owner's only alert of a takeover was lost; a
// gateway writing its own text from the code sent "Your code is ".
func TestTheGatewayGetsEveryMessageAsItsContractSays(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, hook := startGatewayShop(t, dbURL)
		const oldPhone, newPhone = "+33612345611", "+33612345612"
		id, code := askPhoneChange(t, env, hook, oldPhone, newPhone)
		mustToken(t, exchange(t, env, "shop", id, code))

		if broken := hook.refusedBodies(); len(broken) > 0 {
			t.Fatalf("the gateway refused what customerd posted: %q", broken)
		}
		got := hook.received(oldPhone)
		if len(got) != 2 {
			t.Fatalf("the old number got %d messages, want its code and the notice: %v", len(got), got)
		}
		if code := got[0]; code["kind"] != "code" || !sixDigits.MatchString(fmt.Sprint(code["code"])) {
			t.Errorf("the sign-in code: %v", code)
		}
		notice := got[1]
		if _, hasCode := notice["code"]; hasCode || notice["kind"] != "contactChanged" || notice["newContact"] != "+33*******12" {
			t.Fatalf("the notice does not say it is one: %v", notice)
		}
	})
}

// A notice the gateway or relay does not take is logged (without the
// number): the change stands either way, but the owner was not told of it,
// and the operator must be able to see so.
func TestANoticeTheGatewayRefusesIsLogged(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, hook := startGatewayShop(t, dbURL)
		const oldPhone, newPhone = "+33612345621", "+33612345622"
		id, code := askPhoneChange(t, env, hook, oldPhone, newPhone)
		hook.set("refuse") // the old number texted STOP
		mustToken(t, exchange(t, env, "shop", id, code))

		var logged map[string]any
		for _, l := range env.Logs.Lines() {
			if l["msg"] == "contact change notice not delivered" {
				logged = l
			}
		}
		if logged == nil || logged["level"] != "WARN" || logged["tenant"] != "shop" || logged["channel"] != "sms" || logged["error"] == nil {
			t.Fatalf("the refused notice is not logged as one: %v", logged)
		}
		if line := fmt.Sprint(logged); strings.Contains(line, oldPhone) || strings.Contains(line, oldPhone[1:]) {
			t.Fatalf("the log names the number: %s", line)
		}
	})
}

// startPhoneShop starts tenant shop, whose shoppers sign in with their
// phone number and get their SMS through sms, a sender in YAML's flow style.
func startPhoneShop(t *testing.T, dbURL, sms string) *apptest.Env {
	t.Helper()
	return apptest.Start(t, dbURL, `
tenants:
  shop:
    identifier: phoneNumber
    senders:
      email: {type: log}
      sms: `+sms+"\n")
}

// startGatewayShop starts tenant shop (startPhoneShop) with a gateway built
// to its contract (startSMSWebhook).
func startGatewayShop(t *testing.T, dbURL string) (*apptest.Env, *gateway) {
	t.Helper()
	hook := startSMSWebhook(t)
	return startPhoneShop(t, dbURL, fmt.Sprintf(`{type: webhook, countries: [FR], webhook: {url: %q, secret: %q, timeout: 2s,
          allowPrivateNetwork: true}}`, hook.srv.URL, gatewaySecret)), hook
}

// askPhoneChange signs in with oldPhone and asks to replace it with
// newPhone: the change's challenge and the code the gateway got for it.
func askPhoneChange(t *testing.T, env *apptest.Env, hook *gateway, oldPhone, newPhone string) (string, string) {
	t.Helper()
	tok := smsSignIn(t, env, "shop", askSMS(t, env, "shop", oldPhone), hook.code(oldPhone))
	r := post(t, env, "/api/shop/customer", `{"phoneNumber":"`+newPhone+`"}`, withToken(tok)...)
	return challengeID(t, r), hook.code(newPhone)
}

// One mailbox is one account: an address holding an invisible character (a
// zero-width space, a soft hyphen) reaches the same mailbox as the address
// without it, and a bidirectional override shows one address as another:
// each is refused (412), never a second account beside the owner's.
func TestAnInvisibleCharacterMakesNoSecondAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		env.SignIn(t, "demo", "owner@example.com")
		for _, email := range []string{
			"owner@example.com\u200b", // a zero-width space after the domain
			"owner@exa\u00admple.com", // a soft hyphen inside it
			"\u202emoc.elpmaxe@renwo", // a right-to-left override
		} {
			t.Run(fmt.Sprintf("%q", email), func(t *testing.T) {
				r := post(t, env, "/api/demo/customer", `{"email":"`+email+`"}`)
				mustProblem(t, r, http.StatusPreconditionFailed)
			})
		}
	})
}
