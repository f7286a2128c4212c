package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// one mailbox gets one code of a kind per resend interval, whatever
// spelling of it the codes are asked for: a subaddress (victim+1@), and at
// Gmail, dots in the local part and googlemail.com, all reach the one
// inbox, and each was a destination of its own, a code a request, as fast
// as a bomber sent them. Two mailboxes stay two.
func TestOneMailboxGetsOneCodePerIntervalWhateverItsSpelling(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const signIn = "/api/demo/customer/authenticate?provider=otp"
		askFor := func(email string) int {
			return post(t, env, signIn, `{"email":"`+email+`"}`).StatusCode
		}
		if got := askFor("victim@gmail.com"); got != http.StatusAccepted {
			t.Fatalf("the first code: %d, want 202", got)
		}
		spellings := []string{"victim+1@gmail.com", "victim+news@gmail.com", "v.ictim@gmail.com",
			"v.i.c.t.i.m+x@gmail.com", "victim@googlemail.com", "Vic.Tim+2@GoogleMail.com"}
		for _, email := range spellings {
			if got := askFor(email); got != http.StatusTooManyRequests {
				t.Errorf("a code for %s within the interval: %d, want 429", email, got)
			}
		}
		sent := env.Logs.Sent("victim@gmail.com")
		for _, email := range spellings {
			sent += env.Logs.Sent(strings.ToLower(email))
		}
		if sent != 1 {
			t.Errorf("%d codes reached the one mailbox, want 1", sent)
		}
		// Dots mean something outside Gmail, and a plus starting the local part is no tag.
		for _, email := range []string{"j.doe@example.com", "jdoe@example.com", "+victim@gmail.com"} {
			if got := askFor(email); got != http.StatusAccepted {
				t.Errorf("a code for %s, another mailbox: %d, want 202", email, got)
			}
		}

		// A token holder's contact changes are a kind of their own, one per interval to the mailbox too.
		tok := env.SignIn(t, "demo", "bomber@example.com")
		change := func(email string) int {
			return post(t, env, "/api/demo/customer", `{"email":"`+email+`"}`, "Authorization", "Bearer "+tok).StatusCode
		}
		if got := change("victim+a@gmail.com"); got != http.StatusAccepted {
			t.Fatalf("the first contact change: %d, want 202", got)
		}
		for _, email := range []string{"victim+b@gmail.com", "vic.tim@gmail.com"} {
			if got := change(email); got != http.StatusTooManyRequests {
				t.Errorf("a contact change to %s within the interval: %d, want 429", email, got)
			}
		}
		if n := env.Logs.Sent("victim+b@gmail.com") + env.Logs.Sent("vic.tim@gmail.com"); n != 0 {
			t.Errorf("%d more contact-change codes reached the mailbox, want 0", n)
		}
	})
}
