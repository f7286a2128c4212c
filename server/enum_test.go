package server_test

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/sender/smtptest"
	"github.com/customerd/customerd/store/storetest"
)

// Learning whether someone has an account, and locking them out: each test
// compares what a stranger sees, or can do, for an address with an account
// and one without.

// A token holder's contact change to an address verified on another
// account sends no code (TestAContactChangeDoesNotTellWhoHasAnAccount), so
// it must not depend on anything a real send does either: with the
// tenant's daily budget of messages spent, a free address answers 429 and
// a shopper's address 202.
func TestAContactChangeDoesNotTellWhoHasAnAccountWhenTheBudgetIsSpent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  full:
    checkInPolicy: full
    senders:
      email: {type: log, dailyBudget: 3}
`)
		if now := time.Now().UTC(); now.Add(5*time.Minute).Day() != now.Day() {
			t.Skip("too close to midnight UTC: the budget is a day's")
		}
		const taken = "shopper.budget@example.com"
		env.SignIn(t, "full", taken)
		prober := env.SignIn(t, "full", "prober.budget@example.com")
		// The stranger spends the rest of the day's budget.
		for i := 0; ; i++ {
			r := post(t, env, "/api/full/customer/authenticate?provider=otp", fmt.Sprintf(`{"email":"spend%d@example.com"}`, i))
			if r.StatusCode == http.StatusTooManyRequests {
				break
			}
			if r.StatusCode != http.StatusAccepted || i > 10 {
				t.Fatalf("spend the budget: %d %s", r.StatusCode, r.body)
			}
		}
		known := post(t, env, "/api/full/customer", `{"email":"`+taken+`"}`, withToken(prober)...)
		unknown := post(t, env, "/api/full/customer", `{"email":"nobody.budget@example.com"}`, withToken(prober)...)
		if known.StatusCode != unknown.StatusCode {
			t.Fatalf("a shopper's address %d, a free one %d %s: the answer tells who has an account", known.StatusCode, unknown.StatusCode, unknown.body)
		}
	})
}

// README, Preregistration (partial): "New and existing emails get the same
// status, the same body shape and the same work". The statements each
// anonymous POST sends PostgreSQL (each a round trip): for a new address,
// an account nobody proved and a shopper's account.
func TestAnAnonymousCreateDoesTheSameWorkForEveryAddress(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set: the statements are PostgreSQL's")
	}
	cfg := apptest.Config(t, storetest.PostgresURL(t), `
tenants:
  partial: {checkInPolicy: partial, checkInPage: "https://shop.example/check-in"}
