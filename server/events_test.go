package server_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

// makeEvents gives n customers three events each (created by a code, then
// two updates) and returns how many events the outbox holds.
func makeEvents(t *testing.T, envs []*apptest.Env, n int) int {
	t.Helper()
	for i := range n {
		env := envs[i%len(envs)]
		email := fmt.Sprintf("hook%d@example.com", i)
		tok := env.SignIn(t, "demo", email)
		for _, name := range []string{"Ann", "Bea"} {
			postOK(t, env, "/api/demo/customer", `{"firstName":"`+name+`"}`, "Authorization", "Bearer "+tok)
		}
	}
	all, err := envs[0].App.Store.Events(ctx, store.EventQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// checkEveryEvent fails unless the receiver acknowledged every outbox event,
// in order per customer.
func checkEveryEvent(t *testing.T, env *apptest.Env, hook *receiver) {
	t.Helper()
	all, err := env.App.Store.Events(ctx, store.EventQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	got := hook.unique()
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.ID] = true
	}
	for _, e := range all {
		if !seen[e.ID] {
			t.Errorf("event %s (%s, seq %d) never acknowledged", e.ID, e.Type, e.Seq)
		}
	}
	// In order per customer: the outbox order of one customer's events is the order they first arrived in.
	seqOf := map[string]int64{}
	for _, e := range all {
		seqOf[e.ID] = e.Seq
	}
	last := map[string]int64{}
	for _, e := range got {
		if seqOf[e.ID] < last[e.CustomerID] {
			t.Errorf("customer %s: event seq %d arrived after seq %d", e.CustomerID, seqOf[e.ID], last[e.CustomerID])
		}
		last[e.CustomerID] = seqOf[e.ID]
	}
}

func TestWebhooksSurviveARestart(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook := newReceiver(t)
		gate := make(chan struct{})
		hook.refuse = func(n int) bool { return n%5 == 0 } // a flaky receiver: retries with backoff
		hook.hold = func(n int) {
			if n > 12 {
				<-gate // deliveries in flight when the service stops
			}
		}
		env := apptest.Start(t, dbURL, `
events: {pollInterval: 5ms, lease: 2s, timeout: 1s}
tenants:
  demo:
    webhooks: `+hook.yaml()+`
`)
		total := makeEvents(t, []*apptest.Env{env}, 10)
		if total != 30 {
			t.Fatalf("outbox holds %d events, want 30", total)
		}
		env.StartEvents()
		waitFor(t, "deliveries in flight", func() bool {
			hook.mu.Lock()
			defer hook.mu.Unlock()
			for _, n := range hook.inFlight {
				if n > 0 {
					return true
				}
			}
			return false
		})
		env.StopEvents() // killed mid-run: what was in flight is neither acknowledged nor recorded
		close(gate)
		before := len(hook.unique())
		if before >= total {
			t.Fatalf("everything was delivered before the stop")
		}
		env.StartEvents()
		waitFor(t, "every event delivered after the restart", func() bool { return undelivered(t, env) == 0 })
		checkEveryEvent(t, env, hook)
		if got := len(hook.unique()); got != total {
			t.Fatalf("%d distinct events acknowledged, want %d", got, total)
		}
	})
}

func TestTwoReplicasNeverDeliverOneEventTogether(t *testing.T) {
	dbURL := storetest.PostgresURL(t) // skips without PostgreSQL
	hook := newReceiver(t)
	hook.hold = func(int) { time.Sleep(2 * time.Millisecond) } // widen the window two replicas could share
	cfg := `
events: {pollInterval: 5ms, lease: 30s, timeout: 10s}
tenants:
  demo:
    webhooks: ` + hook.yaml() + `
`
	a := apptest.Start(t, dbURL, cfg)
	b := apptest.Start(t, dbURL, cfg)
	total := makeEvents(t, []*apptest.Env{a, b}, 12)
	a.StartEvents()
	b.StartEvents()
	waitFor(t, "every event delivered", func() bool { return undelivered(t, a) == 0 })
	checkEveryEvent(t, a, hook)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.overlaps != 0 {
		t.Fatalf("%d deliveries overlapped another of the same event", hook.overlaps)
	}
	if len(hook.acked) != total {
		t.Fatalf("%d deliveries for %d events: replicas delivered some twice", len(hook.acked), total)
	}
}

