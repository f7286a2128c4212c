package server_test

import (
	"encoding/json"
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store"
)

func post(t *testing.T, env *apptest.Env, path, body string, header ...string) rawReply {
	t.Helper()
	return rawCall(t, env, http.MethodPost, path, strings.NewReader(body), header...)
}

// postOK posts body to path and fails the test unless the answer is 200.
func postOK(t *testing.T, env *apptest.Env, path, body string, header ...string) {
	t.Helper()
	if r := post(t, env, path, body, header...); r.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s → %d, want 200: %s", path, body, r.StatusCode, r.body)
	}
}

// sentTo is the last "otp sent" log line for to.
func sentTo(env *apptest.Env, to string) map[string]any {
	var last map[string]any
	for _, m := range env.Logs.Lines() {
		if m["msg"] == "otp sent" && m["to"] == to {
			last = m
		}
	}
	return last
}

func challengeID(t *testing.T, r rawReply) string {
	t.Helper()
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("%s %s → %d, want 202: %s", r.Request.Method, r.Request.URL, r.StatusCode, r.body)
	}
	id, _ := decodeObject(t, r)["challengeId"].(string)
	if id == "" {
		t.Fatalf("no challengeId: %s", r.body)
	}
	return id
}

// complete exchanges the last code sent to to for challenge id and returns the token.
func complete(t *testing.T, env *apptest.Env, tenant, id, to string) string {
	t.Helper()
	r := exchange(t, env, tenant, id, env.Logs.Code(to))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("complete the challenge sent to %s: %d %s", to, r.StatusCode, r.body)
	}
	var tok string
	if err := jsonUnmarshal(r.body, &tok); err != nil {
		t.Fatalf("token: %v %s", err, r.body)
	}
	return tok
}

func stored(t *testing.T, env *apptest.Env, tenant, email string) *store.Customer {
	t.Helper()
	c, err := env.App.Store.CustomerByEmail(ctx, tenant, email)
	if err != nil {
		t.Fatalf("account %s: %v", email, err)
	}
	return c
}

