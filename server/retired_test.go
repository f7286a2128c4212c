package server_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store/storetest"
)

// after `rotate-key --retire-previous` (run here on
// replica one, as the command's own process would), replica two, which
// cached the old token, refuses it on every endpoint once its keys are a
// minute old: the verified-token cache does not extend the documented window.
func TestARetiredKeysCachedTokenOnTheOtherReplica(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set: replicas share a PostgreSQL database")
	}
	dbURL := storetest.PostgresURL(t)
	one, two := apptest.Start(t, dbURL, ""), apptest.Start(t, dbURL, "")
	tok := two.SignIn(t, "demo", "leaked@example.com")
	for range 3 {
		if r, err := two.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusOK {
			t.Fatalf("GET: %v %d", err, r.StatusCode())
		}
	}
	one.Clock.Advance(time.Second)
	kid, err := one.App.Tokens.Rotate(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.App.Tokens.RetirePrevious(ctx, "demo", kid); err != nil {
		t.Fatal(err)
	}
	// Within the minute, the cached token may still be served (documented).
	// Every hit keeps its ring; past the minute, the ring reloads.
	for range 3 {
		two.Clock.Advance(20 * time.Second)
		_, _ = two.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok))
	}
	two.Clock.Advance(time.Second)
	if r, err := two.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusUnauthorized {
		t.Errorf("GET: %v %d", err, r.StatusCode())
	}
	if r, err := two.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{FirstName: ptr("Mallory")},
		apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusUnauthorized {
		t.Errorf("POST: %v %d", err, r.StatusCode())
	}
	if r, err := two.Client.DeleteCustomerWithResponse(ctx, "demo", apptest.Bearer(tok)); err != nil || r.StatusCode() != http.StatusUnauthorized {
		t.Errorf("DELETE: %v %d", err, r.StatusCode())
	}
	// A token two signs now is signed with the new key, and works on one.
	fresh := two.SignIn(t, "demo", "leaked@example.com")
	if r, err := one.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(fresh)); err != nil || r.StatusCode() != http.StatusOK {
		t.Errorf("a fresh token on one: %v %d", err, r.StatusCode())
	}
}
