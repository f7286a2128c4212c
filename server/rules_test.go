package server_test

import (
	"encoding/json"
	"errors"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store"
)

// askCode starts an otp challenge for email on tenant and returns its id.
func askCode(t *testing.T, env *apptest.Env, tenant, email string) string {
	t.Helper()
	r := rawCall(t, env, http.MethodPost, "/api/"+tenant+"/customer/authenticate?provider=otp", strings.NewReader(`{"email":"`+email+`"}`))
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("ask a code for %s: %d %s", email, r.StatusCode, r.body)
	}
	var ch struct {
		ChallengeID string `json:"challengeId"`
	}
	if err := json.Unmarshal(r.body, &ch); err != nil || ch.ChallengeID == "" {
		t.Fatalf("challenge: %v %s", err, r.body)
	}
	return ch.ChallengeID
}

// exchange sends a code for a challenge.
func exchange(t *testing.T, env *apptest.Env, tenant, id, code string, header ...string) rawReply {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"challengeId": id, "code": code})
	return rawCall(t, env, http.MethodPost, "/api/"+tenant+"/customer/authenticate?provider=otp", strings.NewReader(string(body)), header...)
}

// notCode is a code that is not code.
func notCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// decodeObject decodes a JSON object answer.
func decodeObject(t *testing.T, r rawReply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s %s → %d: not a JSON object: %v: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, err, r.body)
	}
	return m
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// customerOf reads the account of a token.
func customerOf(t *testing.T, env *apptest.Env, tenant, tok string) map[string]any {
	t.Helper()
	r := rawCall(t, env, http.MethodGet, "/api/"+tenant+"/customer", nil, "Authorization", "Bearer "+tok)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("get the account of a token: %d %s", r.StatusCode, r.body)
	}
	return decodeObject(t, r)
}

