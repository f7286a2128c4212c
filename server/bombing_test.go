package server_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/sender/smtptest"
	"github.com/customerd/customerd/store/storetest"
)

const otpSignIn = "/api/demo/customer/authenticate?provider=otp"

// askSignInCode asks the demo tenant for a sign-in code to email.
func askSignInCode(t *testing.T, env *apptest.Env, email string) rawReply {
	t.Helper()
	return post(t, env, otpSignIn, `{"email":"`+email+`"}`)
}

// sentToAny counts the codes the log sender wrote for any of emails.
func sentToAny(env *apptest.Env, emails ...string) int {
	n := 0
	for _, e := range emails {
		n += env.Logs.Sent(strings.ToLower(e))
	}
	return n
}

// sameAccepted fails t unless a and b are both 202 challenges of the same
// shape, with the same headers: nothing in them tells a code sent from one
// withheld.
func sameAccepted(t *testing.T, what string, a, b rawReply) {
	t.Helper()
	ida, idb := challengeID(t, a), challengeID(t, b)
	if ida == idb {
		t.Errorf("%s: one challenge id for two requests", what)
	}
	ba, bb := decodeObject(t, a), decodeObject(t, b)
	if !reflect.DeepEqual(keysOf(ba), keysOf(bb)) {
		t.Errorf("%s: bodies\n%s\nand\n%s", what, a.body, b.body)
	}
	sameFields(t, what, ba, bb, "channel", "destination", "attemptsLeft")
	sameHeaders(t, what, a, b, "Content-Length") // the body's length differs with its expiry's digits only
}

// A bomber asking sign-in codes for spellings of one inbox (a subaddress,
// Gmail's dots, googlemail.com) within a resend interval gets it one code:
// each spelling had a throttle of its own, so the inbox got a code a
// spelling, as many as the bomber thought of. Every request is answered as
// the first was, 202 with a challenge; the codes after the first go nowhere.
// Two inboxes stay two.
func TestAnInboxGetsOneCodeAnIntervalWhateverSpellingsItIsAskedFor(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		first := askSignInCode(t, env, "victim+1@gmail.com")
		challengeID(t, first)
		spellings := []string{"victim+2@gmail.com", "v.i.c.t.i.m@gmail.com", "victim@googlemail.com",
			"Vic.Tim+news@GoogleMail.com", "victim@gmail.com"}
		for _, email := range spellings {
			sameAccepted(t, "the first spelling and "+email, first, askSignInCode(t, env, email))
		}
		if n := sentToAny(env, append(spellings, "victim+1@gmail.com")...); n != 1 {
			t.Errorf("%d codes reached the one inbox in an interval, want 1", n)
		}
		// Each spelling is still throttled as itself.
		if got := askSignInCode(t, env, "victim+2@gmail.com").StatusCode; got != http.StatusTooManyRequests {
			t.Errorf("a second code for victim+2@ within its interval: %d, want 429", got)
		}

		// Dots mean something outside Gmail, and a plus starting the local part is no tag.
		for _, email := range []string{"j.doe@example.com", "jdoe@example.com", "+victim@gmail.com", "victim@example.com"} {
			challengeID(t, askSignInCode(t, env, email))
			if env.Logs.Sent(email) != 1 {
				t.Errorf("a code for %s, another inbox, was not sent", email)
			}
		}

		// The next interval, the inbox gets one code again, no more.
		env.Clock.Advance(61 * time.Second)
		more := []string{"victim+3@gmail.com", "victim+4@gmail.com"}
		for _, email := range more {
			challengeID(t, askSignInCode(t, env, email))
		}
		if n := sentToAny(env, more...); n != 1 {
			t.Errorf("%d codes reached the inbox in its second interval, want 1", n)
		}
	})
}

