package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

// paths is customerd on PostgreSQL with the statements of its requests
// recorded: the demo tenant, with a google provider on a local issuer.
type paths struct {
	t   *testing.T
	env *apptest.Env
	rec *storetest.Recorder
	iss *oidctest.Issuer
}

func startPaths(t *testing.T, dbURL string) *paths {
	t.Helper()
	iss := oidctest.New(t)
	cfg := apptest.Config(t, dbURL, fmt.Sprintf(`
tenants:
  demo:
    providers:
      otp: {type: otp}
      google: {type: google, clientIds: [web-app], issuer: %q, jwksUrl: %q, allowPrivateNetwork: true}
`, iss.URL(), iss.JWKSURL()))
	rec := &storetest.Recorder{}
	// Nothing but the requests sends statements: no reconciliation, no dispatcher.
	env := apptest.StartConfig(t, cfg, app.WithQueryTracer(rec), app.WithReconcile(time.Hour))
	env.StopEvents()
	return &paths{t: t, env: env, rec: rec, iss: iss}
}

// call sends a request and decodes a want answer into out.
func (p *paths) call(method, path, bearer string, body any, want int, out any, header ...string) {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.env.Server.URL+path, r)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := p.env.HTTP.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		p.t.Fatalf("%s %s → %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// code asks for a code for email and returns the challenge id and the code.
func (p *paths) code(email string) (id, code string) {
	var ch struct{ ChallengeID string }
	p.call(http.MethodPost, "/api/demo/customer/authenticate?provider=otp", "", map[string]string{"email": email}, http.StatusAccepted, &ch)
	return ch.ChallengeID, p.env.Logs.Code(email)
}

// google is a body of authenticate?provider=google for subject sub.
func (p *paths) google(sub string) map[string]string {
	c := p.iss.Claims("web-app", sub)
	c["email"], c["email_verified"] = sub+"@example.com", true
	c["given_name"], c["family_name"] = "Gina", "Google"
	return map[string]string{"idToken": p.iss.Key("RS256").Sign(c)}
}

// recorded runs request with the recorder on and returns its statements.
func (p *paths) recorded(request func()) []storetest.Statement {
	p.rec.Start()
	request()
	// The catalog's read of every tenant's version once its LISTEN is up
	// (in the background, at start-up: late on a loaded machine) is no
	// request's.
	return slices.DeleteFunc(p.rec.Stop(), func(st storetest.Statement) bool {
		return strings.HasPrefix(strings.TrimSpace(st.SQL), `SELECT id, version`)
	})
}

// The round trips a request makes to PostgreSQL, BEGIN and COMMIT
// included: a first sign-in by code is one statement (the attempt, the
// code check, the account and its event), and so is a returning Google
// sign-in (the identity read with its account) and a GET; the same request
// sends the same text, which pgx prepared once per connection.
func TestRoundTripsPerRequest(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set")
	}
	p := startPaths(t, storetest.PostgresURL(t))
	otp := "/api/demo/customer/authenticate?provider=otp"
	var tok string
	verify := func(email string) []storetest.Statement {
		id, code := p.code(email)
		return p.recorded(func() {
			p.call(http.MethodPost, otp, "", map[string]string{"challengeId": id, "code": code}, http.StatusOK, &tok)
		})
	}
	google := func(sub string) []storetest.Statement {
		return p.recorded(func() {
			p.call(http.MethodPost, "/api/demo/customer/authenticate?provider=google", "", p.google(sub), http.StatusOK, nil)
		})
	}
	verify("warm@example.com") // the tenant's key made
	first, second := verify("first@example.com"), verify("second@example.com")
	google("shopper") // the first sign-in: the identity linked
	for _, c := range []struct {
		name string
		sent []storetest.Statement
		want int
	}{
		{"code verification, a first sign-in", first, 1},
		{"GET customer", p.recorded(func() { p.call(http.MethodGet, "/api/demo/customer", tok, nil, http.StatusOK, nil) }), 1},
		{"google sign-in, returning", google("shopper"), 1},
	} {
		if len(c.sent) != c.want {
			var texts []string
			for _, st := range c.sent {
				texts = append(texts, strings.Join(strings.Fields(st.SQL), " "))
			}
			t.Errorf("%s: %d round trips, want %d:\n%s", c.name, len(c.sent), c.want, strings.Join(texts, "\n"))
		}
	}
	if len(first) == 1 && len(second) == 1 && first[0].SQL != second[0].SQL {
		t.Errorf("two first sign-ins sent two texts:\n%s\n%s", first[0].SQL, second[0].SQL)
	}
}