// call sends one request without the test's helpers, so that goroutines may use it.
func call(env *apptest.Env, body string, header ...string) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.Server.URL+"/api/demo/customer", strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := env.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header, err
}

func TestIdempotencyKey(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		body := `{"email":"idem@example.com","firstName":"Ida"}`
		type answer struct {
			status int
			body   []byte
		}
		answers := make([]answer, 20)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, b, _, err := call(env, body, "Idempotency-Key", "key-1")
				if err != nil {
					t.Error(err)
				}
				answers[i] = answer{status, b}
			}()
		}
		wg.Wait()
		var first []byte
		for _, a := range answers {
			switch a.status {
			case http.StatusOK:
				if first == nil {
					first = a.body
				} else if !bytes.Equal(first, a.body) {
					t.Errorf("two answers for one key:\n%s\n%s", first, a.body)
				}
			case http.StatusConflict: // the first was still running
			default:
				t.Errorf("status %d: %s", a.status, a.body)
			}
		}
		if first == nil {
			t.Fatalf("no request completed")
		}
		status, again, h, err := call(env, body, "Idempotency-Key", "key-1")
		if err != nil || status != http.StatusOK || !bytes.Equal(again, first) || h.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %v %d %s", err, status, again)
		}
		c := stored(t, env, "demo", "idem@example.com")
		evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
		if len(evs) != 1 || evs[0].CustomerID != c.ID {
			t.Fatalf("%d events for one create under one key", len(evs))
		}
		if n := env.Logs.Sent("idem@example.com"); n != 0 {
			t.Fatalf("%d codes sent: the key ran the create more than once", n)
		}
		mustProblem(t, post(t, env, "/api/demo/customer", `{"email":"idem@example.com","firstName":"Eve"}`, "Idempotency-Key", "key-1"),
			http.StatusUnprocessableEntity)
		// A key whose first request never answered (its replica died) is taken over.
		if _, err := env.App.Store.BeginIdempotent(ctx, &store.IdempotentRequest{TenantID: "demo", Key: "key-dead",
			RequestHash: "whatever", CreatedAt: time.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		postOK(t, env, "/api/demo/customer", `{"email":"taken.over@example.com"}`, "Idempotency-Key", "key-dead")
		// Another key runs again: the account exists, so a challenge this time.
		challengeID(t, post(t, env, "/api/demo/customer", body, "Idempotency-Key", "key-2"))
	})
}

func TestConcurrentUpdates(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "busy@example.com")
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, b, _, err := call(env, fmt.Sprintf(`{"field%d":"v%d","firstName":"name%d"}`, i, i, i), "Authorization", "Bearer "+tok)
				if err != nil || status != http.StatusOK {
					t.Errorf("update %d: %v %d %s", i, err, status, b)
				}
			}()
		}
		wg.Wait()
		me := customerOf(t, env, "demo", tok)
		for i := range 10 {
			if me[fmt.Sprintf("field%d", i)] != fmt.Sprintf("v%d", i) {
				t.Errorf("the update of field%d was lost: %v", i, me)
			}
		}
		// The same field: the last committed wins, and the event log shows every value.
		evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo", Limit: 1000})
		var names []string
		for _, e := range evs {
			var body struct {
				Data map[string]any `json:"data"`
			}
			_ = json.Unmarshal([]byte(e.Payload), &body)
			if n, ok := body.Data["firstName"].(string); ok {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		if len(names) != 10 || names[len(names)-1] == "" {
			t.Fatalf("event log firstName values: %v", names)
		}
		if last := evs[len(evs)-1]; !strings.Contains(last.Payload, `"firstName":"`+me["firstName"].(string)+`"`) {
			t.Fatalf("the last event is not the last committed value %v", me["firstName"])
		}
	})
}

