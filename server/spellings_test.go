package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// A stranger asking codes for other spellings of an owner's inbox (a
// subaddress, Gmail's dots, googlemail.com) never keeps the owner from a
// code for the address of their account, one they can sign in with: a
// resend interval shared by the spellings (ba8e170, reverted) let one
// request a minute for owner+x@gmail.com answer the owner 429 for good,
// while the code that request put in the owner's inbox signed in nowhere.
func TestCodesToOtherSpellingsNeverKeepTheOwnerFromSigningIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const signIn = "/api/demo/customer/authenticate?provider=otp"
		env.SignIn(t, "demo", "owner@gmail.com")
		env.Clock.Advance(2 * time.Minute) // the owner's own resend interval is over
		for _, email := range []string{"owner+x@gmail.com", "o.wner@gmail.com", "owner@googlemail.com"} {
			if got := post(t, env, signIn, `{"email":"`+email+`"}`).StatusCode; got != http.StatusAccepted {
				t.Fatalf("the stranger's code for %s: %d, want 202", email, got)
			}
		}
		if got := post(t, env, signIn, `{"email":"owner@gmail.com"}`).StatusCode; got != http.StatusAccepted {
			t.Fatalf("the owner's code, after the stranger's to other spellings: %d, want 202", got)
		}
		code := env.Logs.Code("owner@gmail.com")
		if got := post(t, env, signIn, `{"email":"owner@gmail.com","code":"`+code+`"}`).StatusCode; got != http.StatusOK {
			t.Fatalf("the owner signing in with that code: %d, want 200", got)
		}
	})
}