func TestPreregistration(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  none: {checkInPolicy: none}
  partial: {checkInPolicy: partial, checkInPage: "https://shop.example/check-in?brand=acme"}
  full: {checkInPolicy: full}
`)
		t.Run("none answers the account and never changes an existing one", func(t *testing.T) {
			r := post(t, env, "/api/none/customer?flow=preregistration", `{"email":"pre@example.com"}`)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("new: %d %s", r.StatusCode, r.body)
			}
			first := decodeObject(t, r)
			if first["isProspect"] != true || first["email"] != "pre@example.com" {
				t.Fatalf("new account: %s", r.body)
			}
			r = post(t, env, "/api/none/customer?flow=preregistration", `{"email":"pre@example.com","firstName":"Mallory"}`)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("existing: %d %s", r.StatusCode, r.body)
			}
			if again := decodeObject(t, r); again["id"] != first["id"] || again["firstName"] != nil {
				t.Fatalf("existing account: %s", r.body)
			}
			if c := stored(t, env, "none", "pre@example.com"); c.Profile["firstName"] != nil {
				t.Fatalf("an anonymous preregistration changed the account: %v", c.Profile)
			}
			if n := env.Logs.Sent("pre@example.com"); n != 0 {
				t.Fatalf("none sent %d messages", n)
			}
		})

		for _, tc := range []struct{ policy, page string }{{"partial", "https://shop.example/check-in"}, {"full", ""}} {
			t.Run(tc.policy+" answers new and existing accounts alike, and the message completes the challenge", func(t *testing.T) {
				base := "/api/" + tc.policy + "/customer"
				// Under this policy every anonymous POST is checked in, a new account too.
				if r := post(t, env, base, `{"email":"old.`+tc.policy+`@example.com","firstName":"Old"}`); r.StatusCode != http.StatusAccepted {
					t.Fatalf("seed: %d %s", r.StatusCode, r.body)
				}
				env.Clock.Advance(61 * time.Second) // past the seed's resend interval
				replies := map[string]rawReply{}
				for _, who := range []string{"old", "new"} {
					replies[who] = post(t, env, base+"?flow=preregistration", `{"email":"`+who+`.`+tc.policy+`@example.com"}`)
				}
				oldR, newR := replies["old"], replies["new"]
				if oldR.StatusCode != http.StatusAccepted || newR.StatusCode != oldR.StatusCode {
					t.Fatalf("statuses: existing %d, new %d", oldR.StatusCode, newR.StatusCode)
				}
				oldB, newB := decodeObject(t, oldR), decodeObject(t, newR)
				if !reflect.DeepEqual(keysOf(oldB), keysOf(newB)) || oldB["channel"] != newB["channel"] || oldB["attemptsLeft"] != newB["attemptsLeft"] ||
					len(oldB["destination"].(string)) != len(newB["destination"].(string)) {
					t.Fatalf("the answers tell new from existing:\n%s\n%s", oldR.body, newR.body)
				}
				if oldR.Header.Get("Content-Type") != newR.Header.Get("Content-Type") {
					t.Fatalf("content types differ")
				}
				for _, who := range []string{"old", "new"} {
					to := who + "." + tc.policy + "@example.com"
					id := challengeID(t, replies[who])
					msg := sentTo(env, to)
					if msg == nil {
						t.Fatalf("nothing sent to %s", to)
					}
					link, _ := msg["link"].(string)
					if tc.page == "" {
						if link != "" {
							t.Fatalf("full sent a link: %s", link)
						}
						complete(t, env, tc.policy, id, to)
						continue
					}
					u, err := url.Parse(link)
					if err != nil || !strings.HasPrefix(link, tc.page+"?") || u.Query().Get("brand") != "acme" ||
						u.Query().Get("challengeId") != id || u.Query().Get("code") != msg["code"] {
						t.Fatalf("link %q for challenge %s", link, id)
					}
					// The page exchanges the link's parameters through authenticate?provider=otp.
					if r := exchange(t, env, tc.policy, u.Query().Get("challengeId"), u.Query().Get("code")); r.StatusCode != http.StatusOK {
						t.Fatalf("exchange the link: %d %s", r.StatusCode, r.body)
					}
				}
				if c := stored(t, env, tc.policy, "old."+tc.policy+"@example.com"); c.Profile["firstName"] != "Old" || !c.EmailVerified {
					t.Fatalf("existing account after check-in: %+v", c)
				}
				if c := stored(t, env, tc.policy, "new."+tc.policy+"@example.com"); c.Profile["isProspect"] != true || !c.EmailVerified {
					t.Fatalf("new account after check-in: %+v", c)
				}
			})
		}
	})
}

func TestActivation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook, crm := newReceiver(t), newReceiver(t)
		env := apptest.Start(t, dbURL, `
events: {pollInterval: 5ms}
tenants:
  demo:
    activationFields: [firstName, lastName]
    webhooks:
      endpoints:
        - {url: "`+hook.srv.URL+`", secret: "`+hook.secret+`", allowPrivateNetwork: true}
        - {url: "`+crm.srv.URL+`", secret: "`+crm.secret+`", events: [Customer:Activated], allowPrivateNetwork: true}
      retryBase: 5ms
      retryMax: 40ms
`)
		env.StartEvents()
		r := post(t, env, "/api/demo/customer?flow=activation", `{"email":"act@example.com"}`)
		p := mustProblem(t, r, http.StatusPreconditionFailed)
		if errs, _ := p["errors"].(map[string]any); errs["firstName"] == nil || errs["lastName"] == nil {
			t.Fatalf("412 does not list the missing fields: %s", r.body)
		}
		mustNotExist(t, env, "demo", "act@example.com")

		// The profile is complete but the contact is not verified: 202, the account is saved as a prospect.
		id := challengeID(t, post(t, env, "/api/demo/customer?flow=activation", `{"email":"act@example.com","firstName":"Ada","lastName":"Lovelace"}`))
		if c := stored(t, env, "demo", "act@example.com"); c.Profile["isProspect"] != true || c.Profile["activatedAt"] != nil {
			t.Fatalf("activated before the contact was verified: %v", c.Profile)
		}
		// Completing the challenge verifies the contact and runs the flow again.
		tok := complete(t, env, "demo", id, "act@example.com")
		me := customerOf(t, env, "demo", tok)
		at, _ := me["activatedAt"].(string)
		if me["isProspect"] != false || at == "" || me["emailVerified"] != true {
			t.Fatalf("after completing activation: %v", me)
		}
		// Activating again with the token is harmless.
		r = post(t, env, "/api/demo/customer?flow=activation", `{}`, "Authorization", "Bearer "+tok)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("activating twice: %d %s", r.StatusCode, r.body)
		}
		if again := decodeObject(t, r); again["activatedAt"] != at || again["isProspect"] != false {
			t.Fatalf("activating twice changed the activation: %s", r.body)
		}
		waitFor(t, "every event delivered", func() bool { return undelivered(t, env) == 0 })
		if got := hook.ofType("Customer:Activated", me["id"].(string)); len(got) != 1 || got[0].Data["activatedAt"] != at {
			t.Fatalf("Customer:Activated events: %+v", got)
		}
		if len(hook.ofType("Customer:Upserted", "")) == 0 {
			t.Fatalf("no Customer:Upserted event")
		}
		if got := crm.unique(); len(got) != 1 || got[0].Type != "Customer:Activated" {
			t.Fatalf("an endpoint subscribed to Customer:Activated only received: %+v", got)
		}
	})
}

func TestTenantFlows(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo:
    flows:
      signup:
        - require: [storeId]
        - set: {segment: web}
        - emit: Customer:Activated
      preregistration:
        - challenge: code
`)
		p := mustProblem(t, post(t, env, "/api/demo/customer?flow=nope", `{"email":"x@example.com"}`), http.StatusBadRequest)
		if p["detail"] != `unknown flow "nope", have [activation preregistration signup]` {
			t.Fatalf("detail: %v", p["detail"])
		}
		mustNotExist(t, env, "demo", "x@example.com")
		mustProblem(t, post(t, env, "/api/demo/customer?flow=signup", `{"email":"s@example.com"}`), http.StatusPreconditionFailed)
		mustNotExist(t, env, "demo", "s@example.com")
		r := post(t, env, "/api/demo/customer?flow=signup", `{"email":"s@example.com","storeId":"S1"}`)
		if r.StatusCode != http.StatusOK || decodeObject(t, r)["segment"] != "web" {
			t.Fatalf("signup: %d %s", r.StatusCode, r.body)
		}
		evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
		if len(evs) != 2 || evs[0].Type != "Customer:Upserted" || evs[1].Type != "Customer:Activated" {
			t.Fatalf("outbox: %+v", evs)
		}
		// The tenant's preregistration replaces the default one.
		challengeID(t, post(t, env, "/api/demo/customer?flow=preregistration", `{"email":"p@example.com"}`))
	})
}