// The design a shared resend interval failed (8748068): a stranger asking a
// code for another spelling of the owner's inbox every interval, just
// before the owner asks, never keeps the owner, whose account's verified
// address is owner@gmail.com, from getting a code for it and signing in.
func TestBombingOtherSpellingsNeverKeepsTheOwnerFromSigningIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		owner := subOf(t, env.SignIn(t, "demo", "owner@gmail.com"))
		for i, stranger := range []string{"owner+x@gmail.com", "o.wner@gmail.com", "owner@googlemail.com"} {
			env.Clock.Advance(61 * time.Second)
			challengeID(t, askSignInCode(t, env, stranger))
			env.Clock.Advance(time.Second)
			before := env.Logs.Sent("owner@gmail.com")
			id := challengeID(t, askSignInCode(t, env, "owner@gmail.com"))
			if env.Logs.Sent("owner@gmail.com") != before+1 {
				t.Fatalf("interval %d: the owner's code was withheld after a stranger's for %s", i+1, stranger)
			}
			if got := subOf(t, complete(t, env, "demo", id, "owner@gmail.com")); got != owner {
				t.Fatalf("interval %d: the owner's code signed into %s, want their account %s", i+1, got, owner)
			}
			// Typed as {email, code} too, as the sign-in form does.
			env.Clock.Advance(61 * time.Second)
			challengeID(t, askSignInCode(t, env, stranger))
			challengeID(t, askSignInCode(t, env, "owner@gmail.com"))
			code := env.Logs.Code("owner@gmail.com")
			if r := askSignInCodeWith(t, env, "owner@gmail.com", code); r.StatusCode != http.StatusOK {
				t.Fatalf("interval %d: the owner's {email, code}: %d %s", i+1, r.StatusCode, r.body)
			}
		}
	})
}

func askSignInCodeWith(t *testing.T, env *apptest.Env, email, code string) rawReply {
	t.Helper()
	return post(t, env, otpSignIn, `{"email":"`+email+`","code":"`+code+`"}`)
}

// While an inbox is bombed, a code asked for the address an account proves
// goes out, and one for any other spelling is withheld: the two answers are
// the same (status, body, headers, the time a delivery takes, and what
// wrong codes answer), so nobody learns which spelling is an account's by
// marking the inbox first.
func TestWhetherASpellingIsAnAccountsDoesNotShowWhileItsInboxIsBombed(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		const delay = 300 * time.Millisecond
		relay := smtptest.Start(t, smtptest.StartTLS, smtpUser, smtpPassword, smtptest.Slow(delay))
		env := apptest.Start(t, dbURL, "tenants:"+smtpTenant("demo", relay.Port, relay.RootCAs))
		received := func() int {
			n := 0
			for {
				select {
				case <-relay.Deliveries:
					n++
				default:
					return n
				}
			}
		}
		// owner@gmail.com is an account's proof.
		id := challengeID(t, askSignInCode(t, env, "owner@gmail.com"))
		mustToken(t, exchange(t, env, "demo", id, codeFrom(t, relay.Received(t, 0), "owner@gmail.com")))

		for round := range 2 {
			env.Clock.Advance(61 * time.Second)
			challengeID(t, askSignInCode(t, env, fmt.Sprintf("owner+mark%d@gmail.com", round))) // the inbox is marked
			received()

			timed := func(email string) (rawReply, time.Duration) {
				start := time.Now()
				r := askSignInCode(t, env, email)
				return r, time.Since(start)
			}
			// In both orders, so that neither rides on the other's state.
			accountsFirst := round == 0
			var account, other rawReply
			var accountTook, otherTook time.Duration
			if accountsFirst {
				account, accountTook = timed("owner@gmail.com")
				other, otherTook = timed("o.wner@gmail.com")
			} else {
				other, otherTook = timed("o.wner@gmail.com")
				account, accountTook = timed("owner@gmail.com")
			}
			sameAccepted(t, "the account's address and another spelling", account, other)
			if n := received(); n != 1 {
				t.Fatalf("round %d: %d codes reached the inbox, want the account's only", round, n)
			}
			if accountTook < delay*3/4 || otherTook < delay*3/4 {
				t.Fatalf("round %d: the account's address answered in %v, another spelling in %v (the relay takes %v): the time tells",
					round, accountTook, otherTook, delay)
			}
			// Wrong codes answer alike, to the last attempt and after it.
			for i := range 6 {
				code := fmt.Sprintf("%06d", 999990-i)
				sameProblem(t, fmt.Sprintf("round %d, wrong code %d", round, i+1),
					exchange(t, env, "demo", challengeID(t, account), code), exchange(t, env, "demo", challengeID(t, other), code),
					http.StatusUnprocessableEntity)
			}
			// Again within each address's interval: 429 for both.
			for _, email := range []string{"owner@gmail.com", "o.wner@gmail.com"} {
				mustProblem(t, askSignInCode(t, env, email), http.StatusTooManyRequests)
			}
		}
	})
}

