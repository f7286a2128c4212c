package server_test

import (
	"encoding/json"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/signature"
)

const gatewaySecret = "gateway-secret-0123456789abcdef0123"

// gateway is a local SMS gateway: Twilio's Messages API, or a tenant's
// signed webhook. It keeps the last code per number (and, as Twilio, every
// text), and fails or stalls on demand.
type gateway struct {
	srv   *httptest.Server
	mu    sync.Mutex
	codes map[string]string
	texts map[string][]string
	sent  int
	mode  string // "", "fail" (500), "stall" (no answer in time)
	// The webhook's: every message it took, by number, and why it refused
	// the bodies that broke its contract.
	messages map[string][]map[string]any
	broken   []string
}

// received is every webhook message the gateway took for a number, oldest first.
func (g *gateway) received(to string) []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.messages[to]...)
}

// refusedBodies is why the webhook gateway refused each body that broke its contract.
func (g *gateway) refusedBodies() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.broken...)
}

// all is every text sent to a number, oldest first.
func (g *gateway) all(to string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.texts[to]...)
}

// last is the newest text sent to a number, "" when none.
func (g *gateway) last(to string) string {
	all := g.all(to)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

func (g *gateway) set(mode string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mode = mode
}

func (g *gateway) code(to string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.codes[to]
}

func (g *gateway) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent
}