func TestHeldChanges(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		postOK(t, env, "/api/demo/customer", `{"email":"held@example.com","firstName":"Jane"}`)
		t.Run("an anonymous update is applied when its challenge is completed", func(t *testing.T) {
			id := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"held@example.com","lastName":"Doe","loyaltyTier":"gold"}`))
			if c := stored(t, env, "demo", "held@example.com"); c.Profile["lastName"] != nil {
				t.Fatalf("applied before the challenge: %v", c.Profile)
			}
			tok := complete(t, env, "demo", id, "held@example.com")
			if me := customerOf(t, env, "demo", tok); me["lastName"] != "Doe" || me["firstName"] != "Jane" || me["loyaltyTier"] != "gold" {
				t.Fatalf("held change: %v", me)
			}
		})
		t.Run("an anonymous held change never sets an identifier", func(t *testing.T) {
			env.Clock.Advance(2 * time.Minute) // past the resend interval
			id := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"held@example.com","phoneNumber":"+33612345678","title":"Dr"}`))
			tok := complete(t, env, "demo", id, "held@example.com")
			if me := customerOf(t, env, "demo", tok); me["phoneNumber"] != nil || me["title"] != "Dr" {
				t.Fatalf("a stranger's phone number reached the account: %v", me)
			}
		})
		t.Run("a held change is dropped when its challenge expires", func(t *testing.T) {
			env.Clock.Advance(2 * time.Minute) // past the resend interval
			id := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"held@example.com","city":"Lyon"}`))
			code := env.Logs.Code("held@example.com")
			env.Clock.Advance(11 * time.Minute)
			mustProblem(t, exchange(t, env, "demo", id, code), http.StatusUnprocessableEntity)
			tok := env.SignIn(t, "demo", "held@example.com")
			if me := customerOf(t, env, "demo", tok); me["city"] == "Lyon" {
				t.Fatalf("an expired challenge's change was applied: %v", me)
			}
		})
	})
}

func TestVerifyBeforeApply(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "vba@example.com")
		r := post(t, env, "/api/demo/customer", `{"email":"vba.new@example.com","firstName":"Vera"}`, "Authorization", "Bearer "+tok)
		id := challengeID(t, r)
		if d := decodeObject(t, r)["destination"]; d != "v***@e***.com" || sentTo(env, "vba.new@example.com") == nil {
			t.Fatalf("the code goes to the new address: %v", d)
		}
		// The old address keeps working until then.
		if me := customerOf(t, env, "demo", tok); me["email"] != "vba@example.com" || me["emailVerified"] != true || me["firstName"] != nil {
			t.Fatalf("applied before verification: %v", me)
		}
		newTok := complete(t, env, "demo", id, "vba.new@example.com")
		noticed := false
		for _, m := range env.Logs.Lines() {
			if m["msg"] == "contact change notice sent" && m["to"] == "vba@example.com" && m["newContact"] == "v***@e***.com" {
				noticed = true
			}
		}
		if !noticed {
			t.Errorf("the old address was not told of the change")
		}
		me := customerOf(t, env, "demo", newTok)
		if me["email"] != "vba.new@example.com" || me["emailVerified"] != true || me["firstName"] != "Vera" {
			t.Fatalf("after verification: %v", me)
		}
		evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
		changed := 0
		for _, e := range evs {
			if e.Type == "Customer:ContactChanged" {
				changed++
				if !strings.Contains(e.Payload, `"previous":{"email":"vba@example.com"}`) {
					t.Errorf("the event does not name the old address: %s", e.Payload)
				}
			}
		}
		if changed != 1 {
			t.Fatalf("%d Customer:ContactChanged events", changed)
		}
		// A token holder cannot send a code to another account's address.
		env.SignIn(t, "demo", "other@example.com")
		env.Clock.Advance(2 * time.Minute)
		r = post(t, env, "/api/demo/customer", `{"email":"other@example.com"}`, "Authorization", "Bearer "+newTok)
		mustProblem(t, r, http.StatusPreconditionFailed)
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// A flow's emit step never writes a Customer:ContactChanged for a change
// that did not touch a contact: that event is written exactly when an email
// or phone number changes, with the contact it replaced. Found by an audit:
// a flow with emit: Customer:ContactChanged let any caller, anonymous for a
// new account or a token holder for their own, have the brand's receiver
// told that the account's contact changed, with "previous" naming the
// contact it still has.
func TestAFlowCannotClaimAContactChangeThatDidNotHappen(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo:
    flows:
      profile:
        - emit: Customer:ContactChanged
`)
		postOK(t, env, "/api/demo/customer?flow=profile", `{"email":"new.profile@example.com","firstName":"Nia"}`)
		tok := env.SignIn(t, "demo", "same.contact@example.com")
		postOK(t, env, "/api/demo/customer?flow=profile", `{"firstName":"Sam"}`, "Authorization", "Bearer "+tok)
		evs, _ := env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
		for _, e := range evs {
			if e.Type == "Customer:ContactChanged" {
				t.Errorf("a Customer:ContactChanged with no contact changed: %s", e.Payload)
			}
		}
		// A real change still writes it, once.
		r := post(t, env, "/api/demo/customer?flow=profile", `{"email":"moved.contact@example.com"}`, "Authorization", "Bearer "+tok)
		complete(t, env, "demo", challengeID(t, r), "moved.contact@example.com")
		evs, _ = env.App.Store.Events(ctx, store.EventQuery{Tenant: "demo"})
		changed := 0
		for _, e := range evs {
			if e.Type == "Customer:ContactChanged" {
				changed++
			}
		}
		if changed != 1 {
			t.Fatalf("%d Customer:ContactChanged events for one change of email", changed)
		}
	})
}

