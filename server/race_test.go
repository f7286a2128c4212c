package server_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store/storetest"
)

// one right code, sent five times at once, signs in
// once: on a first sign-in, and on an account the contact already proves.
func TestOneCodeSignsInOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		for _, existing := range []bool{false, true} {
			email := fmt.Sprintf("once.%v@example.com", existing)
			if existing {
				env.SignIn(t, "demo", email)
				env.Clock.Advance(61 * time.Second)
			}
			id := askCode(t, env, "demo", email)
			code := env.Logs.Code(email)
			got := statusesAtOnce(5, func(int) int { return exchange(t, env, "demo", id, code).StatusCode })
			if got[http.StatusOK] != 1 {
				t.Errorf("existing=%v: answers %v, want one 200", existing, got)
			}
		}
	})
}

// a code and a Google sign-in for one new email, at
// once, end in one account.
func TestACodeAndAGoogleSignInAtOnceMakeOneAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, down := oidctest.New(t), oidctest.New(t)
		down.SetDown(true)
		env := apptest.Start(t, dbURL, idpConfig(iss, down, "http://127.0.0.1:1"))
		for trial := range 8 {
			email := fmt.Sprintf("both%d@example.com", trial)
			id := askCode(t, env, "shop", email)
			code := env.Logs.Code(email)
			var otp, google rawReply
			atOnce(func() { otp = exchange(t, env, "shop", id, code) }, func() {
				google = authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(
					oidctest.With(iss.Claims("web-app", fmt.Sprintf("g-both-%d", trial)), "email", email, "email_verified", true))})
			})
			a, b := subOf(t, mustToken(t, otp)), subOf(t, mustToken(t, google))
			if a != b {
				t.Errorf("trial %d: the code signed into %s, Google into %s: two accounts for one email", trial, a, b)
			}
		}
	})
}

// erasing an account while a provider's first sign-in
// links to it leaves no identity behind (erasure unlinks them all).
func TestErasureRacingALinkLeavesNoIdentity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, down := oidctest.New(t), oidctest.New(t)
		down.SetDown(true)
		env := apptest.Start(t, dbURL, idpConfig(iss, down, "http://127.0.0.1:1"))
		left := 0
		const trials = 15
		for trial := range trials {
			email := fmt.Sprintf("erased%d@example.com", trial)
			tok := env.SignIn(t, "shop", email)
			sub := fmt.Sprintf("g-erased-%d", trial)
			atOnce(func() { rawCall(t, env, http.MethodDelete, "/api/shop/customer", nil, withToken(tok)...) }, func() {
				authenticate(t, env, "shop", "google", map[string]any{"idToken": iss.Key("RS256").Sign(
					oidctest.With(iss.Claims("web-app", sub), "email", email, "email_verified", true))})
			})
			id, err := env.App.Store.Identity(ctx, "shop", "google", sub)
			if err == nil && id.Account == nil {
				left++
			}
		}
		if left > 0 {
			t.Errorf("%d of %d erasures left the provider's identity linked to the erased account", left, trials)
		}
	})
}

// two replicas asked for codes to one address at once
// send one (the resend interval), and parallel wrong codes across them
// evaluate at most maxAttempts.
func TestTwoReplicasSendOneCodePerInterval(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	one, two := apptest.Start(t, dbURL, ""), apptest.Start(t, dbURL, "")
	const to = "two.replicas@example.com"
	got := statusesAtOnce(20, func(i int) int {
		return post(t, []*apptest.Env{one, two}[i%2], "/api/demo/customer/authenticate?provider=otp", `{"email":"`+to+`"}`).StatusCode
	})
	if got[http.StatusAccepted] != 1 || one.Logs.Sent(to)+two.Logs.Sent(to) != 1 {
		t.Fatalf("answers %v, %d codes sent; want one", got, one.Logs.Sent(to)+two.Logs.Sent(to))
	}
}

// atOnce runs every f at the same moment, each in its own goroutine,
// released together, and returns when all are done.
func atOnce(fs ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, f := range fs {
		wg.Go(func() { <-start; f() })
	}
	close(start)
	wg.Wait()
}

// statusesAtOnce sends n requests at the same moment, the i-th by
// request(i), and counts their answers by status.
func statusesAtOnce(n int, request func(i int) int) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	fs := make([]func(), n)
	for i := range fs {
		fs[i] = func() {
			status := request(i)
			mu.Lock()
			got[status]++
			mu.Unlock()
		}
	}
	atOnce(fs...)
	return got
}
