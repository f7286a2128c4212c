package challenge_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

var ctx = context.Background()

// key keys the code hashes of every test service.
var key = []byte("challenge-test-key-challenge-test-key-0123")

// limits are the product's limits (PRODUCT.md section 5).
var limits = challenge.Limits{Lifetime: 10 * time.Minute, MaxAttempts: 5, ResendInterval: 60 * time.Second, MaxFailuresPerDay: 100}

// clock is a settable clock, shared by goroutines. It starts with a
// sub-microsecond part so that timestamps go through the database as real
// ones do (PostgreSQL keeps microseconds).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 10, 10, 0, 0, 123456789, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder stands in for the mail or SMS gateway: it keeps every message it
// is handed and, when fail is set, refuses it.
type recorder struct {
	mu   sync.Mutex
	fail bool
	sent []sender.Message
}

var errGateway = errors.New("gateway refused the message")

func (r *recorder) Send(_ context.Context, m sender.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errGateway
	}
	r.sent = append(r.sent, m)
	return nil
}

func (r *recorder) setFail(fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = fail
}

// messages returns the messages delivered to to.
func (r *recorder) messages(to string) []sender.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sender.Message
	for _, m := range r.sent {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// last is the code of the last message delivered to to.
func (r *recorder) last(t *testing.T, to string) string {
	t.Helper()
	ms := r.messages(to)
	if len(ms) == 0 {
		t.Fatalf("no message was sent to %s", to)
	}
	return ms[len(ms)-1].Code
}

const tenant = "demo"

func target(to string) challenge.Target {
	return challenge.Target{Tenant: tenant, Channel: sender.Email, To: to, Language: "fr"}
}

// fixture is one service over a fresh store of a backend.
type fixture struct {
	store store.Store
	clock *clock
	svc   *challenge.Service
	snd   *recorder
}

func setup(t *testing.T, url string) *fixture {
	t.Helper()
	st := storetest.Open(t, url)
	clk := newClock()
	return &fixture{store: st, clock: clk, svc: challenge.New(st, key, clk.Now, nil), snd: &recorder{}}
}

// issue sends a code to to and returns the challenge and the code delivered.
func (f *fixture) issue(t *testing.T, lim challenge.Limits, to string) (*challenge.Issued, string) {
	t.Helper()
	iss, err := f.svc.Issue(ctx, lim, target(to), f.snd)
	if err != nil {
		t.Fatalf("issue a code to %s: %v", to, err)
	}
	return iss, f.snd.last(t, to)
}

// complete attempts code on challenge id and, when it is right, uses the
// challenge up, as the sign-in core does.
func complete(svc *challenge.Service, st store.Store, lim challenge.Limits, tenant, id, code string) (*store.ChallengeRead, error) {
	p, _, err := svc.Attempt(ctx, lim, tenant, challenge.Code{ChallengeID: id, Code: code}, nil)
	if err != nil {
		return nil, err
	}
	return p.ChallengeRead, svc.Consume(ctx, st, p)
}

// wrong is a code that is not code.
func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// forEachBackend runs fn on SQLite, and on PostgreSQL when it is configured;
// url gives each test a database of its own.
func forEachBackend(t *testing.T, fn func(t *testing.T, url func(testing.TB) string)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.URL) })
	}
}

