package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store"
)

// The times an answer shows are the times stored: a later read shows the same
// instants, to the digit, on both databases (PostgreSQL keeps microseconds).
func TestAnsweredTimesAreStoredTimes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const path = "/api/demo/customer"
		view := func(r rawReply) map[string]any {
			t.Helper()
			var c map[string]any
			if r.StatusCode != http.StatusOK || json.Unmarshal(r.body, &c) != nil {
				t.Fatalf("%s %s → %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body)
			}
			return c
		}

		created := view(rawCall(t, env, http.MethodPost, path, strings.NewReader(`{"email":"times@example.com"}`)))
		tok := signIn(t, env, "demo", "times@example.com")
		read := view(rawCall(t, env, http.MethodGet, path, nil, "Authorization", "Bearer "+tok))
		// The sign-in verified the email, so only createdAt is the create's still.
		if created["createdAt"] != read["createdAt"] {
			t.Errorf("create answered createdAt %v; the next read shows %v", created["createdAt"], read["createdAt"])
		}

		updated := view(rawCall(t, env, http.MethodPost, path, strings.NewReader(`{"firstName":"Tim"}`), "Authorization", "Bearer "+tok))
		read = view(rawCall(t, env, http.MethodGet, path, nil, "Authorization", "Bearer "+tok))
		if updated["updatedAt"] != read["updatedAt"] || updated["createdAt"] != read["createdAt"] {
			t.Errorf("update answered updatedAt %v; the next read shows %v", updated["updatedAt"], read["updatedAt"])
		}

		// The event of the update carries the same instants as the account.
		evs, err := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
		if err != nil || len(evs) == 0 {
			t.Fatalf("events: %v %d", err, len(evs))
		}
		var last struct {
			OccurredAt string         `json:"occurredAt"`
			Data       map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(evs[len(evs)-1].Payload), &last); err != nil {
			t.Fatal(err)
		}
		if last.OccurredAt != read["updatedAt"] || last.Data["updatedAt"] != read["updatedAt"] {
			t.Errorf("event occurredAt %s, data.updatedAt %v; the account shows updatedAt %v", last.OccurredAt, last.Data["updatedAt"], read["updatedAt"])
		}
	})
}