// A shopper whose inbox nobody is bombing signs up with whatever spelling
// of it they like, a subaddress or Gmail's dots, by sign-in code or by
// creating an account under a check-in policy; a second spelling of the
// same inbox gets its code once the interval of the first is over.
func TestANewShopperSignsUpWithAnySpellingOfAQuietInbox(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo: {}
  full: {checkInPolicy: full}
`)
		for _, email := range []string{"shopper+shop@gmail.com", "s.hopper2@gmail.com", "shopper3@googlemail.com", "shopper+4@example.com"} {
			id := challengeID(t, askSignInCode(t, env, email))
			mustToken(t, exchange(t, env, "demo", id, env.Logs.Code(email)))
		}
		env.Clock.Advance(61 * time.Second)
		id := challengeID(t, askSignInCode(t, env, "shopper+other@gmail.com"))
		mustToken(t, exchange(t, env, "demo", id, env.Logs.Code("shopper+other@gmail.com")))

		const created = "n.ew+shop@gmail.com"
		id = challengeID(t, post(t, env, "/api/full/customer", `{"email":"`+created+`","firstName":"New"}`))
		mustToken(t, exchange(t, env, "full", id, env.Logs.Code(created)))
	})
}

// A token holder's contact changes to spellings of someone's inbox reach it
// once an interval as well (a kind of their own, as their resend interval
// is: they never hold back the inbox's sign-in codes), answered alike; the
// changes withheld never complete.
func TestContactChangesToSpellingsOfAnInboxReachItOnceAnInterval(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "bomber@example.com")
		change := func(email string) rawReply {
			return post(t, env, "/api/demo/customer", `{"email":"`+email+`"}`, withToken(tok)...)
		}
		first := change("victim+a@gmail.com")
		spellings := []string{"victim+b@gmail.com", "vic.tim@gmail.com", "victim@googlemail.com"}
		for _, email := range spellings {
			sameAccepted(t, "the first change and one to "+email, first, change(email))
		}
		if n := sentToAny(env, append(spellings, "victim+a@gmail.com")...); n != 1 {
			t.Errorf("%d contact-change codes reached the inbox, want 1", n)
		}
		// The inbox's sign-in codes are another kind: one still goes out.
		challengeID(t, askSignInCode(t, env, "victim@gmail.com"))
		if env.Logs.Sent("victim@gmail.com") != 1 {
			t.Error("a token holder's contact changes held back the inbox's sign-in code")
		}
	})
}

// A domain that is not ASCII has two spellings that reach one inbox: its
// Unicode form and its IDNA A-label (xn--), which the address keeps as
// written (it is ASCII). A bomber alternating them got the inbox a code an
// interval for each: the inbox's mark knew the domain by its spelling.
func TestBothSpellingsOfAnInternationalDomainAreOneInbox(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		challengeID(t, askSignInCode(t, env, "jane+1@bücher.de"))
		spellings := []string{"jane+2@xn--bcher-kva.de", "jane@XN--BCHER-KVA.DE", "jane+3@mail.xn--bcher-kva.de"}
		for _, email := range spellings[:2] {
			challengeID(t, askSignInCode(t, env, email))
		}
		if n := sentToAny(env, "jane+1@bücher.de", "jane+2@xn--bcher-kva.de", "jane@xn--bcher-kva.de"); n != 1 {
			t.Errorf("%d codes reached the inbox of jane@bücher.de in an interval, want 1", n)
		}
		// Another domain (a subdomain) is another inbox.
		challengeID(t, askSignInCode(t, env, spellings[2]))
		if env.Logs.Sent("jane+3@mail.bücher.de")+env.Logs.Sent(spellings[2]) != 1 {
			t.Errorf("a code for %s, another inbox, was not sent", spellings[2])
		}
	})
}
