package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/store/storetest"
)

// A replica's clock stepped back (NTP correcting a
// clock that ran ahead) must not leave a destination's resend throttle in
// force for as long as the clock was wrong: the throttle holds an interval.
func TestAResendThrottleOutlivesNoClockStep(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const to = "stepped@example.com"
		env.Clock.Advance(365 * 24 * time.Hour) // the replica's clock a year ahead
		askCode(t, env, "demo", to)
		env.Clock.Advance(-365 * 24 * time.Hour) // NTP steps it back
		env.Clock.Advance(61 * time.Second)      // past the resend interval
		r := post(t, env, "/api/demo/customer/authenticate?provider=otp", `{"email":"`+to+`"}`)
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("a code a minute after a clock step back: %d Retry-After %s s, want 202", r.StatusCode, r.Header.Get("Retry-After"))
		}
	})
}

// An Idempotency-Key lasts 24 hours (README, Idempotency): a day later the
// same key starts a new request, whatever the janitor deleted yet.
func TestAnIdempotencyKeyLastsADay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const key = "day-old-key"
		first := post(t, env, "/api/demo/customer", `{"email":"idem.day1@example.com"}`, "Idempotency-Key", key)
		if first.StatusCode != http.StatusOK {
			t.Fatalf("first: %d %s", first.StatusCode, first.body)
		}
		env.Clock.Advance(25 * time.Hour)
		again := post(t, env, "/api/demo/customer", `{"email":"idem.day2@example.com"}`, "Idempotency-Key", key)
		if again.StatusCode != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("the key 25 h later with another body: %d replayed %q: %s, want a new request",
				again.StatusCode, again.Header.Get("Idempotent-Replayed"), again.body)
		}
	})
}

// A tenant that shortens its tokenLifetime (after an incident, say) means no
// token of its to open an account longer than that from its sign-in.
func TestAShortenedTokenLifetimeBoundsEarlierTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "tenants:\n  demo:\n    tokenLifetime: 720h\n")
		tok := env.SignIn(t, "demo", "long.lived@example.com")
		a := env.Admin(t)
		adm := a.Client(t, a.Key(t, "*"))
		var s adminclient.TenantSettings
		if err := json.Unmarshal([]byte(`{"tokenLifetime":"1h"}`), &s); err != nil {
			t.Fatal(err)
		}
		if res, err := adm.ReplaceTenantWithResponse(ctx, "demo", nil, s); err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("shorten: %v %d", err, res.StatusCode())
		}
		env.Clock.Advance(2 * time.Hour)
		r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(tok)...)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a 720h token 2 h old, the tenant's lifetime now 1h: %d, want 401", r.StatusCode)
		}
		fresh := env.SignIn(t, "demo", "long.lived@example.com")
		if r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(fresh)...); r.StatusCode != http.StatusOK {
			t.Fatalf("a fresh token: %d", r.StatusCode)
		}
	})
}
