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
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    identifier: phoneNumber
    senders:
      email: {type: log}
      sms:
        type: twilio
        countries: [FR]
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 2s, allowPrivateNetwork: true}
`, box.srv.URL))
		const oldPhone, newPhone = "+33612345601", "+33612345602"
		r := askSMS(t, env, "shop", oldPhone)
		tok := mustToken(t, exchange(t, env, "shop", challengeID(t, r), sixDigits.FindString(box.last(oldPhone))))

		r = post(t, env, "/api/shop/customer", `{"phoneNumber":"`+newPhone+`"}`, "Authorization", "Bearer "+tok)
		id := challengeID(t, r)
		mustToken(t, exchange(t, env, "shop", id, sixDigits.FindString(box.last(newPhone))))

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