func TestRules(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo: {}
  b: {}
`)
		t.Run("an unknown tenant is a 404 problem", func(t *testing.T) {
			for _, rq := range []struct {
				method, path, body string
			}{
				{http.MethodGet, "/api/nope/customer", ""},
				{http.MethodPost, "/api/nope/customer", `{"email":"nope@example.com"}`},
				{http.MethodPost, "/api/nope/customer/authenticate?provider=otp", `{"email":"nope@example.com"}`},
				{http.MethodGet, "/api/nope/.well-known/jwks.json", ""},
			} {
				var body io.Reader
				if rq.body != "" {
					body = strings.NewReader(rq.body)
				}
				p := mustProblem(t, rawCall(t, env, rq.method, rq.path, body), http.StatusNotFound)
				if d, _ := p["detail"].(string); !strings.Contains(d, "nope") {
					t.Errorf("%s %s: detail %q does not name the tenant", rq.method, rq.path, d)
				}
			}
			if n := env.Logs.Sent("nope@example.com"); n != 0 {
				t.Errorf("an unknown tenant sent %d codes", n)
			}
		})

		t.Run("an unknown flow is a 400 naming it", func(t *testing.T) {
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer?flow=signup", strings.NewReader(`{"email":"flow@example.com"}`))
			p := mustProblem(t, r, http.StatusBadRequest)
			if d, _ := p["detail"].(string); d != `unknown flow "signup", have [activation preregistration]` {
				t.Errorf("detail %q does not name the flow", d)
			}
			mustNotExist(t, env, "demo", "flow@example.com")
		})

		t.Run("authenticate without a provider is a 400 listing the enabled ones", func(t *testing.T) {
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer/authenticate", strings.NewReader(`{"email":"noprovider@example.com"}`))
			p := mustProblem(t, r, http.StatusBadRequest)
			if d, _ := p["detail"].(string); !strings.Contains(d, "[otp]") {
				t.Errorf("detail %q does not list [otp]", d)
			}
			mustNotExist(t, env, "demo", "noprovider@example.com")
		})

		t.Run("an unknown provider is a 400", func(t *testing.T) {
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer/authenticate?provider=google", strings.NewReader(`{"idToken":"x"}`))
			p := mustProblem(t, r, http.StatusBadRequest)
			if d, _ := p["detail"].(string); !strings.Contains(d, "google") || !strings.Contains(d, "[otp]") {
				t.Errorf("detail %q does not name the provider and list [otp]", d)
			}
		})

		t.Run("otp with a bad email is a 400 with errors.email", func(t *testing.T) {
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer/authenticate?provider=otp", strings.NewReader(`{"email":"not an email"}`))
			p := mustProblem(t, r, http.StatusBadRequest)
			if !problemFields(p)["email"] {
				t.Errorf("no errors.email: %s", r.body)
			}
		})

		t.Run("a wrong code is a 422", func(t *testing.T) {
			id := askCode(t, env, "demo", "wrong@example.com")
			code := env.Logs.Code("wrong@example.com")
			mustProblem(t, exchange(t, env, "demo", id, notCode(code)), http.StatusUnprocessableEntity, code)
			// A challenge id that does not exist, or is not one, is the same 422.
			mustProblem(t, exchange(t, env, "demo", "0b7a6d0e-3f55-4d1c-9c55-2f7f6f0e6a11", code), http.StatusUnprocessableEntity)
			mustProblem(t, exchange(t, env, "demo", "not-a-uuid", code), http.StatusUnprocessableEntity)
			// The right one still works: one wrong try does not kill the challenge.
			if r := exchange(t, env, "demo", id, code); r.StatusCode != http.StatusOK {
				t.Fatalf("the right code after a wrong one: %d %s", r.StatusCode, r.body)
			}
		})

		t.Run("five wrong codes then the right one is a 422", func(t *testing.T) {
			id := askCode(t, env, "demo", "five@example.com")
			code := env.Logs.Code("five@example.com")
			for range 5 {
				mustProblem(t, exchange(t, env, "demo", id, notCode(code)), http.StatusUnprocessableEntity)
			}
			mustProblem(t, exchange(t, env, "demo", id, code), http.StatusUnprocessableEntity, code)
		})

		t.Run("a second code within 60 s is a 429 with Retry-After", func(t *testing.T) {
			askCode(t, env, "demo", "twice@example.com")
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer/authenticate?provider=otp", strings.NewReader(`{"email":"twice@example.com"}`))
			mustProblem(t, r, http.StatusTooManyRequests)
			n, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if err != nil || n < 1 || n > 60 {
				t.Errorf("Retry-After %q, want 1 to 60 seconds", r.Header.Get("Retry-After"))
			}
			if sent := env.Logs.Sent("twice@example.com"); sent != 1 {
				t.Errorf("%d codes sent, want 1", sent)
			}
		})

		t.Run("the 202 is the same whether the email has an account or not", func(t *testing.T) {
			created := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"known@example.com"}`))
			if created.StatusCode != http.StatusOK {
				t.Fatalf("create: %d %s", created.StatusCode, created.body)
			}
			var bodies []map[string]any
			for _, email := range []string{"known@example.com", "unknown@example.com"} {
				r := rawCall(t, env, http.MethodPost, "/api/demo/customer/authenticate?provider=otp", strings.NewReader(`{"email":"`+email+`"}`))
				if r.StatusCode != http.StatusAccepted || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
					t.Fatalf("%s: %d %s %s", email, r.StatusCode, r.Header.Get("Content-Type"), r.body)
				}
				b := decodeObject(t, r)
				if b["channel"] != "email" {
					t.Errorf("%s: channel %v", email, b["channel"])
				}
				dest, _ := b["destination"].(string)
				local := email[:strings.IndexByte(email, '@')]
				if strings.Contains(dest, local) || strings.Contains(dest, "example") || !strings.Contains(dest, "***") {
					t.Errorf("%s: destination %q is not masked", email, dest)
				}
				bodies = append(bodies, b)
			}
			if a, b := keysOf(bodies[0]), keysOf(bodies[1]); strings.Join(a, ",") != strings.Join(b, ",") {
				t.Fatalf("202 for an account %v, for no account %v", a, b)
			}
			if bodies[0]["attemptsLeft"] != bodies[1]["attemptsLeft"] {
				t.Fatalf("attemptsLeft differ: %v vs %v", bodies[0]["attemptsLeft"], bodies[1]["attemptsLeft"])
			}
		})

		t.Run("Accept text/plain answers the raw token, the default a JSON string", func(t *testing.T) {
			id := askCode(t, env, "demo", "text@example.com")
			r := exchange(t, env, "demo", id, env.Logs.Code("text@example.com"), "Accept", "text/plain")
			if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("Accept text/plain: %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
			}
			raw := string(r.body)
			if !regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`).MatchString(raw) {
				t.Fatalf("text/plain body is not a bare token: %q", raw)
			}
			customerOf(t, env, "demo", raw)

			id = askCode(t, env, "demo", "json@example.com")
			r = exchange(t, env, "demo", id, env.Logs.Code("json@example.com"))
			if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("default Accept: %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
			}
			var tok string
			if err := json.Unmarshal(r.body, &tok); err != nil || strings.Count(tok, ".") != 2 {
				t.Fatalf("default body is not a JSON string holding a token: %v %s", err, r.body)
			}
			customerOf(t, env, "demo", tok)
		})

		t.Run("read-only fields in a POST change nothing", func(t *testing.T) {
			const foreignID = "0b7a6d0e-3f55-4d1c-9c55-2f7f6f0e6a11"
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"readonly@example.com",
				"phoneNumber":"+33612345670","id":"`+foreignID+`","createdAt":"2000-01-01T00:00:00Z","updatedAt":"2000-01-01T00:00:00Z",
				"emailVerified":true,"phoneNumberVerified":true}`))
			if r.StatusCode != http.StatusOK {
				t.Fatalf("create: %d %s", r.StatusCode, r.body)
			}
			c := decodeObject(t, r)
			if c["id"] == foreignID || c["emailVerified"] != false || c["phoneNumberVerified"] != false ||
				strings.HasPrefix(c["createdAt"].(string), "2000") || strings.HasPrefix(c["updatedAt"].(string), "2000") {
				t.Fatalf("created with read-only fields: %s", r.body)
			}
			stored, err := env.App.Store.CustomerByEmail(ctx, "demo", "readonly@example.com")
			if err != nil || stored.EmailVerified || stored.PhoneVerified || stored.ID == foreignID || stored.CreatedAt.Year() == 2000 {
				t.Fatalf("stored: %v %+v", err, stored)
			}

			// With a token, the same: the account keeps its id, dates and verified email.
			tok := env.SignIn(t, "demo", "readonly@example.com")
			before := customerOf(t, env, "demo", tok)
			u := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"id":"`+foreignID+`",
				"createdAt":"2000-01-01T00:00:00Z","emailVerified":false,"phoneNumberVerified":true,"lastName":"Doe"}`),
				"Authorization", "Bearer "+tok)
			if u.StatusCode != http.StatusOK {
				t.Fatalf("update: %d %s", u.StatusCode, u.body)
			}
			after := decodeObject(t, u)
			if after["id"] != before["id"] || after["createdAt"] != before["createdAt"] || after["emailVerified"] != true ||
				after["phoneNumberVerified"] != false || after["lastName"] != "Doe" {
				t.Fatalf("update with read-only fields: before %v after %s", before, u.body)
			}
		})

		t.Run("a phone number is stored in E.164", func(t *testing.T) {
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"phone@example.com","phoneNumber":"06 12 34 56 78"}`))
			if r.StatusCode != http.StatusOK || decodeObject(t, r)["phoneNumber"] != "+33612345678" {
				t.Fatalf("create: %d %s", r.StatusCode, r.body)
			}
			stored, err := env.App.Store.CustomerByPhone(ctx, "demo", "+33612345678")
			if err != nil || stored.Email == nil || *stored.Email != "phone@example.com" {
				t.Fatalf("stored by phone: %v %+v", err, stored)
			}
		})

		t.Run("zipCode fills postcode and city", func(t *testing.T) {
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"zip@example.com","zipCode":"75001"}`))
			c := decodeObject(t, r)
			if r.StatusCode != http.StatusOK || c["postcode"] != "75001" || c["city"] != "Paris" {
				t.Fatalf("create with zipCode: %d %s", r.StatusCode, r.body)
			}
			if _, ok := c["zipCode"]; ok {
				t.Errorf("the alias is kept as a property of its own: %s", r.body)
			}
		})

		t.Run("a deleted customer's token is a 401", func(t *testing.T) {
			tok := env.SignIn(t, "demo", "deleted@example.com")
			id, _ := customerOf(t, env, "demo", tok)["id"].(string)
			if err := env.App.Store.DeleteCustomer(ctx, "demo", id, time.Now()); err != nil {
				t.Fatal(err)
			}
			for _, r := range []rawReply{
				rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, "Authorization", "Bearer "+tok),
				rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"firstName":"Ghost"}`), "Authorization", "Bearer "+tok),
			} {
				mustProblem(t, r, http.StatusUnauthorized, tok)
				if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
		})

		t.Run("a token of customer A updates A only", func(t *testing.T) {
			tokA := env.SignIn(t, "demo", "alice@example.com")
			tokB := env.SignIn(t, "demo", "bob@example.com")
			a, b := customerOf(t, env, "demo", tokA), customerOf(t, env, "demo", tokB)
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"id":"`+b["id"].(string)+`","firstName":"Mallory"}`),
				"Authorization", "Bearer "+tokA)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("update: %d %s", r.StatusCode, r.body)
			}
			if got := decodeObject(t, r); got["id"] != a["id"] || got["firstName"] != "Mallory" || got["email"] != "alice@example.com" {
				t.Fatalf("A's token updated %s", r.body)
			}
			if got := customerOf(t, env, "demo", tokB); got["firstName"] != nil || got["email"] != "bob@example.com" {
				t.Fatalf("B changed: %v", got)
			}
			// And A's token cannot take B's email either.
			r = rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"bob@example.com"}`), "Authorization", "Bearer "+tokA)
			if r.StatusCode != http.StatusPreconditionFailed {
				t.Fatalf("A takes B's email: %d %s", r.StatusCode, r.body)
			}
			if got := customerOf(t, env, "demo", tokA); got["email"] != "alice@example.com" {
				t.Fatalf("A's email changed: %v", got)
			}
		})

		t.Run("a token issued by tenant a is a 401 on tenant b", func(t *testing.T) {
			tok := env.SignIn(t, "demo", "tenant@example.com")
			for _, r := range []rawReply{
				rawCall(t, env, http.MethodGet, "/api/b/customer", nil, "Authorization", "Bearer "+tok),
				rawCall(t, env, http.MethodPost, "/api/b/customer", strings.NewReader(`{"email":"tenant@example.com"}`), "Authorization", "Bearer "+tok),
			} {
				mustProblem(t, r, http.StatusUnauthorized, tok)
				if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
			if _, err := env.App.Store.CustomerByEmail(ctx, "b", "tenant@example.com"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("tenant b has an account for the refused request: %v", err)
			}
		})
	})
}