// A set step's list, object or number is the same value on every run: the
// flow runs again with nothing changed and no whenChanged event. Found by an
// audit: the account's stored list was compared with the flow's by ==, which
// panicked (500 on every run after the first), and a stored number
// (json.Number) never equalled the flow's (an int), so a "single"
// Customer:Activated went out on every run.
func TestAFlowSettingAListAnObjectOrANumberRunsAgainUnchanged(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  demo:
    flows:
      list:
        - set: {interests: [web, "store"]}
        - emit: Customer:Activated
          whenChanged: true
      object:
        - set: {prefs: {size: 42, tags: [a], news: {weekly: true}}}
        - emit: Customer:Activated
          whenChanged: true
      number:
        - set: {points: 10, ratio: 0.5, tiny: 0.0000001, huge: 1.0e+21}
        - emit: Customer:Activated
          whenChanged: true
`)
		tok := env.SignIn(t, "demo", "runs.twice@example.com")
		sub := subOf(t, tok)
		for i, flow := range []string{"list", "object", "number"} {
			for run := range 2 {
				postOK(t, env, "/api/demo/customer?flow="+flow, `{}`, "Authorization", "Bearer "+tok)
				if got := activatedEvents(t, env, "demo", sub); got != i+1 {
					t.Fatalf("flow %s, run %d: %d Customer:Activated events, want %d", flow, run+1, got, i+1)
				}
			}
		}
		me := customerOf(t, env, "demo", tok)
		want := map[string]any{"interests": []any{"web", "store"},
			"prefs":  map[string]any{"size": 42.0, "tags": []any{"a"}, "news": map[string]any{"weekly": true}},
			"points": 10.0, "ratio": 0.5, "tiny": 1e-7, "huge": 1e21}
		for k, v := range want {
			if !reflect.DeepEqual(me[k], v) {
				t.Errorf("%s = %#v, want %#v", k, me[k], v)
			}
		}
	})
}
