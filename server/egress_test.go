package server_test

import (
	"context"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/providers/oidc/oidctest"
)

// collector is where a redirect would send customerd: it records anything
// that reaches it.
type collector struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string // method, URL, Referer and body of each request
}

func startCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.got = append(c.got, r.Method+" "+r.URL.String()+" referer="+r.Referer()+" "+string(body))
		c.mu.Unlock()
		_, _ = io.WriteString(w, `{"sid":"SM1","data":{"is_valid":true,"app_id":"1234","user_id":"fb-42"},"subject":"evil"}`)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// redirector answers every request with a redirect of status to the same
// path and query on target.
func redirector(t *testing.T, status int, target string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, target+r.URL.RequestURI(), status)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOutboundCallsFollowNoRedirect(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		elsewhere := startCollector(t)
		twilio := redirector(t, http.StatusTemporaryRedirect, elsewhere.srv.URL)
		gateway := redirector(t, http.StatusPermanentRedirect, elsewhere.srv.URL)
		graph := redirector(t, http.StatusFound, elsewhere.srv.URL)
		brand := redirector(t, http.StatusTemporaryRedirect, elsewhere.srv.URL)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    senders:
      email: {type: log}
      sms:
        type: twilio
        twilio: {accountSid: AC123, authToken: twilio-token, from: "+33700000000", baseURL: %[1]q, allowPrivateNetwork: true}
    providers:
      otp: {type: otp}
      facebook: {type: facebook, clientIds: ["1234"], appSecret: fb-secret, graphURL: %[2]q, allowPrivateNetwork: true}
      brand: {type: webhook, url: %[3]q, secret: %[4]q, allowPrivateNetwork: true}
  gw:
    senders:
      email: {type: log}
      sms:
        type: webhook
        webhook: {url: %[5]q, secret: %[4]q, allowPrivateNetwork: true}
`, twilio.URL, graph.URL, brand.URL, brandSecret, gateway.URL+"/send"))

		t.Run("a 307 from Twilio does not re-post the code and the phone number elsewhere", func(t *testing.T) {
			mustProblem(t, askSMS(t, env, "shop", "+33612345678"), http.StatusServiceUnavailable)
		})
		t.Run("a 308 from the SMS gateway does not re-post the message elsewhere", func(t *testing.T) {
			mustProblem(t, askSMS(t, env, "gw", "+33612345679"), http.StatusServiceUnavailable)
		})
		t.Run("a 302 from the Graph API does not carry the app secret elsewhere", func(t *testing.T) {
			mustProblem(t, authenticate(t, env, "shop", "facebook", map[string]any{"accessToken": "good-token"}), http.StatusServiceUnavailable)
		})
		t.Run("a 307 from a brand's endpoint does not re-post the credentials elsewhere", func(t *testing.T) {
			mustProblem(t, authenticate(t, env, "shop", "brand", map[string]any{"login": "ada", "password": "right"}), http.StatusServiceUnavailable)
		})
		if got := elsewhere.requests(); len(got) != 0 {
			t.Fatalf("a redirect was followed: %q", got)
		}
		for _, secret := range []string{"1234|fb-secret", "1234%7Cfb-secret", "twilio-token"} {
			if strings.Contains(env.Logs.String(), secret) {
				t.Errorf("the log holds %q", secret)
			}
		}
	})
}

func TestADiscoveredJWKSIsOnTheIssuersHost(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, other := oidctest.New(t), oidctest.New(t)
		env := apptest.Start(t, dbURL, fmt.Sprintf(`
tenants:
  shop:
    providers:
      corp: {type: oidc, clientIds: [corp-app], issuer: %[1]q, allowPrivateNetwork: true}
  shop2:
    providers:
      corp: {type: oidc, clientIds: [corp-app], issuer: %[1]q, allowPrivateNetwork: true}
`, iss.URL()))
		signIn := func() rawReply {
			return authenticate(t, env, "shop", "corp", map[string]any{"idToken": other.Key("RS256").Sign(
				map[string]any{"iss": iss.URL(), "aud": "corp-app", "sub": "u1", "iat": 1, "exp": 1 << 40})})
		}
		for _, jwksURI := range []string{other.JWKSURL(), "http://keys.attacker.example/jwks", strings.Replace(iss.JWKSURL(), "127.0.0.1", "localhost", 1)} {
			t.Run("jwks_uri "+jwksURI+" is refused", func(t *testing.T) {
				iss.Announce(jwksURI)
				mustProblem(t, signIn(), http.StatusServiceUnavailable)
				if n := other.Fetches.Load(); n != 0 {
					t.Fatalf("the other host's keys were fetched %d times", n)
				}
			})
		}
		// Another tenant's provider: shop's waits a while before it tries a
		// failed discovery again.
		t.Run("a jwks_uri on the issuer's host is used", func(t *testing.T) {
			iss.Announce("")
			mustToken(t, authenticate(t, env, "shop2", "corp", map[string]any{"idToken": iss.Key("ES256").Sign(iss.Claims("corp-app", "u2"))}))
		})
	})
}

func TestALocalServiceMustSayItIsLocal(t *testing.T) {
	local := startCollector(t).srv.URL // http://127.0.0.1:PORT
	const secret = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct{ name, yaml, setting string }{
		{"a brand's endpoint", "providers:\n      brand: {type: webhook, url: '" + local + "', secret: " + secret + "}", "tenants.shop.providers.brand.url"},
		{"a brand's endpoint over https", "providers:\n      brand: {type: webhook, url: '" + strings.Replace(local, "http:", "https:", 1) + "', secret: " + secret + "}", "tenants.shop.providers.brand.url"},
		{"an issuer's JWKS", "providers:\n      google: {type: google, clientIds: [a], issuer: '" + local + "', jwksUrl: '" + local + "/jwks'}", "tenants.shop.providers.google.jwksUrl"},
		{"an issuer to discover", "providers:\n      corp: {type: oidc, clientIds: [a], issuer: '" + local + "'}", "tenants.shop.providers.corp.issuer"},
		{"the Graph API", "providers:\n      facebook: {type: facebook, clientIds: [a], appSecret: s, graphURL: '" + local + "'}", "tenants.shop.providers.facebook.graphURL"},
		{"Twilio", "senders:\n      sms: {type: twilio, twilio: {accountSid: AC1, authToken: t, from: '+33700000000', baseURL: '" + local + "'}}", "tenants.shop.senders.sms.twilio.baseURL"},
		{"an SMS gateway", "senders:\n      sms: {type: webhook, webhook: {url: '" + local + "', secret: " + secret + "}}", "tenants.shop.senders.sms.webhook.url"},
		{"an SMTP relay", "senders:\n      email: {type: smtp, smtp: {host: 127.0.0.1, from: a@shop.example}}", "tenants.shop.senders.email.smtp.host"},
		{"an event webhook", "webhooks:\n      endpoints: [{url: '" + local + "', secret: " + secret + "}]", "tenants.shop.webhooks.endpoints[0].url"},
	} {
		t.Run(c.name+" on loopback without allowPrivateNetwork stops start-up", func(t *testing.T) {
			err := startUp(t, "tenants:\n  shop:\n    "+c.yaml+"\n")
			if err == nil || !strings.Contains(err.Error(), c.setting) || !strings.Contains(err.Error(), "allowPrivateNetwork: true") {
				t.Fatalf("start-up: %v; want an error naming %s and allowPrivateNetwork", err, c.setting)
			}
		})
	}
}

// startUp loads configYAML and wires customerd on a fresh SQLite as main
// would, and returns the first error.
func startUp(t *testing.T, configYAML string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "customerd.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CUSTOMERD_DATABASE_URL": "sqlite://" + t.TempDir() + "/customerd.db", "CUSTOMERD_SECRET": apptest.Secret}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = a.Close()
	}
	return err
}
