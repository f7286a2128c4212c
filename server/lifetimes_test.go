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
// token of its to open an account longer than that from its sign-in, and
// GET /customer says so: expiresAt is when the token ends, the sooner of its
// exp and its iat plus the tenant's lifetime. Found by an audit: expiresAt
// was the token's exp, so an app that planned its refresh by it met a 401.
func TestAShortenedTokenLifetimeBoundsEarlierTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "tenants:\n  demo:\n    tokenLifetime: 720h\n")
		tok := env.SignIn(t, "demo", "long.lived@example.com")
		a := env.Admin(t)
		adm := a.Client(t, a.Key(t, "*"))
		setLifetime := func(lifetime string) {
			t.Helper()
			var s adminclient.TenantSettings
			if err := json.Unmarshal([]byte(`{"tokenLifetime":"`+lifetime+`"}`), &s); err != nil {
				t.Fatal(err)
			}
			if res, err := adm.ReplaceTenantWithResponse(ctx, "demo", nil, s); err != nil || res.StatusCode() != http.StatusOK {
				t.Fatalf("tokenLifetime %s: %v %d", lifetime, err, res.StatusCode())
			}
		}
		setLifetime("1h")
		if got, iat := expiresAt(t, env, tok), claimTime(t, tok, "iat"); got.After(iat.Add(time.Hour)) {
			t.Errorf("a 720h token, the tenant's lifetime now 1h: expiresAt %s, want at most iat + 1h (%s)", got, iat.Add(time.Hour))
		}
		env.Clock.Advance(2 * time.Hour)
		r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(tok)...)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a 720h token 2 h old, the tenant's lifetime now 1h: %d, want 401", r.StatusCode)
		}
		fresh := env.SignIn(t, "demo", "long.lived@example.com")
		setLifetime("720h") // lengthened again: a token ends at its exp all the same
		if got, exp := expiresAt(t, env, fresh), claimTime(t, fresh, "exp"); !got.Equal(exp) {
			t.Errorf("a 1h token, the tenant's lifetime now 720h: expiresAt %s, want its exp %s", got, exp)
		}
	})
}

// expiresAt is what GET /customer answers with tok as expiresAt.
func expiresAt(t *testing.T, env *apptest.Env, tok string) time.Time {
	t.Helper()
	r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, withToken(tok)...)
	var c struct {
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if r.StatusCode != http.StatusOK || json.Unmarshal(r.body, &c) != nil {
		t.Fatalf("GET /customer: %d %s", r.StatusCode, r.body)
	}
	return c.ExpiresAt
}

// claimTime is tok's NumericDate claim name.
func claimTime(t *testing.T, tok, name string) time.Time {
	t.Helper()
	n, ok := tokenPayload(t, tok)[name].(float64)
	if !ok {
		t.Fatalf("token without %s", name)
	}
	return time.Unix(int64(n), 0)
}
