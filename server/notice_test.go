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

// When a token holder replaces the account's verified phone number, the old
// number is told where the account's messages go now (account.Service.NotifyContactChange), as
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

// Removing a verified phone number is a contact change as replacing it is:
// the number is told it was removed (newContact "(none)", in words that say
// so, not "changed to (none)"). Found by an audit: a removal was written with
// no notice, the first step of a takeover the owner never heard of.
func TestARemovedPhoneNumberIsToldOfItsRemoval(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook := startSMSWebhook(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    defaultLanguage: en
    senders:
      email: {type: log}
      sms: {type: webhook, countries: [FR], webhook: {url: %q, secret: %q, timeout: 2s, allowPrivateNetwork: true}}
`, hook.srv.URL, gatewaySecret))
		const email, phone = "removed.phone@example.com", "+33612345641"
		tok := env.SignIn(t, "shop", email)
		r := post(t, env, "/api/shop/customer", `{"phoneNumber":"`+phone+`"}`, withToken(tok)...)
		mustToken(t, exchange(t, env, "shop", challengeID(t, r), hook.code(phone)))
		told := len(noticesTo(env, email)) // the number added

		postOK(t, env, "/api/shop/customer", `{"phoneNumber":""}`, withToken(tok)...)
		notice, text := gatewayNotice(t, hook, phone)
		if notice["kind"] != "contactChanged" || notice["change"] != "removed" || notice["newContact"] != "(none)" ||
			!strings.Contains(text, "removed") || strings.Contains(text, "(none)") {
			t.Fatalf("the removed number is not told of its removal: %v", notice)
		}
		if n := noticesTo(env, email); len(n) != told {
			t.Fatalf("the email, which did not change, was told of the removal: %v", n)
		}
	})
}

// The attack the audit found, on the demo tenant (email sign-in): with a
// victim's stolen token, remove their verified phone number (200), then put
// the attacker's on (202, code to the attacker) and complete it. The
// account had no verified number any more, and its email did not change,
// so nobody was told, and the attacker signs in with their phone from then
// on. The removed number is told of its removal, and the email of the
// number added.
func TestRemovingThenAddingAPhoneNumberIsToldToTheOwner(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const email, phone, attackers = "victim.notice@example.com", "+33612345651", "+33612345652"
		tok := env.SignIn(t, "demo", email)
		r := post(t, env, "/api/demo/customer", `{"phoneNumber":"`+phone+`"}`, withToken(tok)...)
		complete(t, env, "demo", challengeID(t, r), phone) // the victim's own number, verified
		env.Clock.Advance(61 * time.Second)

		// The attacker, with the victim's token.
		postOK(t, env, "/api/demo/customer", `{"phoneNumber":""}`, withToken(tok)...)
		if n := noticesTo(env, phone); len(n) != 1 || n[0]["newContact"] != "(none)" || n[0]["change"] != "removed" {
			t.Fatalf("the removed number is not told of its removal: %v", n)
		}
		env.Clock.Advance(61 * time.Second)
		r = post(t, env, "/api/demo/customer", `{"phoneNumber":"`+attackers+`"}`, withToken(tok)...)
		complete(t, env, "demo", challengeID(t, r), attackers)

		told := noticesTo(env, email)
		if len(told) != 2 || told[1]["newContact"] != "+33*******52" || told[1]["change"] != "added" {
			t.Fatalf("the email is not told of the number added: %v", told)
		}
		if n := noticesTo(env, attackers); len(n) != 0 {
			t.Fatalf("the added number was told: %v", n)
		}
	})
}

// On a phone tenant, an email added to an account that had none verified
// is told to its verified phone number: it was silent, and with it the
// attacker's own Google account (that verified email) signed into the
// victim's account.
func TestAnEmailAddedToAPhoneOnlyAccountIsToldToThePhone(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, hook := startGatewayShop(t, dbURL)
		const phone, email = "+33612345661", "added.email@example.com"
		tok := smsSignIn(t, env, "shop", askSMS(t, env, "shop", phone), hook.code(phone))
		r := post(t, env, "/api/shop/customer", `{"email":"`+email+`"}`, withToken(tok)...)
		complete(t, env, "shop", challengeID(t, r), email)
		notice, text := gatewayNotice(t, hook, phone)
		if notice["kind"] != "contactChanged" || notice["change"] != "added" || notice["newContact"] != "a***@e***.com" ||
			!strings.Contains(text, "a***@e***.com a été ajouté") {
			t.Fatalf("the phone is not told of the email added: %v", notice)
		}
	})
}

// An unverified contact proves nothing and may be someone else's: its
// removal by the token holder, or its leaving the account when its owner
// proves it (the ownership rule), tells nobody.
func TestAnUnverifiedContactRemovedIsToldToNobody(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const email, phone = "unverified.phone@example.com", "+33612345671"
		postOK(t, env, "/api/demo/customer", `{"email":"`+email+`","phoneNumber":"`+phone+`"}`)
		tok := env.SignIn(t, "demo", email) // the email is verified, the phone is not
		postOK(t, env, "/api/demo/customer", `{"phoneNumber":""}`, withToken(tok)...)

		const other, others = "unverified.detach@example.com", "+33612345672"
		postOK(t, env, "/api/demo/customer", `{"email":"`+other+`","phoneNumber":"`+others+`"}`)
		otherTok := env.SignIn(t, "demo", other)
		if mine := signInPhone(t, env, "demo", others); subOf(t, mine) == subOf(t, otherTok) {
			t.Fatal("the number's owner signed into the account it sat unverified on")
		}
		for _, l := range env.Logs.Lines() {
			if l["msg"] == "contact change notice sent" {
				t.Fatalf("an unverified contact's removal was told: %v", l)
			}
		}
	})
}

// gatewayNotice is the one message the gateway took for a number after
// its code, a notice (its members and its text), every message having kept
// to the contract.
func gatewayNotice(t *testing.T, hook *gateway, to string) (map[string]any, string) {
	t.Helper()
	if broken := hook.refusedBodies(); len(broken) > 0 {
		t.Fatalf("the gateway refused what customerd posted: %q", broken)
	}
	got := hook.received(to)
	if len(got) != 2 {
		t.Fatalf("%s got %d messages, want its code and a notice: %v", to, len(got), got)
	}
	text, _ := got[1]["text"].(string)
	return got[1], text
}

// noticesTo is every contact change notice the log sender wrote for to,
// oldest first.
func noticesTo(env *apptest.Env, to string) []map[string]any {
	var out []map[string]any
	for _, l := range env.Logs.Lines() {
		if l["msg"] == "contact change notice sent" && l["to"] == to {
			out = append(out, l)
		}
	}
	return out
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