// deadEvent starts customerd with hook as the demo tenant's webhook (retried
// every few milliseconds, dead after 1s), creates an account and returns its
// event once dead: hook must refuse it until then.
func deadEvent(t *testing.T, dbURL string, hook *receiver) (*apptest.Env, store.Event) {
	t.Helper()
	env := apptest.Start(t, dbURL, `
events: {pollInterval: 5ms}
tenants:
  demo:
    webhooks: {endpoints: [{url: "`+hook.srv.URL+`", secret: "`+hook.secret+`", allowPrivateNetwork: true}], retryBase: 5ms, retryMax: 20ms, maxAge: 1s}
`)
	postOK(t, env, "/api/demo/customer", `{"email":"dead@example.com"}`)
	env.StartEvents()
	var dead []store.Event
	waitFor(t, "the event to die", func() bool {
		dead, _ = env.App.Store.Events(ctx, store.EventQuery{Failed: true})
		return len(dead) == 1
	})
	return env, dead[0]
}

func TestADeadEventIsListedAndReplays(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook := newReceiver(t)
		var down atomic.Bool
		down.Store(true)
		hook.refuse = func(int) bool { return down.Load() }
		env, dead := deadEvent(t, dbURL, hook)
		if dead.Attempts < 2 || !strings.Contains(dead.LastError, "503") {
			t.Fatalf("dead event: %+v", dead)
		}
		down.Store(false)
		if n, err := env.App.Store.ReplayEvents(ctx, "demo", nil, time.Now()); err != nil || n != 1 {
			t.Fatalf("replay: %v %d", err, n)
		}
		waitFor(t, "the replayed event delivered", func() bool { return undelivered(t, env) == 0 })
		if got := hook.unique(); len(got) != 1 || got[0].ID != dead.ID {
			t.Fatalf("acknowledged: %+v", got)
		}
	})
}

// A replayed event is retried for webhooks.maxAge again, counted from the
// replay: not given up after one attempt because it was created long ago.
func TestAReplayedEventHasAFreshRetryWindow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook := newReceiver(t)
		hook.refuse = func(int) bool { return true }
		env, _ := deadEvent(t, dbURL, hook)
		env.StopEvents()
		replayedAt := time.Now()
		if n, err := env.App.Store.ReplayEvents(ctx, "demo", nil, replayedAt); err != nil || n != 1 {
			t.Fatalf("replay: %v %d", err, n)
		}
		env.StartEvents()
		var again []store.Event
		waitFor(t, "the replayed event to die again", func() bool {
			again, _ = env.App.Store.Events(ctx, store.EventQuery{Failed: true})
			return len(again) == 1
		})
		// Dead once the next attempt (at most retryMax away) would fall past replay + maxAge.
		if again[0].Attempts < 2 || again[0].DeadAt.Sub(replayedAt) < time.Second-20*time.Millisecond {
			t.Fatalf("replayed event died after %d attempts at %s (replayed at %s)", again[0].Attempts, again[0].DeadAt, replayedAt)
		}
	})
}

// A stored answer is replayed only to its caller: an Authorization header
// that is not a valid token names nobody. Found by an audit: the header
// stood for the caller as it was, and "sub:<id>" is what a token of <id>
// stood for, so a stranger with no token got the holder's stored answer.
func TestAnIdempotentAnswerIsNeverReplayedToAForgedCaller(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "victim@example.com")
		body := `{"firstName":"Vicky","lastName":"Victim","address":"1 rue Secrete"}`
		first := post(t, env, "/api/demo/customer", body, "Authorization", "Bearer "+tok, "Idempotency-Key", "order-42")
		if first.StatusCode != http.StatusOK {
			t.Fatalf("victim's update: %d %s", first.StatusCode, first.body)
		}
		id := stored(t, env, "demo", "victim@example.com").ID
		// The attacker holds no token, only the victim's id, key and body.
		r := post(t, env, "/api/demo/customer", body, "Authorization", "sub:"+id, "Idempotency-Key", "order-42")
		if strings.Contains(string(r.body), "victim@example.com") || r.StatusCode == http.StatusOK {
			t.Fatalf("a caller without a token got the victim's answer: %d %s", r.StatusCode, r.body)
		}
	})
}

