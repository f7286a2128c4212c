package server_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// Observation 6: two hundred wrong codes at once, over two replicas on one
// PostgreSQL database, evaluate no more codes than the limits allow: at
// most maxAttempts per challenge, and never more than maxFailuresPerDay for
// the destination, so a stranger locks nobody out faster than the limits
// say.
func TestCodeLimitsHoldAcrossReplicas(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set: replicas share a PostgreSQL database")
	}
	const cfg = `
tenants:
  demo:
    otp: {maxAttempts: 5, maxFailuresPerDay: 12}
`
	dbURL := storetest.PostgresURL(t)
	one, two := apptest.Start(t, dbURL, cfg), apptest.Start(t, dbURL, cfg)
	// Both replicas read one time, kept away from midnight UTC, so that the
	// day's failures are one counter for the whole test.
	advance := func(d time.Duration) { one.Clock.Advance(d); two.Clock.Advance(d) }
	if now := time.Now().UTC(); now.Add(15*time.Minute).Day() != now.Day() {
		advance(20 * time.Minute)
	}
	const victim = "victim6@example.com"
	var ids []string
	for range 4 {
		ids = append(ids, askCode(t, one, "demo", victim))
		advance(61 * time.Second) // past the resend interval
	}
	code := one.Logs.Code(victim)

	statuses := statusesAtOnce(200, func(i int) int {
		return exchange(t, []*apptest.Env{one, two}[i%2], "demo", ids[i%len(ids)], notCode(code)).StatusCode
	})
	if statuses[http.StatusUnprocessableEntity]+statuses[http.StatusTooManyRequests] != 200 {
		t.Fatalf("answers: %v, want only 422 and 429", statuses)
	}
	for _, id := range ids {
		c, err := one.App.Store.Challenge(ctx, "demo", id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Attempts > 5 {
			t.Errorf("challenge %s: %d codes evaluated, the limit is 5", id, c.Attempts)
		}
	}
	day := one.Clock.Now().UTC().Format(time.DateOnly)
	if n, err := one.App.Store.Counted(ctx, "demo", "fail:"+victim, day); err != nil || n > 12 {
		t.Fatalf("the day's failures: %d %v, the limit is 12", n, err)
	}
	// The destination is locked for the day: no new code.
	advance(5 * time.Minute)
	r := post(t, two, "/api/demo/customer/authenticate?provider=otp", `{"email":"`+victim+`"}`)
	mustProblem(t, r, http.StatusTooManyRequests)
}