func TestChallenge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url func(testing.TB) string) {
		t.Run("a code is six digits and only its keyed hash is stored", func(t *testing.T) {
			f := setup(t, url(t))
			iss, code := f.issue(t, limits, "jane@example.com")
			if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
				t.Fatalf("code %q is not six digits", code)
			}
			row, err := f.store.Challenge(ctx, tenant, iss.ID)
			if err != nil {
				t.Fatalf("read the stored challenge: %v", err)
			}
			if row.CodeHash == code || len(row.CodeHash) != 64 {
				t.Fatalf("stored code_hash %q: want 64 hex characters, not the code", row.CodeHash)
			}
			if _, err := hex.DecodeString(row.CodeHash); err != nil {
				t.Fatalf("stored code_hash %q is not hex: %v", row.CodeHash, err)
			}
			plain := sha256.Sum256([]byte(code))
			if row.CodeHash == hex.EncodeToString(plain[:]) {
				t.Fatal("the stored hash is an unkeyed SHA-256 of the code: a leaked table is brute-forced in a second")
			}
			// Another key hashes the same code differently: the hash is keyed.
			other := challenge.New(f.store, []byte("another-key-another-key-another-key-0123"), f.clock.Now, nil)
			if _, err := complete(other, f.store, limits, tenant, iss.ID, code); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("the code completed under another key: %v", err)
			}
			if iss.Destination != "j***@e***.com" || iss.Channel != sender.Email || iss.AttemptsLeft != 5 ||
				!iss.ExpiresAt.Equal(f.clock.Now().Add(10*time.Minute)) {
				t.Fatalf("issued challenge: %+v", iss)
			}
		})

		t.Run("the right code completes once", func(t *testing.T) {
			f := setup(t, url(t))
			iss, code := f.issue(t, limits, "jane@example.com")
			c, err := complete(f.svc, f.store, limits, tenant, iss.ID, code)
			if err != nil {
				t.Fatalf("complete with the right code: %v", err)
			}
			if row, _ := f.store.Challenge(ctx, tenant, iss.ID); c.Destination != "jane@example.com" || row.ConsumedAt == nil {
				t.Fatalf("completed challenge: %+v, consumed at %v", c, row.ConsumedAt)
			}
			// A right code is not a failure: the day's counter is back where it was.
			if n, _ := f.store.Counted(ctx, tenant, "fail:jane@example.com", f.clock.Now().Format(time.DateOnly)); n != 0 {
				t.Fatalf("failures counted after the right code: %d", n)
			}
			if _, err := complete(f.svc, f.store, limits, tenant, iss.ID, code); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("second use of the code: %v, want ErrInvalidCode", err)
			}
			// Another tenant cannot complete it either.
			iss2, code2 := f.issue(t, limits, "john@example.com")
			if _, err := complete(f.svc, f.store, limits, "other", iss2.ID, code2); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("another tenant completed the challenge: %v", err)
			}
		})

		t.Run("an id in another spelling of the same UUID names the same challenge", func(t *testing.T) {
			// Swift's UUID prints upper-case: the id a 202 gave, sent back as
			// a client's UUID type writes it, is the same challenge, whose
			// attempts it spends.
			f := setup(t, url(t))
			iss, code := f.issue(t, limits, "jane@example.com")
			upper := strings.ToUpper(iss.ID)
			if _, err := complete(f.svc, f.store, limits, tenant, upper, wrong(code)); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("a wrong code under the upper-case id: %v, want ErrInvalidCode", err)
			}
			if row, _ := f.store.Challenge(ctx, tenant, iss.ID); row.Attempts != 1 {
				t.Fatalf("attempts on the challenge after a wrong code under its upper-case id: %d, want 1", row.Attempts)
			}
			// Each attempt spends one of the five: a wrong one, these three, the last.
			for _, id := range []string{"{" + iss.ID + "}", "urn:uuid:" + iss.ID, strings.ReplaceAll(iss.ID, "-", "")} {
				if _, _, err := f.svc.Attempt(ctx, limits, tenant, challenge.Code{ChallengeID: id, Code: code}, nil); err != nil {
					t.Fatalf("the right code under id %q: %v", id, err)
				}
			}
			if _, err := complete(f.svc, f.store, limits, tenant, upper, code); err != nil {
				t.Fatalf("complete under the upper-case id: %v", err)
			}
		})

		t.Run("a code expires after ten minutes", func(t *testing.T) {
			f := setup(t, url(t))
			start := f.clock.Now()
			a, codeA := f.issue(t, limits, "a@example.com")
			f.clock.Set(start.Add(10*time.Minute - time.Second))
			if _, err := complete(f.svc, f.store, limits, tenant, a.ID, codeA); err != nil {
				t.Fatalf("complete after 9m59s: %v", err)
			}

			start = f.clock.Now()
			b, codeB := f.issue(t, limits, "b@example.com")
			f.clock.Set(start.Add(10 * time.Minute))
			if _, err := complete(f.svc, f.store, limits, tenant, b.ID, codeB); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("complete after 10m: %v, want ErrInvalidCode", err)
			}
		})

		t.Run("five wrong codes kill the challenge", func(t *testing.T) {
			f := setup(t, url(t))
			iss, code := f.issue(t, limits, "jane@example.com")
			for i := range 5 {
				if _, err := complete(f.svc, f.store, limits, tenant, iss.ID, wrong(code)); !errors.Is(err, challenge.ErrInvalidCode) {
					t.Fatalf("wrong code %d: %v, want ErrInvalidCode", i+1, err)
				}
			}
			if _, err := complete(f.svc, f.store, limits, tenant, iss.ID, code); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("the right code after five wrong ones: %v, want ErrInvalidCode", err)
			}
			if _, err := f.store.LiveChallenge(ctx, tenant, "jane@example.com", "", f.clock.Now()); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a dead challenge is still live: %v", err)
			}
		})

		t.Run("a second code within 60 s is throttled with Retry-After", func(t *testing.T) {
			f := setup(t, url(t))
			start := f.clock.Now()
			f.issue(t, limits, "jane@example.com")
			f.clock.Set(start.Add(10 * time.Second))
			_, err := f.svc.Issue(ctx, limits, target("jane@example.com"), f.snd)
			var th *challenge.ThrottledError
			if !errors.As(err, &th) {
				t.Fatalf("second code after 10s: %v, want ThrottledError", err)
			}
			if th.RetryAfter < time.Second || th.RetryAfter > 60*time.Second {
				t.Fatalf("RetryAfter %s, want between 1s and 60s", th.RetryAfter)
			}
			if n := len(f.snd.messages("jane@example.com")); n != 1 {
				t.Fatalf("%d messages sent, want 1", n)
			}
			// Another destination is not throttled by this one.
			f.issue(t, limits, "john@example.com")

			f.clock.Set(start.Add(60 * time.Second))
			f.issue(t, limits, "jane@example.com")
			if n := len(f.snd.messages("jane@example.com")); n != 2 {
				t.Fatalf("%d messages sent after 60s, want 2", n)
			}
		})

		t.Run("a token holder's retried request gets its live challenge back", func(t *testing.T) {
			f := setup(t, url(t))
			mine := target("jane@example.com")
			id := "customer-1"
			mine.Purpose, mine.CustomerID, mine.Pending, mine.Retry = challenge.Contact, &id, `{"input":{}}`, true
			first, err := f.svc.Issue(ctx, limits, mine, f.snd)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Add(5 * time.Second)
			again, err := f.svc.Issue(ctx, limits, mine, f.snd)
			if err != nil {
				t.Fatalf("issue with reuse: %v", err)
			}
			if again.ID != first.ID || again.Destination != first.Destination || again.ExpiresAt.Sub(first.ExpiresAt).Abs() > time.Millisecond {
				t.Fatalf("reuse answered %+v, want the live challenge %+v", again, first)
			}
			if n := len(f.snd.messages("jane@example.com")); n != 1 {
				t.Fatalf("%d messages sent, want 1", n)
			}
		})

		t.Run("a retried contact change asked with a retired key gets a new challenge", func(t *testing.T) {
			f := setup(t, url(t))
			for _, kid := range []string{"old", "new"} {
				if err := f.store.AddSigningKey(ctx, &store.SigningKey{TenantID: tenant, KID: kid, Alg: "ES256",
					PrivateKey: []byte("sealed"), PublicJWK: "{}", CreatedAt: f.clock.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			id := "customer-1"
			asked := func(kid string) challenge.Target {
				tg := target("new@example.com")
				tg.Purpose, tg.CustomerID, tg.Pending, tg.Retry, tg.TokenKID = challenge.Contact, &id, `{"input":{"email":"new@example.com"}}`, true, &kid
				return tg
			}
			first, err := f.svc.Issue(ctx, limits, asked("old"), f.snd)
			if err != nil {
				t.Fatal(err)
			}
			// Both keys live (a plain rotation): the change is handed back,
			// or each key's token in turn would send a code at every request.
			f.clock.Add(5 * time.Second)
			again, err := f.svc.Issue(ctx, limits, asked("new"), f.snd)
			if err != nil || again.ID != first.ID {
				t.Fatalf("retried with the other live key: %+v %v, want the live challenge %s", again, err, first.ID)
			}
			// The old key retired: the change written with it after the
			// retirement (a request let in before it, or a token forged in the
			// minute a replica still holds the key) can never complete.
			if _, err := f.store.RetireSigningKeys(ctx, tenant, "new", f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			f.clock.Add(limits.ResendInterval)
			dead, err := f.svc.Issue(ctx, limits, asked("old"), f.snd)
			if err != nil {
				t.Fatal(err)
			}
			deadCode := f.snd.last(t, "new@example.com")
			f.clock.Add(5 * time.Second)
			fresh, err := f.svc.Issue(ctx, limits, asked("new"), f.snd)
			if err != nil || fresh.ID == dead.ID {
				t.Fatalf("retried with the live key: %+v %v, want a new challenge, not the retired key's %s", fresh, err, dead.ID)
			}
			if _, err := complete(f.svc, f.store, limits, tenant, dead.ID, deadCode); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("the replaced challenge still completes: %v", err)
			}
			if _, err := complete(f.svc, f.store, limits, tenant, fresh.ID, f.snd.last(t, "new@example.com")); err != nil {
				t.Fatalf("the new challenge: %v", err)
			}
		})

		t.Run("a live challenge is never handed to another request", func(t *testing.T) {
			f := setup(t, url(t))
			id, other := "customer-1", "customer-2"
			mine := target("new@example.com")
			mine.Purpose, mine.CustomerID, mine.Pending, mine.Retry = challenge.Contact, &id, `{"input":{"email":"new@example.com"}}`, true
			first, err := f.svc.Issue(ctx, limits, mine, f.snd)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Add(5 * time.Second)
			anonymous := mine
			anonymous.Retry = false
			signIn := target("new@example.com")
			signIn.Purpose = challenge.SignIn
			checkIn := mine
			checkIn.Purpose = challenge.CheckIn
			otherAccount := mine
			otherAccount.CustomerID = &other
			otherChange := mine
			otherChange.Pending = `{"input":{"email":"new@example.com","firstName":"Eve"}}`
			for name, tg := range map[string]challenge.Target{"the same request, anonymous": anonymous, "a sign-in": signIn,
				"a check-in": checkIn, "another account": otherAccount, "another held change": otherChange} {
				// Throttled, or (a sign-in's own throttle) a challenge of its own.
				var th *challenge.ThrottledError
				if iss, err := f.svc.Issue(ctx, limits, tg, f.snd); !errors.As(err, &th) && (err != nil || iss.ID == first.ID) {
					t.Errorf("%s within the resend interval: %+v %v, want ThrottledError or its own challenge", name, iss, err)
				}
			}
		})

		t.Run("100 failures a day lock the destination", func(t *testing.T) {
			// MaxFailuresPerDay is 3 here instead of 100, for speed: the rule is the same.
			lim := limits
			lim.MaxFailuresPerDay = 3
			f := setup(t, url(t))
			to := "jane@example.com"
			first, code1 := f.issue(t, lim, to)
			for range 2 {
				if _, err := complete(f.svc, f.store, lim, tenant, first.ID, wrong(code1)); !errors.Is(err, challenge.ErrInvalidCode) {
					t.Fatalf("wrong code: %v", err)
				}
			}
			f.clock.Add(time.Minute)
			second, code2 := f.issue(t, lim, to)
			if _, err := complete(f.svc, f.store, lim, tenant, second.ID, wrong(code2)); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("third wrong code: %v", err)
			}
			f.clock.Add(time.Minute)
			if _, err := f.svc.Issue(ctx, lim, target(to), f.snd); !errors.Is(err, challenge.ErrLocked) {
				t.Fatalf("issue after 3 failures today: %v, want ErrLocked", err)
			}
			if _, err := complete(f.svc, f.store, lim, tenant, second.ID, code2); !errors.Is(err, challenge.ErrLocked) {
				t.Fatalf("complete with the right code after 3 failures today: %v, want ErrLocked", err)
			}
			// Another destination is not locked.
			f.issue(t, lim, "john@example.com")

			now := f.clock.Now()
			f.clock.Set(time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 1, 0, time.UTC))
			next, code3 := f.issue(t, lim, to)
			if _, err := complete(f.svc, f.store, lim, tenant, next.ID, code3); err != nil {
				t.Fatalf("complete the next UTC day: %v", err)
			}
		})

		t.Run("a failed send leaves no usable code and no throttle", func(t *testing.T) {
			f := setup(t, url(t))
			to := "jane@example.com"
			f.snd.setFail(true)
			_, err := f.svc.Issue(ctx, limits, target(to), f.snd)
			if !errors.Is(err, challenge.ErrNotDelivered) {
				t.Fatalf("issue through a failing gateway: %v, want ErrNotDelivered", err)
			}
			if _, err := f.store.LiveChallenge(ctx, tenant, to, "", f.clock.Now()); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("live challenge after a failed send: %v, want ErrNotFound", err)
			}
			// Reuse must not answer a challenge whose code never left either.
			f.snd.setFail(false)
			iss, err := f.svc.Issue(ctx, limits, target(to), f.snd)
			if err != nil {
				t.Fatalf("immediate retry after a failed send: %v, want no throttle", err)
			}
			if _, err := complete(f.svc, f.store, limits, tenant, iss.ID, f.snd.last(t, to)); err != nil {
				t.Fatalf("complete the retried code: %v", err)
			}
		})

		t.Run("limits hold across replicas", func(t *testing.T) {
			// Two services, each with its own connection pool on one database, as two replicas.
			clk := newClock()
			db := url(t)
			st1, st2 := storetest.Open(t, db), storetest.Open(t, db)
			r1, r2 := challenge.New(st1, key, clk.Now, nil), challenge.New(st2, key, clk.Now, nil)
			snd := &recorder{}

			if _, err := r1.Issue(ctx, limits, target("jane@example.com"), snd); err != nil {
				t.Fatalf("replica 1 issues: %v", err)
			}
			clk.Add(5 * time.Second)
			var th *challenge.ThrottledError
			if _, err := r2.Issue(ctx, limits, target("jane@example.com"), snd); !errors.As(err, &th) {
				t.Fatalf("replica 2 within 60s of replica 1: %v, want ThrottledError", err)
			}
			// A code issued by one replica completes on the other, once.
			iss, err := r2.Issue(ctx, limits, target("john@example.com"), snd)
			if err != nil {
				t.Fatal(err)
			}
			code := snd.last(t, "john@example.com")
			if _, err := complete(r1, st1, limits, tenant, iss.ID, code); err != nil {
				t.Fatalf("complete on replica 1 a code of replica 2: %v", err)
			}
			if _, err := complete(r2, st2, limits, tenant, iss.ID, code); !errors.Is(err, challenge.ErrInvalidCode) {
				t.Fatalf("second use on replica 2: %v, want ErrInvalidCode", err)
			}

			// Twenty concurrent requests for one destination, spread over both: one code leaves.
			to := "race@example.com"
			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				ok, thrtl int
				others    []error
			)
			for i := range 20 {
				svc := r1
				if i%2 == 1 {
					svc = r2
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := svc.Issue(ctx, limits, target(to), snd)
					var th *challenge.ThrottledError
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.As(err, &th):
						thrtl++
					default:
						others = append(others, err)
					}
				}()
			}
			wg.Wait()
			if len(others) > 0 {
				t.Fatalf("concurrent issues failed: %v", others)
			}
			if n := len(snd.messages(to)); n != 1 || ok != 1 || thrtl != 19 {
				t.Fatalf("20 concurrent issues: %d messages, %d issued, %d throttled; want 1, 1, 19", n, ok, thrtl)
			}
		})
	})
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"jane.doe@example.com", "j***@e***.com"},
		{"a@b.co", "a***@b***.co"},
		{"john@mail.example.co.uk", "j***@m***.uk"},
		{"root@localhost", "r***@l***"},
		{"élodie@exämple.fr", "é***@e***.fr"},
		{"+33612345678", "+33*******78"},
		{"+14155550123", "+14*******23"},
		{"12345", "*****"},
		{"", ""},
	} {
		name := tc.in
		if name == "" {
			name = "empty"
		}
		t.Run(name, func(t *testing.T) {
			if got := challenge.Mask(tc.in); got != tc.want {
				t.Fatalf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// A code asked for another spelling of an inbox that got one within the
// resend interval goes to nobody, and no code completes its challenge:
// neither the one the inbox got nor any other six digits.
func TestACodeWithheldFromABombedInboxIsNoCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url func(testing.TB) string) {
		f := setup(t, url(t))
		sent, code := f.issue(t, limits, "jane+1@gmail.com")
		withheld, err := f.svc.Issue(ctx, limits, target("j.ane@googlemail.com"), f.snd)
		if err != nil {
			t.Fatalf("a code to another spelling: %v, want it answered as a sent one", err)
		}
		if n := len(f.snd.messages("j.ane@googlemail.com")); n != 0 {
			t.Fatalf("%d codes went to another spelling of the inbox within the interval, want 0", n)
		}
		keyed := func(id, code string) string {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(tenant + "\x00" + id + "\x00" + code))
			return hex.EncodeToString(m.Sum(nil))
		}
		row, err := f.store.Challenge(ctx, tenant, sent.ID)
		if err != nil || row.CodeHash != keyed(sent.ID, code) {
			t.Fatalf("the sent code's hash is not the one this test computes (%v): it checks nothing", err)
		}
		row, err = f.store.Challenge(ctx, tenant, withheld.ID)
		if err != nil {
			t.Fatal(err)
		}
		for n := range 1_000_000 {
			if c := fmt.Sprintf("%06d", n); row.CodeHash == keyed(withheld.ID, c) {
				t.Fatalf("the withheld challenge completes with %s", c)
			}
		}
		if _, err := complete(f.svc, f.store, limits, tenant, withheld.ID, code); !errors.Is(err, challenge.ErrInvalidCode) {
			t.Fatalf("the inbox's code on the withheld challenge: %v, want ErrInvalidCode", err)
		}
		// A phone number is its one spelling; another inbox is another.
		for _, to := range []string{"+33612345678", "jane@example.com"} {
			f.issue(t, limits, to)
		}
	})
}