// Concurrent retries of a key whose first request was abandoned run the
// request once: one takes the key over. Found by an audit: each forgot the
// abandoned row and began again, so a retry deleted the row another had just
// begun, and both ran the request (a second code sent); others answered 500.
func TestAnAbandonedKeyIsTakenOverOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		for round := range 10 {
			key := fmt.Sprintf("dead-%d", round)
			email := fmt.Sprintf("takeover%d@example.com", round)
			if _, err := env.App.Store.BeginIdempotent(ctx, &store.IdempotentRequest{TenantID: "demo", Key: key,
				RequestHash: "whatever", CreatedAt: time.Now().Add(-time.Hour)}); err != nil {
				t.Fatal(err)
			}
			body := `{"email":"` + email + `"}`
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, _, _ = call(env, body, "Idempotency-Key", key)
				}()
			}
			wg.Wait()
			c := stored(t, env, "demo", email)
			evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
			n := 0
			for _, e := range evs {
				if e.CustomerID == c.ID {
					n++
				}
			}
			if sent := env.Logs.Sent(email); sent != 0 || n != 1 {
				t.Fatalf("round %d: one key ran the create more than once: %d codes sent, %d events", round, sent, n)
			}
		}
	})
}

// A token holder's request that ran past the take-over time finishes while
// another caller's request, with another body, holds its key: the first
// answer (the holder's profile) is not kept under the second's request, so
// the second caller's retry replays its own answer. Found by an audit:
// finishing matched the key alone, and the retry got the holder's profile.
// Each request is held on a lock of its account's row (PostgreSQL only).
func TestAnAbandonedRequestsAnswerIsNotKeptForTheRequestThatTookItsKeyOver(t *testing.T) {
	dbURL := storetest.PostgresURL(t) // skips without PostgreSQL
	env := apptest.Start(t, dbURL, "")
	const key = "taken-over-while-running"
	victim := env.SignIn(t, "demo", "abandoned.victim@example.com")
	taker := env.SignIn(t, "demo", "abandoned.taker@example.com")
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// hold runs tok's request, held on a lock of its account's row until
	// the returned release; the request's answer comes on the channel.
	hold := func(tok, body string) (release func(), answer <-chan []byte) {
		lock, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lock.Rollback() })
		var pid int
		if err := lock.QueryRowContext(ctx, `SELECT pg_backend_pid() FROM customers
			WHERE tenant_id = 'demo' AND id = $1 FOR UPDATE`, subOf(t, tok)).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		go func() {
			status, b, _, err := call(env, body, "Authorization", "Bearer "+tok, "Idempotency-Key", key)
			if err != nil || status != http.StatusOK {
				t.Errorf("%s: %d %v %s", body, status, err, b)
			}
			got <- b
		}()
		// Asked outside the lock's transaction, which sees pg_stat_activity
		// as it was when it began.
		for waiting := 0; waiting == 0; time.Sleep(time.Millisecond) {
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
		}
		return func() { _ = lock.Rollback() }, got
	}
	releaseFirst, first := hold(victim, `{"firstName":"Vicky","address":"1 rue Secrete"}`)
	env.Clock.Advance(3 * time.Minute) // past abandoned: the first request's replica seems dead
	const body = `{"firstName":"Mallory"}`
	releaseSecond, second := hold(taker, body)
	releaseFirst()
	if b := <-first; !bytes.Contains(b, []byte("abandoned.victim@example.com")) {
		t.Fatalf("the first request's own answer: %s", b)
	}
	releaseSecond()
	<-second
	status, b, _, err := call(env, body, "Authorization", "Bearer "+taker, "Idempotency-Key", key)
	if err != nil || status != http.StatusOK || bytes.Contains(b, []byte("abandoned.victim@example.com")) ||
		!bytes.Contains(b, []byte("abandoned.taker@example.com")) {
		t.Fatalf("the second caller's retry: %d %v %s, want its own answer", status, err, b)
	}
}