func TestConcurrentCreates(t *testing.T) {
	t.Run("fifty concurrent creates of one email make one account; the others get a challenge of their own or 429", func(t *testing.T) {
		storetest.ForEach(t, func(t *testing.T, dbURL string) {
			env := apptest.Start(t, dbURL, "")
			const email = "crowd@example.com"
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				statuses = map[int]int{}
				ids      = map[string]bool{}
			)
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{Email: ptr(email), FirstName: ptr("Crowd")})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						statuses[-1]++
						return
					}
					statuses[res.StatusCode()]++
					if res.JSON202 != nil {
						ids[res.JSON202.ChallengeId.String()] = true
					}
				}()
			}
			wg.Wait()
			// One creates; one gets the check-in code; the rest are throttled: a
			// live challenge is never handed to another caller.
			if statuses[http.StatusOK] != 1 || statuses[http.StatusAccepted] != 1 || statuses[http.StatusTooManyRequests] != 48 || len(statuses) != 3 {
				t.Fatalf("answers by status: %v, want 1×200, 1×202 and 48×429", statuses)
			}
			if _, err := env.App.Store.CustomerByEmail(ctx, "demo", email); err != nil {
				t.Fatalf("the account: %v", err)
			}
			if n := env.Logs.Sent(email); n != 1 || len(ids) != 1 {
				t.Fatalf("%d codes sent, %d distinct challenges; want 1 and 1", n, len(ids))
			}
		})
	})
}