// Every statement the request paths send uses an index on a large table:
// on a database seeded with 20,000 customers (2,000 of them on the tenant
// the requests use) and a day of their challenges, identities, events,
// throttles and counters, EXPLAIN finds no sequential scan of a table of
// more than 1,000 rows in any statement recorded while requests ran.
func TestRequestPathsUseIndexes(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skip(storetest.PostgresEnv + " is not set")
	}
	url := storetest.PostgresURL(t)
	p := startPaths(t, url)
	ctx := context.Background()
	tenants := []string{"demo"}
	for i := 1; i < 10; i++ {
		tenants = append(tenants, fmt.Sprintf("other%d", i))
	}
	seeding := storetest.Seeding{Customers: 20000, Tenants: tenants, Provider: "google", Now: time.Now()}
	if err := storetest.Seed(ctx, url, seeding); err != nil {
		t.Fatal(err)
	}
	seeded := seeding.Customer(10) // on demo

	var recorded []storetest.Statement
	record := func(request func()) { recorded = append(recorded, p.recorded(request)...) }
	otp := "/api/demo/customer/authenticate?provider=otp"
	var tok, seededTok string
	record(func() {
		// A first sign-in by challenge id, a returning one by email, a wrong code.
		id, code := p.code("new@example.com")
		p.call(http.MethodPost, otp, "", map[string]string{"challengeId": id, "code": code}, http.StatusOK, &tok)
		// The shopper's inbox marked by a code to another spelling: their
		// address's code reads whether an account verified it.
		at := strings.IndexByte(seeded.Email, '@')
		p.code(seeded.Email[:at] + "+paths" + seeded.Email[at:])
		_, code = p.code(seeded.Email)
		p.call(http.MethodPost, otp, "", map[string]string{"email": seeded.Email, "code": code}, http.StatusOK, &seededTok)
		id, code = p.code("wrong@example.com")
		p.call(http.MethodPost, otp, "", map[string]string{"challengeId": id, "code": fmt.Sprintf("%06d", (atoi(code)+1)%1000000)},
			http.StatusUnprocessableEntity, nil)
	})
	record(func() {
		p.call(http.MethodGet, "/api/demo/customer", tok, nil, http.StatusOK, nil)
		p.call(http.MethodPost, "/api/demo/customer", tok, map[string]string{"firstName": "Sam"}, http.StatusOK, nil,
			"Idempotency-Key", "paths-1")
		// A contact change, verified before it applies.
		var ch struct{ ChallengeID string }
		p.call(http.MethodPost, "/api/demo/customer", tok, map[string]string{"email": "changed@example.com"}, http.StatusAccepted, &ch)
		p.call(http.MethodPost, otp, "", map[string]string{"challengeId": ch.ChallengeID, "code": p.env.Logs.Code("changed@example.com")},
			http.StatusOK, &tok)
		// Anonymous: a new account, and an existing one (a check-in challenge).
		p.call(http.MethodPost, "/api/demo/customer", "", map[string]string{"email": "anon@example.com"}, http.StatusOK, nil)
		p.call(http.MethodPost, "/api/demo/customer", "", map[string]string{"email": seeding.Customer(20).Email}, http.StatusAccepted, nil)
	})
	record(func() {
		// Google: a first sign-in, and a seeded shopper's return.
		p.call(http.MethodPost, "/api/demo/customer/authenticate?provider=google", "", p.google("paths-google"), http.StatusOK, nil)
		c := p.iss.Claims("web-app", seeded.Subject)
		c["email"], c["email_verified"] = seeded.Email, true
		p.call(http.MethodPost, "/api/demo/customer/authenticate?provider=google", "", map[string]string{"idToken": p.iss.Key("RS256").Sign(c)},
			http.StatusOK, nil)
		p.call(http.MethodDelete, "/api/demo/customer", seededTok, nil, http.StatusNoContent, nil)
	})
	record(func() {
		// The outbox poll, beside the requests on every replica.
		if _, err := p.env.App.Events.Once(ctx); err != nil {
			t.Fatal(err)
		}
	})
	record(func() {
		// The janitor's purge, beside them every hour, a batch at a time.
		day, now := 24*time.Hour, time.Now()
		if err := p.env.App.Store.Purge(ctx, store.Cutoffs{ChallengesExpired: now.Add(-day), CounterDays: now.Format(time.DateOnly),
			Throttles: now.Add(-day), IdempotencyKeys: now.Add(-day), DeliveredEvents: now.Add(-30 * day), Erased: now.Add(-2 * day)}); err != nil {
			t.Fatal(err)
		}
	})

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	large := map[string]bool{}
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.reltuples > 1000`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		_ = rows.Scan(&name)
		large[name] = true
	}
	if rows.Err() != nil || len(large) < 5 {
		t.Fatalf("large tables: %v %v", large, rows.Err())
	}
	explained := map[string]bool{}
	for _, st := range recorded {
		q := strings.TrimSpace(st.SQL)
		word := strings.ToUpper(strings.Fields(q)[0])
		if explained[q] || word == "BEGIN" || word == "COMMIT" || word == "ROLLBACK" || word == "SAVEPOINT" || word == "RELEASE" {
			continue
		}
		explained[q] = true
		var args []any
		for _, a := range st.Args {
			switch a.(type) {
			case pgx.QueryResultFormatsByOID, pgx.QueryResultFormats, pgx.QueryExecMode:
			default:
				args = append(args, a)
			}
		}
		var plan []byte
		if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+q, args...).Scan(&plan); err != nil {
			t.Errorf("explain %s: %v", q, err)
			continue
		}
		if scans := seqScans(t, plan, large); len(scans) > 0 {
			t.Errorf("a sequential scan of %v in\n%s\nplan: %s", scans, q, plan)
		}
	}
	if len(explained) < 25 {
		t.Fatalf("%d statements explained; the request paths send more", len(explained))
	}
}

// seqScans are the large tables a JSON plan reads by a sequential scan.
func seqScans(t *testing.T, plan []byte, large map[string]bool) []string {
	var nodes []map[string]any
	if err := json.Unmarshal(plan, &nodes); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if n["Node Type"] == "Seq Scan" && large[fmt.Sprint(n["Relation Name"])] {
			out = append(out, fmt.Sprint(n["Relation Name"]))
		}
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				walk(m)
			}
		}
	}
	for _, n := range nodes {
		if p, ok := n["Plan"].(map[string]any); ok {
			walk(p)
		}
	}
	return out
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = 10*n + int(r-'0')
	}
	return n
}

// An anonymous caller chooses the HTTP method, which labels the request
// metrics: a method that is not a standard one counts as "other". Found by an
// audit: each made-up method was a new series, kept for the life of the
// process.
func TestAnAnonymousCallerCannotGrowTheMetrics(t *testing.T) {
	env := apptest.Start(t, "", "")
	const n = 50
	for i := range n {
		req, err := http.NewRequest(fmt.Sprintf("X%dJUNK", i), env.Server.URL+"/api/demo/customer", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	res, err := http.Get(env.Metrics.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	series := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "customerd_http_requests_total{") {
			series++
		}
	}
	if strings.Contains(string(b), `method="X0JUNK"`) || !strings.Contains(string(b), `method="other"`) || series > 20 {
		t.Fatalf("%d requests with made-up methods left %d series of customerd_http_requests_total, the callers' methods among them", n, series)
	}
}