// A tenant whose receiver hangs holds only its own deliveries: another
// tenant's events still go out. Found by an audit: the dispatcher waited for
// every delivery it had claimed before claiming again, so a brand whose
// endpoint never answers (or answers at the last second of events.timeout)
// held back every other brand's events, and with more due events than the
// batch it took every place in it.
func TestASlowReceiverDoesNotHoldBackAnotherTenantsEvents(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		slow := newReceiver(t)
		release := make(chan struct{})
		slow.hold = func(int) { <-release } // answers only when the test ends
		t.Cleanup(func() { close(release) })
		fast := newReceiver(t)
		env := apptest.Start(t, dbURL, `
events: {pollInterval: 5ms, lease: 20m, timeout: 10m}
tenants:
  demo:
    webhooks: `+slow.yaml()+`
  shop:
    webhooks: `+fast.yaml()+`
`)
		// More of the slow brand's events are due, and due first, than the
		// dispatcher delivers at once.
		for i := range 40 {
			postOK(t, env, "/api/demo/customer", fmt.Sprintf(`{"email":"slow%d@example.com"}`, i))
		}
		postOK(t, env, "/api/shop/customer", `{"email":"fast@example.com"}`)
		env.StartEvents()
		waitFor(t, "the other tenant's event delivered", func() bool { return len(fast.unique()) == 1 })
		// And one made while the slow brand's deliveries hang.
		postOK(t, env, "/api/shop/customer", `{"email":"fast2@example.com"}`)
		waitFor(t, "the other tenant's next event delivered", func() bool { return len(fast.unique()) == 2 })
	})
}

// Four brands whose receivers hang, each with more events due than its
// share, leave places for a fifth brand's events. Found by an audit: four
// shares of 8 filled all 32 places, and each place freed (a delivery timed
// out) went to the earliest due event, one of the four's backlog, so the
// fifth brand's events waited until those backlogs drained or died.
func TestBrandsWhoseReceiversHangLeavePlacesForAnotherBrand(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		release := make(chan struct{})
		slow := []string{"slowa", "slowb", "slowc", "slowd"}
		conf := "events: {pollInterval: 5ms, lease: 20m, timeout: 10m}\ntenants:\n"
		for _, tenant := range slow {
			hook := newReceiver(t)
			hook.hold = func(int) { <-release } // answers only when the test ends
			conf += "  " + tenant + ":\n    webhooks: " + hook.yaml() + "\n"
		}
		t.Cleanup(func() { close(release) }) // before the receivers close, which waits for their answers
		fast := newReceiver(t)
		conf += "  shop:\n    webhooks: " + fast.yaml() + "\n"
		env := apptest.Start(t, dbURL, conf)
		for _, tenant := range slow {
			for i := range 10 {
				postOK(t, env, "/api/"+tenant+"/customer", fmt.Sprintf(`{"email":"slow%d@example.com"}`, i))
			}
		}
		postOK(t, env, "/api/shop/customer", `{"email":"fast@example.com"}`)
		env.StartEvents()
		waitFor(t, "the fifth brand's event delivered", func() bool { return len(fast.unique()) == 1 })
	})
}