func TestDatabaseOutage(t *testing.T) {
	t.Run("a closed database answers 503, not 500", func(t *testing.T) {
		// Closing the store is the outage both backends can have; the service
		// cannot recover from it (it is closed for good): recovery is tested
		// on PostgreSQL below, behind a proxy that goes down and up again.
		storetest.ForEach(t, func(t *testing.T, dbURL string) {
			env := apptest.Start(t, dbURL, "")
			tok := env.SignIn(t, "demo", "outage@example.com")
			if err := env.App.Store.Close(); err != nil {
				t.Fatal(err)
			}
			checkUnavailable(t, env, tok)
		})
	})

	t.Run("a database outage answers 503 and recovers", func(t *testing.T) {
		storetest.ForEach(t, func(t *testing.T, dbURL string) {
			u, err := url.Parse(dbURL)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				t.Skip("a network outage needs a database behind the network: PostgreSQL only")
			}
			px := startProxy(t, u.Host)
			u.Host = px.addr()
			env := apptest.Start(t, u.String(), "")
			tok := env.SignIn(t, "demo", "outage@example.com")

			px.down()
			checkUnavailable(t, env, tok)

			px.up()
			var ready rawReply
			for range 50 { // the pool drops its dead connections as it meets them
				if ready = rawCall(t, env, http.MethodGet, "/readyz", nil); ready.StatusCode == http.StatusOK {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if ready.StatusCode != http.StatusOK {
				t.Fatalf("/readyz after the database came back: %d %s", ready.StatusCode, ready.body)
			}
			if c := customerOf(t, env, "demo", tok); c["email"] != "outage@example.com" {
				t.Fatalf("after recovery: %v", c)
			}
			r := rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"after.outage@example.com"}`))
			if r.StatusCode != http.StatusOK {
				t.Fatalf("create after recovery: %d %s", r.StatusCode, r.body)
			}
		})
	})
}

// checkUnavailable checks that readiness, reads and writes answer 503 problems with Retry-After.
func checkUnavailable(t *testing.T, env *apptest.Env, tok string) {
	t.Helper()
	for _, r := range []rawReply{
		rawCall(t, env, http.MethodGet, "/readyz", nil),
		rawCall(t, env, http.MethodPost, "/api/demo/customer", strings.NewReader(`{"email":"during.outage@example.com"}`)),
		rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, "Authorization", "Bearer "+tok),
		rawCall(t, env, http.MethodPost, "/api/demo/customer/authenticate?provider=otp", strings.NewReader(`{"email":"during.outage@example.com"}`)),
	} {
		mustProblem(t, r, http.StatusServiceUnavailable, tok)
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s %s: Retry-After %q", r.Request.Method, r.Request.URL.Path, r.Header.Get("Retry-After"))
		}
	}
	if n := env.Logs.Sent("during.outage@example.com"); n != 0 {
		t.Errorf("%d codes sent during the outage", n)
	}
}

// proxy forwards TCP connections to a database; down cuts every connection
// and refuses new ones until up.
type proxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	isDown   bool
	conns    map[net.Conn]bool
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.down()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		p.mu.Lock()
		down := p.isDown
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(c, up)
		go func() { _, _ = io.Copy(up, c); _ = up.Close(); _ = c.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = up.Close(); _ = c.Close() }()
	}
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = true
	}
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isDown = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *proxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isDown = false
}
