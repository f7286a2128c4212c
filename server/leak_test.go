package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/store/storetest"
)

// Outside services that fail quoting what they were sent (a gateway's 500
// echoing the request, a brand endpoint's malformed answer holding the
// password it got, a webhook receiver's 500 echoing the event), forged and
// tampered tokens, the admin API writing secrets: no code, token, secret or
// shopper's contact reaches a log line at info level or above, and no
// secret reaches an answer. Held when the twelfth audit tried it.
func TestNothingSecretReachesTheLogOrAnAnswer(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		const (
			twilioToken  = "twilio-token-LEAKCANARY-1"
			brandSecret  = "brand-secret-LEAKCANARY-0123456789abcdef"
			hookSecret   = "hook-secret-LEAKCANARY-0123456789"
			memberPass   = "member-password-LEAKCANARY"
			smtpPassword = "smtp-password-LEAKCANARY"
			phone, email = "+33612345678", "leak.owner@example.com"
		)
		echo := func(w http.ResponseWriter, r *http.Request, status int) {
			body, _ := io.ReadAll(r.Body)
			http.Error(w, fmt.Sprintf(`{"code":30008,"message":"%s %s %s"}`, r.Header.Get("Authorization"), r.URL, body), status)
		}
		failing := false
		var codes []string
		twilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, pass, _ := r.BasicAuth(); pass != twilioToken || failing {
				echo(w, r, http.StatusInternalServerError)
				return
			}
			_ = r.ParseForm()
			codes = append(codes, sixDigits.FindString(r.PostForm.Get("Body")))
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
		}))
		t.Cleanup(twilio.Close)
		brand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			switch {
			case strings.Contains(string(body), "malformed"):
				_, _ = fmt.Fprintf(w, `{"subject": %s`, body)
			case strings.Contains(string(body), "refused"):
				http.Error(w, string(body), http.StatusUnauthorized)
			default:
				http.Error(w, string(body), http.StatusBadGateway)
			}
		}))
		t.Cleanup(brand.Close)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { echo(w, r, http.StatusInternalServerError) }))
		t.Cleanup(hook.Close)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    identifier: phoneNumber
    senders:
      sms:
        type: twilio
        countries: [FR]
        twilio: {accountSid: AC123, authToken: %q, from: "+33700000000", baseURL: %q, timeout: 2s, allowPrivateNetwork: true}
    providers:
      otp: {type: otp}
      brand: {type: webhook, url: %q, secret: %q, allowPrivateNetwork: true}
    webhooks:
      retryBase: 1h
      retryMax: 1h
      endpoints:
        - {url: %q, secret: %q, allowPrivateNetwork: true}
`, twilioToken, twilio.URL, brand.URL, brandSecret, hook.URL, hookSecret))
		env.StartEvents()

		var answers []string
		keep := func(r rawReply) rawReply { answers = append(answers, string(r.body)); return r }
		ask := keep(askSMS(t, env, "shop", phone))
		tok := smsSignIn(t, env, "shop", ask, codes[len(codes)-1])
		keep(rawCall(t, env, http.MethodPost, "/api/shop/customer", strings.NewReader(`{"email":"`+email+`"}`), withToken(tok)...))
		failing = true
		env.Clock.Advance(61 * time.Second)
		if r := keep(askSMS(t, env, "shop", phone)); r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a code the gateway fails to send: %d %s", r.StatusCode, r.body)
		}
		for _, body := range []string{"malformed", "refused", "down"} {
			keep(authenticate(t, env, "shop", "brand", map[string]string{"login": body, "password": memberPass}))
		}
		parts := strings.Split(tok, ".")
		for _, bad := range []string{tok + "x", parts[0] + "." + parts[1] + "x." + parts[2], parts[0] + "." + parts[1] + "."} {
			keep(rawCall(t, env, http.MethodGet, "/api/shop/customer", nil, withToken(bad)...))
		}
		keep(rawCall(t, env, http.MethodGet, "/api/shop/customer?code="+codes[0]+"&access_token="+tok, nil))

		a := env.Admin(t)
		key := a.Key(t, "*")
		adm := a.Client(t, key)
		var s adminclient.TenantSettings
		if err := json.Unmarshal([]byte(`{"senders": {"email": {"type": "smtp", "smtp": {"host": "smtp.example.com", "port": 587, "username": "u",
			"password": "`+smtpPassword+`", "from": "no-reply@example.com"}}}, "webhooks": {"endpoints": [{"url": "https://hooks.example.com/x", "secret": "`+hookSecret+`"}]}}`), &s); err != nil {
			t.Fatal(err)
		}
		created, err := adm.CreateTenantWithResponse(ctx, adminclient.NewTenant{Id: "acme", Settings: s})
		if err != nil || created.StatusCode() != http.StatusCreated {
			t.Fatalf("create: %v %s", err, created.Body)
		}
		answers = append(answers, string(created.Body))
		got, _ := adm.GetTenantWithResponse(ctx, "acme")
		list, _ := adm.ListTenantsWithResponse(ctx, nil)
		audit, _ := adm.ListAuditEntriesWithResponse(ctx, nil)
		export, _ := adm.ExportCustomerWithResponse(ctx, "shop", subOf(t, tok))
		answers = append(answers, string(got.Body), string(list.Body), string(audit.Body), string(export.Body))
		waitFor(t, "a failed delivery", func() bool { return strings.Contains(env.Logs.String(), "webhook delivery failed") })

		secrets := append([]string{twilioToken, brandSecret, hookSecret, memberPass, smtpPassword, apptest.Secret, key, tok, parts[2]}, codes...)
		for _, ans := range answers {
			for _, v := range secrets {
				if strings.Contains(ans, v) {
					t.Errorf("an answer holds %q: %s", v, ans)
				}
			}
		}
		for _, l := range env.Logs.Lines() {
			if l["level"] == "DEBUG" {
				continue
			}
			line, _ := json.Marshal(l)
			for _, v := range append(secrets, phone, email, "33612345678") {
				if strings.Contains(string(line), v) {
					t.Errorf("a log line holds %q: %s", v, line)
				}
			}
		}
	})
}
