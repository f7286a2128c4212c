package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store"
)

// The times an answer shows are the times stored: a later read shows the same
// instants, to the digit, on both databases (PostgreSQL keeps microseconds).
func TestAnsweredTimesAreStoredTimes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const path = "/api/demo/customer"
		saved := func(r rawReply) map[string]any { // the 200 of a create or an update
			t.Helper()
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s → %d: %s", r.Request.Method, r.StatusCode, r.body)
			}
			return decodeObject(t, r)
		}
		answer := saved(rawCall(t, env, http.MethodPost, path, strings.NewReader(`{"email":"times@example.com"}`)))
		tok := env.SignIn(t, "demo", "times@example.com")
		read := customerOf(t, env, "demo", tok)
		// The sign-in verified the email, so only createdAt is the create's still.
		if answer["createdAt"] != read["createdAt"] {
			t.Errorf("create answered createdAt %v; the next read shows %v", answer["createdAt"], read["createdAt"])
		}

		updated := saved(rawCall(t, env, http.MethodPost, path, strings.NewReader(`{"firstName":"Tim"}`), "Authorization", "Bearer "+tok))
		read = customerOf(t, env, "demo", tok)
		if updated["updatedAt"] != read["updatedAt"] || updated["createdAt"] != read["createdAt"] {
			t.Errorf("update answered updatedAt %v; the next read shows %v", updated["updatedAt"], read["updatedAt"])
		}

		// A challenge's expiry as answered is the one stored.
		asked := rawCall(t, env, http.MethodPost, "/api/demo/customer/authenticate?provider=otp", strings.NewReader(`{"email":"expiry@example.com"}`))
		ch := decodeObject(t, asked)
		stored, err := env.App.Store.Challenge(ctx, "demo", fmt.Sprint(ch["challengeId"]))
		if asked.StatusCode != http.StatusAccepted || err != nil {
			t.Fatalf("ask for a code → %d %s: %v", asked.StatusCode, asked.body, err)
		}
		if want := stored.ExpiresAt.UTC().Format(time.RFC3339Nano); ch["expiresAt"] != want {
			t.Errorf("challenge answered expiresAt %v; stored %s", ch["expiresAt"], want)
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

// Numbers are kept in plain decimal, as PostgreSQL's numeric writes them, so
// the create's answer, a later read and both databases agree to the digit.
func TestNumbersReadBackAsAnswered(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const path = "/api/demo/customer"
		numbers := func(r rawReply) map[string]any {
			t.Helper()
			var c map[string]any
			dec := json.NewDecoder(bytes.NewReader(r.body))
			dec.UseNumber()
			if r.StatusCode != http.StatusOK || dec.Decode(&c) != nil {
				t.Fatalf("%s → %d: %s", r.Request.Method, r.StatusCode, r.body)
			}
			return map[string]any{"n": c["n"], "m": c["m"], "z": c["z"], "s": c["s"], "big": c["big"], "deep": c["deep"]}
		}
		created := numbers(rawCall(t, env, http.MethodPost, path, strings.NewReader(
			`{"email":"numbers@example.com","n":1e2,"m":1.50,"z":-0.0,"s":1.5e-7,"big":12345678901234567890123,"deep":[1E+2,{"r":2.5e1}]}`)))
		want := map[string]any{"n": json.Number("100"), "m": json.Number("1.50"), "z": json.Number("0.0"), "s": json.Number("0.00000015"),
			"big": json.Number("12345678901234567890123"), "deep": []any{json.Number("100"), map[string]any{"r": json.Number("25")}}}
		tok := env.SignIn(t, "demo", "numbers@example.com")
		read := numbers(rawCall(t, env, http.MethodGet, path, nil, "Authorization", "Bearer "+tok))
		for k, w := range want {
			c, _ := json.Marshal(created[k])
			r, _ := json.Marshal(read[k])
			ww, _ := json.Marshal(w)
			if string(c) != string(ww) || string(r) != string(ww) {
				t.Errorf("%s: answered %s, read back %s, want %s", k, c, r, ww)
			}
		}
	})
}