// answer applies the mode; false when the request must not be recorded.
func (g *gateway) answer(w http.ResponseWriter, r *http.Request) bool {
	g.mu.Lock()
	mode := g.mode
	g.mu.Unlock()
	switch mode {
	case "fail":
		http.Error(w, `{"code":30008,"message":"unknown error"}`, http.StatusInternalServerError)
		return false
	case "refuse":
		// Twilio's answer for a number that texted STOP: about the
		// recipient, not the gateway.
		http.Error(w, `{"code":21610,"message":"Attempt to send to unsubscribed recipient"}`, http.StatusBadRequest)
		return false
	case "stall":
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
		return false
	}
	return true
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func startTwilio(t *testing.T) *gateway { return startSlowTwilio(t, 0) }

// startSlowTwilio takes each message (records it, as Twilio queues it once
// the request is in) and answers only after delay: Twilio's own latency,
// which a caller can race.
func startSlowTwilio(t *testing.T, delay time.Duration) *gateway {
	g := &gateway{codes: map[string]string{}, texts: map[string][]string{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" || !ok || user != "AC123" || pass != "twilio-token" {
			http.Error(w, `{"code":20003}`, http.StatusUnauthorized)
			return
		}
		if !g.answer(w, r) {
			return
		}
		_ = r.ParseForm()
		to, body := r.PostForm.Get("To"), r.PostForm.Get("Body")
		g.mu.Lock()
		g.codes[to] = sixDigits.FindString(body)
		g.texts[to] = append(g.texts[to], body)
		g.sent++
		g.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return // customerd hung up; the message is queued all the same
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// startSMSWebhook is a tenant's gateway built to its contract: it refuses
// (400) every body that is not a GatewayMessage of openapi.yaml, in either
// reading of the document, as a gateway whose validator is generated from
// it does, and keeps each message it takes.
func startSMSWebhook(t *testing.T) *gateway {
	contract := gatewayContract(t)
	g := &gateway{codes: map[string]string{}, messages: map[string][]map[string]any{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := signature.Verify([]byte(gatewaySecret), r.Header.Get(signature.Header), body, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if !g.answer(w, r) {
			return
		}
		var m map[string]any
		err := json.Unmarshal(body, &m)
		if err == nil {
			err = contract(m)
		}
		code, hasCode := m["code"].(string)
		if text, _ := m["text"].(string); err == nil && hasCode && !strings.Contains(text, code) {
			err = fmt.Errorf("the text %q does not hold the code", text)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if err != nil {
			g.broken = append(g.broken, err.Error())
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		to, _ := m["to"].(string)
		if hasCode {
			g.codes[to] = code
		}
		g.messages[to] = append(g.messages[to], m)
		g.sent++
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// gatewayContract checks a body against openapi.yaml's GatewayMessage, read
// as OpenAPI 3.0 and as JSON Schema 2020-12 (the document is 3.1).
func gatewayContract(t *testing.T) func(body any) error {
	t.Helper()
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	schema := spec.Components.Schemas["GatewayMessage"].Value
	var mu sync.Mutex // the schema caches what it compiles
	return func(body any) error {
		mu.Lock()
		defer mu.Unlock()
		if err := schema.VisitJSON(body, openapi3.EnableFormatValidation()); err != nil {
			return fmt.Errorf("GatewayMessage (OpenAPI 3.0): %w", err)
		}
		if err := schema.VisitJSON(body, openapi3.EnableFormatValidation(), openapi3.EnableJSONSchema2020()); err != nil {
			return fmt.Errorf("GatewayMessage (JSON Schema 2020-12): %w", err)
		}
		return nil
	}
}

func askSMS(t *testing.T, env *apptest.Env, tenant, phone string) rawReply {
	t.Helper()
	return authenticate(t, env, tenant, "otp", map[string]any{"phoneNumber": phone})
}

// smsSignIn exchanges the code the gateway got for a 202 challenge.
func smsSignIn(t *testing.T, env *apptest.Env, tenant string, r rawReply, code string) string {
	t.Helper()
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("ask a code: %d %s", r.StatusCode, r.body)
	}
	ch := decodeObject(t, r)
	if ch["channel"] != "sms" || code == "" {
		t.Fatalf("challenge %v, code %q", ch, code)
	}
	return mustToken(t, exchange(t, env, tenant, ch["challengeId"].(string), code))
}

func TestSMSCodes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		twilio, hook := startTwilio(t), startSMSWebhook(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    senders:
      email: {type: log}
      sms:
        type: twilio
        countries: [FR, BE]
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 300ms, allowPrivateNetwork: true}
  brand:
    senders:
      sms:
        type: webhook
        webhook: {url: %q, secret: %q, timeout: 300ms, allowPrivateNetwork: true}
  budget:
    senders:
      sms: {type: log, dailyBudget: 2}
`, twilio.srv.URL, hook.srv.URL, gatewaySecret))

		t.Run("a code sent through twilio signs in and verifies the number", func(t *testing.T) {
			r := askSMS(t, env, "shop", "06 12 34 56 78")
			if d := decodeObject(t, r)["destination"]; d != "+33*******78" {
				t.Errorf("destination %v", d)
			}
			tok := smsSignIn(t, env, "shop", r, twilio.code("+33612345678"))
			p := tokenPayload(t, tok)
			me := customerOf(t, env, "shop", tok)
			if me["phoneNumber"] != "+33612345678" || me["phoneNumberVerified"] != true || p["idp"] != "otp" ||
				strings.Join(toStrings(p["amr"]), " ") != "otp sms" {
				t.Fatalf("account %v, claims %v", me, p)
			}
		})

		t.Run("a number outside the country allow-list is a 400 and nothing is sent", func(t *testing.T) {
			before := twilio.count()
			p := mustProblem(t, askSMS(t, env, "shop", "+44 7911 123456"), http.StatusBadRequest)
			if _, ok := problemFields(p)["phoneNumber"]; !ok {
				t.Errorf("problem does not name phoneNumber: %v", p)
			}
			if twilio.count() != before {
				t.Errorf("a code went to a refused country")
			}
		})

		for _, mode := range []string{"fail", "stall"} {
			t.Run("a gateway that does not deliver ("+mode+") is a 503 that leaves no code and no spent resend", func(t *testing.T) {
				phone := map[string]string{"fail": "+33612345670", "stall": "+33612345671"}[mode]
				twilio.set(mode)
				mustProblem(t, askSMS(t, env, "shop", phone), http.StatusServiceUnavailable)
				twilio.set("")
				// At once, not 60 s later: the failed send did not count.
				smsSignIn(t, env, "shop", askSMS(t, env, "shop", phone), twilio.code(phone))
			})
		}

		t.Run("the webhook gateway gets a signed message", func(t *testing.T) {
			r := askSMS(t, env, "brand", "+33612345672")
			smsSignIn(t, env, "brand", r, hook.code("+33612345672"))
			hook.set("fail")
			defer hook.set("")
			mustProblem(t, askSMS(t, env, "brand", "+33612345673"), http.StatusServiceUnavailable)
		})

		t.Run("beyond the daily budget the answer is a 429", func(t *testing.T) {
			for _, phone := range []string{"+33612345674", "+33612345675"} {
				if r := askSMS(t, env, "budget", phone); r.StatusCode != http.StatusAccepted {
					t.Fatalf("within the budget: %d %s", r.StatusCode, r.body)
				}
			}
			r := askSMS(t, env, "budget", "+33612345676")
			mustProblem(t, r, http.StatusTooManyRequests)
			if r.Header.Get("Retry-After") == "" {
				t.Errorf("no Retry-After")
			}
			if env.Logs.Sent("+33612345676") != 0 {
				t.Errorf("a code went out beyond the budget")
			}
		})
	})
}

// Under checkInPolicy partial (and a flow's link step) a code's message
// carries the link to the tenant's check-in page, by SMS as by email: it
// went out with the bare code, through Twilio and a tenant's gateway alike.
// The code stays usable alone.
func TestAnSMSCarriesTheCheckInLink(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		twilio, hook := startTwilio(t), startSMSWebhook(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    identifier: phoneNumber
    checkInPolicy: partial
    checkInPage: https://shop.example/check-in
    senders:
      sms:
        type: twilio
        countries: [FR]
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %q, timeout: 2s, allowPrivateNetwork: true}
  brand:
    identifier: phoneNumber
    checkInPolicy: partial
    checkInPage: https://brand.example/check-in
    senders:
      sms:
        type: webhook
        countries: [FR]
        webhook: {url: %q, secret: %q, timeout: 2s, allowPrivateNetwork: true}
`, twilio.srv.URL, hook.srv.URL, gatewaySecret))
		const phone = "+33612345631"
		// link is the page's link the message must carry, and its code.
		link := func(t *testing.T, page, tenant string) (string, string) {
			t.Helper()
			id := challengeID(t, post(t, env, "/api/"+tenant+"/customer", `{"phoneNumber":"`+phone+`"}`))
			code := map[string]string{"shop": twilio.code(phone), "brand": hook.code(phone)}[tenant]
			return page + "?challengeId=" + id + "&code=" + code, code
		}

		t.Run("through twilio", func(t *testing.T) {
			want, code := link(t, "https://shop.example/check-in", "shop")
			if text := twilio.last(phone); !strings.Contains(text, want) || !strings.Contains(text, ": "+code) {
				t.Fatalf("the text %q does not carry %s beside its code", text, want)
			}
		})
		t.Run("through the tenant's gateway", func(t *testing.T) {
			want, code := link(t, "https://brand.example/check-in", "brand")
			if broken := hook.refusedBodies(); len(broken) > 0 {
				t.Fatalf("the gateway refused what customerd posted: %q", broken)
			}
			got := hook.received(phone)
			m := got[len(got)-1]
			if text, _ := m["text"].(string); m["link"] != want || m["code"] != code || !strings.Contains(text, want) {
				t.Fatalf("the message %v does not carry %s beside its code", m, want)
			}
		})
	})
}