`)
	rec := &storetest.Recorder{}
	env := apptest.StartConfig(t, cfg, app.WithQueryTracer(rec), app.WithReconcile(time.Hour))
	env.StopEvents()
	const proven, unproven = "proven.work@example.com", "unproven.work@example.com"
	env.SignIn(t, "partial", proven)
	env.Clock.Advance(61 * time.Second)
	challengeID(t, post(t, env, "/api/partial/customer", `{"email":"`+unproven+`"}`))
	challengeID(t, post(t, env, "/api/partial/customer", `{"email":"warm.work@example.com"}`)) // statements prepared
	work := map[string][]string{}
	for _, email := range []string{"fresh.work@example.com", unproven, proven} {
		env.Clock.Advance(61 * time.Second)
		rec.Start()
		challengeID(t, post(t, env, "/api/partial/customer", `{"email":"`+email+`","firstName":"Eve"}`))
		for _, st := range rec.Stop() {
			if q := strings.TrimSpace(st.SQL); !strings.HasPrefix(q, `SELECT id, version`) {
				work[email] = append(work[email], strings.Join(strings.Fields(q), " ")[:min(60, len(strings.Join(strings.Fields(q), " ")))])
			}
		}
	}
	if n := len(work[unproven]); len(work["fresh.work@example.com"]) != n || len(work[proven]) != n {
		t.Fatalf("statements:\nnew address (%d): %q\naccount nobody proved (%d): %q\nshopper's account (%d): %q",
			len(work["fresh.work@example.com"]), work["fresh.work@example.com"], len(work[unproven]), work[unproven], len(work[proven]), work[proven])
	}
}

// A token holder's contact change to an address verified on another
// account sends nothing (checkInPolicy partial or full). Its wrong codes
// must not count against that address's day, or anyone with an account
// locks a shopper out of code sign-in until midnight UTC, a challenge a
// minute, with the shopper receiving no message at all. To the asker, and
// to anyone else asking, the address then looks as a free one would after
// a day of wrong codes: locked.
func TestAContactChangeNobodyReceivesCannotLockTheOwnerOut(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := startFullForADay(t, dbURL)
		const victim = "victim.silent@example.com"
		env.SignIn(t, "full", victim)
		attacker := env.SignIn(t, "full", "attacker.silent@example.com")
		before := env.Logs.Sent(victim)
		for range 20 { // 100 failures: the default maxFailuresPerDay
			env.Clock.Advance(61 * time.Second)
			id := challengeID(t, post(t, env, "/api/full/customer", `{"email":"`+victim+`"}`, withToken(attacker)...))
			for range 5 {
				mustProblem(t, exchange(t, env, "full", id, "000000"), http.StatusUnprocessableEntity)
			}
		}
		if n := env.Logs.Sent(victim) - before; n != 0 {
			t.Fatalf("%d messages went to the victim", n)
		}
		env.Clock.Advance(61 * time.Second)
		r := post(t, env, "/api/full/customer/authenticate?provider=otp", `{"email":"`+victim+`"}`)
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("the victim, who never received a code, asks for one: %d %s (Retry-After %s)", r.StatusCode, r.body, r.Header.Get("Retry-After"))
		}
		accomplice := env.SignIn(t, "full", "accomplice.silent@example.com")
		for _, token := range []string{attacker, accomplice} {
			r := post(t, env, "/api/full/customer", `{"email":"`+victim+`"}`, withToken(token)...)
			if p := mustProblem(t, r, http.StatusTooManyRequests); !strings.Contains(fmt.Sprint(p["detail"], p["title"]), "wrong codes") {
				t.Errorf("a contact change to the address after a day of wrong codes: %s, want it locked as a free address would be", r.body)
			}
		}
	})
}

// A token holder's wrong codes on contact changes to an address count
// against contact changes to it, never against its sign-ins, whether the
// address is free (its codes sent) or another account's (withheld): after
// a day of them, a sign-in code for the address is sent alike, and a
// contact change to it is refused alike. Before, a free address's were
// charged to its own day, and its sign-in answered 429 where an owned
// one's answered 202: who has an account, told to anyone with one.
func TestAContactChangesWrongCodesDoNotTellWhoHasAnAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := startFullForADay(t, dbURL)
		const owned, free = "owned.probe@example.com", "free.probe@example.com"
		env.SignIn(t, "full", owned)
		attacker := env.SignIn(t, "full", "attacker.probe@example.com")
		for range 20 { // 100 failures each: the default maxFailuresPerDay
			env.Clock.Advance(61 * time.Second)
			for _, to := range []string{owned, free} {
				id := challengeID(t, post(t, env, "/api/full/customer", `{"email":"`+to+`"}`, withToken(attacker)...))
				for range 5 {
					mustProblem(t, exchange(t, env, "full", id, "000000"), http.StatusUnprocessableEntity)
				}
			}
		}
		env.Clock.Advance(61 * time.Second)
		for _, to := range []string{owned, free} {
			r := post(t, env, "/api/full/customer/authenticate?provider=otp", `{"email":"`+to+`"}`)
			if r.StatusCode != http.StatusAccepted {
				t.Fatalf("a sign-in code for %s after a day of wrong contact-change codes: %d %s, want 202", to, r.StatusCode, r.body)
			}
			// Its owner signs in with it.
			mustToken(t, exchange(t, env, "full", challengeID(t, r), env.Logs.Code(to)))
			mustProblem(t, post(t, env, "/api/full/customer", `{"email":"`+to+`"}`, withToken(attacker)...), http.StatusTooManyRequests)
		}
	})
}

// startFullForADay starts customerd with tenant full (checkInPolicy full),
// its clock kept away from midnight UTC: one day's counters for the test.
func startFullForADay(t *testing.T, dbURL string) *apptest.Env {
	env := apptest.Start(t, dbURL, `
tenants:
  full: {checkInPolicy: full}
