package server_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to hold a lock

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// A thief with a stolen token asks to put their own address on the account
// just as support revokes its sessions: the request was let in before the
// revocation, its challenge written after it. The change was asked by a
// revoked token and must not complete (a new token and the thief's address
// verified on the account).
func TestAContactChangeInFlightWhenSessionsAreRevokedCannotBeFinished(t *testing.T) {
	dbURL := storetest.PostgresURL(t) // skips without PostgreSQL
	env := apptest.Start(t, dbURL, "")
	a := env.Admin(t)
	adm := a.Client(t, a.Key(t, "demo"))
	const owner, thief = "inflight.owner@example.com", "inflight.thief@example.com"
	stolen := env.SignIn(t, "demo", owner)
	nextSecond() // the revocation falls in a later second than the token's
	changeInFlight(t, env, dbURL, stolen, owner, thief, func() {
		if res, err := adm.RevokeCustomerSessionsWithResponse(ctx, "demo", subOf(t, stolen)); err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %v", err)
		}
	})
}

// The same as the tenant's leaked signing key is retired (rotate-key
// --retire-previous): a change the key's token asked, let in before the
// retirement and written after it, does not complete.
func TestAContactChangeInFlightWhenItsTokensKeyIsRetiredCannotBeFinished(t *testing.T) {
	dbURL := storetest.PostgresURL(t) // skips without PostgreSQL
	env := apptest.Start(t, dbURL, "")
	const owner, thief = "inflight.retired.owner@example.com", "inflight.retired.thief@example.com"
	stolen := env.SignIn(t, "demo", owner)
	kid, err := env.App.Tokens.Rotate(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	nextSecond() // the retirement falls in a later second than the token's
	changeInFlight(t, env, dbURL, stolen, owner, thief, func() {
		if _, err := env.App.Tokens.RetirePrevious(ctx, "demo", kid); err != nil {
			t.Fatal(err)
		}
	})
}

// changeInFlight has the holder of stolen, a token of owner's account, ask
// to put thief on it, and runs between once the request is authorised and
// before it writes its challenge: the request is held on a lock of the
// table its Idempotency-Key goes to (PostgreSQL shows who waits). The
// change must not complete.
func changeInFlight(t *testing.T, env *apptest.Env, dbURL, stolen, owner, thief string, between func()) {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback() }()
	if _, err := lock.ExecContext(ctx, "LOCK TABLE idempotency_keys IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	type reply struct {
		status int
		body   string
		err    error
	}
	done := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.Server.URL+"/api/demo/customer",
			strings.NewReader(`{"email":"`+thief+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+stolen)
		req.Header.Set("Idempotency-Key", "in-flight-change")
		res, err := env.HTTP.Do(req)
		if err != nil {
			done <- reply{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		done <- reply{status: res.StatusCode, body: string(b)}
	}()
	for waiting := 0; waiting == 0; time.Sleep(time.Millisecond) {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks
			WHERE NOT granted AND relation = 'idempotency_keys'::regclass`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	between()
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.status != http.StatusAccepted {
		return // refused at once: nothing to finish
	}
	var ch struct {
		ChallengeID string `json:"challengeId"`
	}
	if err := json.Unmarshal([]byte(r.body), &ch); err != nil {
		t.Fatalf("the change's challenge: %v %s", err, r.body)
	}
	id := ch.ChallengeID
	x := exchange(t, env, "demo", id, env.Logs.Code(thief))
	if x.StatusCode == http.StatusOK {
		t.Fatalf("the change a refused token asked finished: %d %s", x.StatusCode, x.body)
	}
	if x.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("finishing the change a refused token asked: %d %s, want 422", x.StatusCode, x.body)
	}
	if c, err := env.App.Store.CustomerByEmail(ctx, "demo", owner); err != nil || !c.EmailVerified {
		t.Fatalf("the owner's verified address is no longer on the account: %v", err)
	}
}