// A receiver that always fails is retried no sooner than events.pollInterval,
// whatever the tenant's retry schedule says. Found by an audit: retryBase and
// retryMax of 1ns (any positive value is valid) made the dispatcher retry the
// event in a loop, as fast as the receiver answered, for all of maxAge: a
// flood at the receiver (any https address a brand's admin key names) and a
// writer kept busy recording the failures.
func TestAFailingReceiverIsNotRetriedInALoop(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook := newReceiver(t)
		hook.refuse = func(int) bool { return true }
		env := apptest.Start(t, dbURL, `
events: {pollInterval: 1h}
tenants:
  demo:
    webhooks: {endpoints: [{url: "`+hook.srv.URL+`", secret: "`+hook.secret+`", allowPrivateNetwork: true}], retryBase: 1ns, retryMax: 1ns, maxAge: 24h}
`)
		postOK(t, env, "/api/demo/customer", `{"email":"flood@example.com"}`)
		env.StartEvents() // its first poll is at once
		var e store.Event
		waitFor(t, "the first attempt recorded", func() bool {
			evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
			if len(evs) == 1 {
				e = evs[0]
			}
			return e.Attempts > 0
		})
		env.StopEvents()
		if e.Attempts != 1 || e.NextAt.Before(time.Now().Add(30*time.Minute)) {
			t.Fatalf("after %d attempts the next is due at %s: retried in a loop", e.Attempts, e.NextAt)
		}
	})
}

// A tenant's endpoints get an event together: one that hangs holds back
// neither the others nor, past its lease, the event itself. Found by an
// audit: the endpoints were called one after another, each for up to
// events.timeout, so a few slow ones outlasted the lease (events.lease must
// only be longer than one timeout) and the event was claimed and delivered
// again while its first delivery still ran.
func TestASlowEndpointDoesNotHoldBackTheTenantsOtherEndpoints(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		first, second := newReceiver(t), newReceiver(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		first.hold = func(int) { <-release } // answers only when the test ends
		env := apptest.Start(t, dbURL, `
events: {pollInterval: 5ms, lease: 20m, timeout: 10m}
tenants:
  demo:
    webhooks:
      endpoints:
        - {url: "`+first.srv.URL+`", secret: "`+first.secret+`", allowPrivateNetwork: true}
        - {url: "`+second.srv.URL+`", secret: "`+second.secret+`", allowPrivateNetwork: true}
`)
		postOK(t, env, "/api/demo/customer", `{"email":"two.endpoints@example.com"}`)
		env.StartEvents()
		waitFor(t, "the second endpoint to get the event while the first holds it", func() bool { return len(second.unique()) == 1 })
	})
}

// Replaying the dead events of a customer erased since never delivers one
// after its Customer:Deleted: the receiver has erased the customer, and an
// earlier event (its data already scrubbed) would bring the record back.
// Found by an audit: `events replay --tenant` sent it again, after the
// Customer:Deleted that the contract says comes last.
func TestAReplayNeverDeliversAnErasedCustomersEventAfterItsDeletion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook := newReceiver(t)
		var down atomic.Bool
		down.Store(true)
		hook.refuse = func(int) bool { return down.Load() }
		env, dead := deadEvent(t, dbURL, hook)
		down.Store(false)
		tok := env.SignIn(t, "demo", "dead@example.com")
		if r := rawCall(t, env, http.MethodDelete, "/api/demo/customer", nil, withToken(tok)...); r.StatusCode != http.StatusNoContent {
			t.Fatalf("erase: %d %s", r.StatusCode, r.body)
		}
		waitFor(t, "the Customer:Deleted delivered", func() bool { return len(hook.ofType("Customer:Deleted", dead.CustomerID)) == 1 })
		if _, err := env.App.Store.ReplayEvents(ctx, "demo", nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "nothing left to deliver", func() bool {
			evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
			for _, e := range evs {
				if e.DeliveredAt == nil && e.DeadAt == nil {
					return false
				}
			}
			return true
		})
		got := hook.unique()
		if last := got[len(got)-1]; last.CustomerID == dead.CustomerID && last.Type != "Customer:Deleted" {
			t.Fatalf("%s of the erased customer delivered after its Customer:Deleted: %+v", last.Type, last)
		}
	})
}