`)
	if now := time.Now().UTC(); now.Add(30*time.Minute).Day() != now.Day() {
		env.Clock.Advance(40 * time.Minute)
	}
	return env
}

// A token holder's contact change to an address verified on another
// account (checkInPolicy full) is withheld: no code goes to it. During an
// outage of the tenant's relay or gateway a free address's code fails
// (503); the withheld one was "sent" (202): who has an account, told to
// any token holder for as long as the outage lasted. Now, once the sender
// has failed for itself, a withheld code fails alike, and once it is back
// both get 202. (The sender's state, and a refused recipient changing
// nothing in it: sender/outage_test.go.)
func TestAContactChangeDoesNotTellWhoHasAnAccountDuringAnOutage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, relay, twilio, emailSignIn := startFullWithSenders(t, dbURL, 5*time.Second)
		const takenEmail, takenPhone = "shopper.outage@example.com", "+33612345678"
		emailSignIn(takenEmail)                                                                // a shopper by email
		smsSignIn(t, env, "full", askSMS(t, env, "full", takenPhone), twilio.code(takenPhone)) // another by phone
		prober := emailSignIn("prober.outage@example.com")

		for _, tc := range []struct {
			field, taken, free string
			down, up           func()
		}{
			{"email", takenEmail, "free.outage@example.com",
				func() { relay.Unavailable(true) }, func() { relay.Unavailable(false) }},
			{"phoneNumber", takenPhone, "+33687654321",
				func() { twilio.set("fail") }, func() { twilio.set("") }},
		} {
			change := func(to string) rawReply {
				return post(t, env, "/api/full/customer", `{"`+tc.field+`":"`+to+`"}`, withToken(prober)...)
			}
			tc.down()
			// The free address first, then the other way round: once the
			// sender has failed, the order tells nothing either.
			unknown, known := change(tc.free), change(tc.taken)
			sameProblem(t, tc.field+", the sender down", unknown, known, http.StatusServiceUnavailable)
			known, unknown = change(tc.taken), change(tc.free)
			sameProblem(t, tc.field+", the sender down", unknown, known, http.StatusServiceUnavailable)

			tc.up()
			challengeID(t, change(tc.free)) // delivered: the sender is up again
			challengeID(t, change(tc.taken))
		}
		if d := relay.Received(t, 0); len(d.To) != 1 || d.To[0] != "free.outage@example.com" {
			t.Errorf("the relay got a message for %q, want the free address's code", d.To)
		}
		relay.NoDelivery(t)
		if twilio.code(takenPhone) == "" || twilio.code("+33687654321") == "" || len(twilio.all(takenPhone)) != 1 {
			t.Errorf("the gateway got %d texts for the shopper's number, want its sign-in code only", len(twilio.all(takenPhone)))
		}
	})
}

// A recipient the relay or gateway refuses (a number that texted STOP, a
// mailbox deleted since it was verified) must not tell a token holder
// whether another account proved it either. Found by an audit: a contact
// change to such an address was sent, refused, and answered 503, while one
// to the same address verified on another account was withheld, never
// sent, and answered 202. Now a refused code whose withholding depended on
// the account is kept and answered as a withheld one: 202 both, the same
// answer when asked again, the same for a wrong code, and nothing
// received by anyone. So is an email sign-in while another spelling of its
// inbox has just had a code (withholds): the owner's verified address is
// sent its code, any other withheld. A plain sign-in nobody could have
// withheld still answers a refusal 503 (TestSMTPRelayJourney).
func TestARefusedRecipientDoesNotTellWhoHasAnAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, relay, twilio, emailSignIn := startFullWithSenders(t, dbURL, 5*time.Second)
		const takenEmail, takenPhone = "shopper.refused@example.com", "+33612345670"
		emailSignIn(takenEmail)
		smsSignIn(t, env, "full", askSMS(t, env, "full", takenPhone), twilio.code(takenPhone))
		prober := emailSignIn("prober.refused@example.com")
		twilioSent := twilio.count()

		for _, tc := range []struct {
			what, taken, free string
			// prepare, when set, comes before the first ask of an address.
			prepare        func(to string)
			ask            func(to string) rawReply
			refuse, accept func()
		}{
			{"a contact change of phone number", takenPhone, "+33687654320", nil,
				func(to string) rawReply {
					return post(t, env, "/api/full/customer", `{"phoneNumber":"`+to+`"}`, withToken(prober)...)
				},
				func() { twilio.set("refuse") }, func() { twilio.set("") }},
			{"a contact change of email", takenEmail, "free.refused@example.com", nil,
				func(to string) rawReply {
					return post(t, env, "/api/full/customer", `{"email":"`+to+`"}`, withToken(prober)...)
				},
				func() { relay.RefuseRecipients(true) }, func() { relay.RefuseRecipients(false) }},
			{"an email sign-in, another spelling of the inbox just asked", takenEmail, "free.refused@example.com",
				func(to string) {
					// Delivered: the relay takes it, and the inbox is marked.
					local, domain, _ := strings.Cut(to, "@")
					relay.RefuseRecipients(false)
					challengeID(t, post(t, env, "/api/full/customer/authenticate?provider=otp", `{"email":"`+local+`+mark@`+domain+`"}`))
					relay.Received(t, 5*time.Second)
					relay.RefuseRecipients(true)
				},
				func(to string) rawReply {
					return post(t, env, "/api/full/customer/authenticate?provider=otp", `{"email":"`+to+`"}`)
				},
				func() { relay.RefuseRecipients(true) }, func() { relay.RefuseRecipients(false) }},
		} {
			env.Clock.Advance(61 * time.Second)
			tc.refuse()
			first := func(to string) rawReply {
				if tc.prepare != nil {
					tc.prepare(to)
				}
				return tc.ask(to)
			}
			known, unknown := first(tc.taken), first(tc.free)
			if known.StatusCode != http.StatusAccepted || unknown.StatusCode != http.StatusAccepted {
				t.Errorf("%s: the address of an account %d %s, a free one %d %s: want 202 both",
					tc.what, known.StatusCode, known.body, unknown.StatusCode, unknown.body)
				tc.accept()
				continue
			}
			k, u := decodeObject(t, known), decodeObject(t, unknown)
			if !reflect.DeepEqual(slices.Sorted(maps.Keys(k)), slices.Sorted(maps.Keys(u))) {
				t.Fatalf("%s: the two answers differ in shape: %v and %v", tc.what, k, u)
			}
			// The bodies differ by their ids, masked addresses and times.
			sameHeaders(t, tc.what, known, unknown, "Content-Length")
			// Asked again at once: the same answer for both.
			again := func(to string) int { return tc.ask(to).StatusCode }
			if a, b := again(tc.taken), again(tc.free); a != b {
				t.Errorf("%s, asked again at once: the address of an account %d, a free one %d", tc.what, a, b)
			}
			// No code completes either.
			for _, r := range []map[string]any{k, u} {
				mustProblem(t, exchange(t, env, "full", r["challengeId"].(string), "000000"), http.StatusUnprocessableEntity)
			}
			tc.accept()
		}
		relay.NoDelivery(t)
		// Each refusal left an info line for the operator, naming neither
		// the address nor anything of the code.
		refusals := 0
		for _, l := range env.Logs.Lines() {
			if strings.HasPrefix(fmt.Sprint(l["msg"]), "code not delivered") {
				refusals++
				if line := fmt.Sprint(l); strings.Contains(line, "refused@example.com") || strings.Contains(line, "87654320") || l["level"] != "INFO" {
					t.Errorf("the refusal's log line: %s", line)
				}
			}
		}
		if refusals != 3 { // the free number's and email's changes, the marked inbox's owner's sign-in
			t.Errorf("%d log lines of refused recipients, want 3", refusals)
		}
		if n := twilio.count() - twilioSent; n != 0 {
			t.Errorf("the gateway took %d texts during the refusals", n)
		}
		if me := customerOf(t, env, "full", prober); me["email"] != "prober.refused@example.com" || me["phoneNumber"] != nil {
			t.Errorf("the prober's account: %v", me)
		}
	})
}

// A relay may take longer than the send's timeout to judge a recipient at
// RCPT TO (Exim's verify = recipient/callout, the address's domain
// stalling): that must not tell a token holder whether another account
// proved the address either. Found by an audit: the timeout was taken for
// neither the recipient's failure nor the relay's, so a contact change to a
// free address at such a domain answered 503 once the timeout passed, and
// one to an address another account proved, its code withheld, 202; so for
// every address at the domain. Now the timeout is the recipient's, like any
// other failure at RCPT TO: the free address's code is kept and answered as
// a withheld one, and the relay is not taken for down, so the withheld code
// asked next still answers 202. (The sender's side: sender
// TestARecipientTheRelayTakesTooLongToJudgeIsRefused.)
func TestARecipientTheRelayTakesTooLongToJudgeDoesNotTellWhoHasAnAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		// One mask for both (s***@s***.example): the answers may not differ.
		const taken, free, timeout = "shopper@slow.example", "someone@slow.example", time.Second
		env, relay, _, emailSignIn := startFullWithSenders(t, dbURL, timeout, smtptest.SlowRecipients(5*timeout, free))
		emailSignIn(taken)
		prober := emailSignIn("prober.stalled@example.com")
		change := func(to string) rawReply {
			return post(t, env, "/api/full/customer", `{"email":"`+to+`"}`, withToken(prober)...)
		}

		env.Clock.Advance(61 * time.Second) // past the shopper's sign-in code's resend interval
		// The free address first: its timeout must not put the relay down
		// for the withheld code asked next.
		unknown, known := change(free), change(taken)
		sameAccepted(t, "a contact change to a stalling domain", known, unknown)
		if a, b := change(taken).StatusCode, change(free).StatusCode; a != b {
			t.Errorf("asked again at once: the address of an account %d, a free one %d", a, b)
		}
		// No code completes either.
		for _, r := range []rawReply{known, unknown} {
			mustProblem(t, exchange(t, env, "full", challengeID(t, r), "000000"), http.StatusUnprocessableEntity)
		}
		relay.NoDelivery(t)
		// The free address's code went the way of a recipient refused at
		// RCPT TO.
		refusals := 0
		for _, l := range env.Logs.Lines() {
			if strings.HasPrefix(fmt.Sprint(l["msg"]), "code not delivered") && strings.Contains(fmt.Sprint(l["error"]), "rcpt to") {
				refusals++
			}
		}
		if refusals != 1 {
			t.Errorf("%d log lines of a recipient refused at RCPT TO, want 1", refusals)
		}
		if me := customerOf(t, env, "full", prober); me["email"] != "prober.stalled@example.com" {
			t.Errorf("the prober's account: %v", me)
		}
	})
}

// startFullWithSenders starts customerd with tenant full (checkInPolicy
// full) sending codes by a local SMTP relay, started with relayOpts and
// given smtpTimeout, and a local Twilio gateway, and returns them with
// emailSignIn, which signs an email in by the relay's code and returns the
// token.
func startFullWithSenders(t *testing.T, dbURL string, smtpTimeout time.Duration, relayOpts ...smtptest.Option) (env *apptest.Env, relay *smtptest.Server, twilio *gateway, emailSignIn func(email string) string) {
	relay, twilio = smtptest.Start(t, smtptest.StartTLS, smtpUser, smtpPassword, relayOpts...), startTwilio(t)
	env = apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  full:
    checkInPolicy: full
    senders:
      email: %s
      sms:
        type: twilio
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 5s, allowPrivateNetwork: true}
`, smtpSender(relay.Port, relay.RootCAs, smtpTimeout), twilio.srv.URL))
	emailSignIn = func(email string) string {
		r := authenticate(t, env, "full", "otp", map[string]any{"email": email})
		return mustToken(t, exchange(t, env, "full", challengeID(t, r), codeFrom(t, relay.Received(t, 5*time.Second), email)))
	}
	return env, relay, twilio, emailSignIn
}

// sameProblem fails t unless a and b are the same problem of status, with
// the same headers: nothing in them tells one request from the other.
func sameProblem(t *testing.T, what string, a, b rawReply, status int) {
	t.Helper()
	sameFields(t, what, mustProblem(t, a, status), mustProblem(t, b, status), "type", "title", "status", "detail")
	sameHeaders(t, what, a, b)
}

// sameFields fails t unless a and b hold the same values under keys.
func sameFields(t *testing.T, what string, a, b map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if a[k] != b[k] {
			t.Errorf("%s: %s %v and %v", what, k, a[k], b[k])
		}
	}
}

// sameHeaders fails t unless a and b have the same headers, but for Date,
// X-Request-Id and ignored.
func sameHeaders(t *testing.T, what string, a, b rawReply, ignored ...string) {
	t.Helper()
	ha, hb := a.Header.Clone(), b.Header.Clone()
	for _, h := range []http.Header{ha, hb} {
		for _, k := range append([]string{"Date", "X-Request-Id"}, ignored...) {
			h.Del(k)
		}
	}
	if !reflect.DeepEqual(ha, hb) {
		t.Errorf("%s: headers\n%v\nand\n%v", what, ha, hb)
	}
}
