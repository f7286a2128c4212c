package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/config"
)

func load(t *testing.T, yaml string, env map[string]string) (*config.Config, error) {
	t.Helper()
	path := ""
	if yaml != "" {
		path = filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return config.Load(path, func(k string) string { return env[k] })
}

func TestDefaults(t *testing.T) {
	c, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	demo := c.Tenants["demo"]
	switch {
	case c.Addr != ":8080", c.Database.URL != "sqlite://./data/customerd.db", c.SecretFile != "./data/secret",
		c.PublicURL != "http://localhost:8080", len(c.Tenants) != 1, demo == nil:
		t.Fatalf("defaults: %+v", c)
	case demo.DefaultCountry != "FR", demo.DefaultLanguage != "fr", demo.PhoneRegion != "FR",
		demo.TokenLifetime != 24*time.Hour, demo.Senders["email"].Type != "log", demo.Providers["otp"].Type != "otp",
		demo.OTP.CodeLifetime != 10*time.Minute, demo.OTP.MaxAttempts != 5, demo.OTP.ResendInterval != time.Minute,
		demo.OTP.MaxFailuresPerDay != 100:
		t.Fatalf("demo tenant: %+v", demo)
	}
}

func TestEnvironmentOverridesTheFile(t *testing.T) {
	c, err := load(t, "addr: ':9000'\ndatabase:\n  url: sqlite://a.db\n", map[string]string{
		"CUSTOMERD_ADDR": "127.0.0.1:7000", "CUSTOMERD_DATABASE_URL": "postgres://u@h/db", "CUSTOMERD_SECRET": strings.Repeat("s", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7000" || c.Database.URL != "postgres://u@h/db" || c.Secret != strings.Repeat("s", 32) {
		t.Fatalf("overrides: %+v", c)
	}
}

func TestTheExampleFileLoads(t *testing.T) {
	if _, err := config.Load("../customerd.example.yaml", func(string) string { return "" }); err != nil {
		t.Fatalf("customerd.example.yaml: %v", err)
	}
}

func TestABadSettingIsNamed(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown setting", "adr: ':1'\n", "field adr not found"},
		{"bad addr", "addr: 'nope'\n", "addr:"},
		{"bad database url", "database:\n  url: mysql://x\n", "database.url"},
		{"short secret", "secret: short\n", "secret:"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"bad tenant id", "tenants:\n  Acme!: {}\n", "tenants.Acme!"},
		{"bad country", "tenants:\n  acme:\n    defaultCountry: France\n", "tenants.acme.defaultCountry"},
		{"bad language", "tenants:\n  acme:\n    defaultLanguage: '12'\n", "tenants.acme.defaultLanguage"},
		{"bad identifier", "tenants:\n  acme:\n    identifier: login\n", "tenants.acme.identifier"},
		{"bad token lifetime", "tenants:\n  acme:\n    tokenLifetime: 1s\n", "tenants.acme.tokenLifetime"},
		{"bad sender type", "tenants:\n  acme:\n    senders:\n      email:\n        type: pigeon\n", "tenants.acme.senders.email.type"},
		{"smtp without host", "tenants:\n  acme:\n    senders:\n      email:\n        type: smtp\n        smtp:\n          from: a@b.c\n", "tenants.acme.senders.email.smtp.host"},
		{"sms over smtp", "tenants:\n  acme:\n    senders:\n      sms:\n        type: smtp\n        smtp:\n          host: h\n          from: a@b.c\n", "tenants.acme.senders.sms.type"},
		{"email over twilio", "tenants:\n  acme:\n    senders:\n      email:\n        type: twilio\n        twilio:\n          accountSid: a\n          authToken: b\n          from: '+33600000000'\n", "tenants.acme.senders.email.type"},
		{"twilio without token", "tenants:\n  acme:\n    senders:\n      sms:\n        type: twilio\n        twilio:\n          accountSid: a\n          from: '+33600000000'\n", "tenants.acme.senders.sms.twilio.authToken"},
		{"webhook sender over http", "tenants:\n  acme:\n    senders:\n      sms:\n        type: webhook\n        webhook:\n          url: http://gateway.example/sms\n          secret: 0123456789abcdef0123456789abcdef\n", "tenants.acme.senders.sms.webhook.url"},
		{"bad sms country", "tenants:\n  acme:\n    senders:\n      sms:\n        type: log\n        countries: [France]\n", "tenants.acme.senders.sms.countries[0]"},
		{"countries on email", "tenants:\n  acme:\n    senders:\n      email:\n        type: log\n        countries: [FR]\n", "tenants.acme.senders.email.countries"},
		{"unknown channel", "tenants:\n  acme:\n    senders:\n      fax:\n        type: log\n", "tenants.acme.senders.fax"},
		{"provider without type", "tenants:\n  acme:\n    providers:\n      otp: {}\n", "tenants.acme.providers.otp.type"},
		{"bad code lifetime", "tenants:\n  acme:\n    otp:\n      codeLifetime: 2h\n", "tenants.acme.otp.codeLifetime"},
		{"bad attempts", "tenants:\n  acme:\n    otp:\n      maxAttempts: 50\n", "tenants.acme.otp.maxAttempts"},
		{"bad public url", "publicURL: ftp://x\n", "publicURL"},
		{"bad check-in policy", "tenants:\n  acme:\n    checkInPolicy: some\n", "tenants.acme.checkInPolicy"},
		{"partial check-in without a page", "tenants:\n  acme:\n    checkInPolicy: partial\n", "tenants.acme.checkInPage"},
		{"a bad flow step names the flow and the step", "tenants:\n  acme:\n    flows:\n      signup:\n        - verified: true\n        - emit: Customer:Gone\n",
			`tenants.acme.flows.signup.steps[1]: emit: unknown event type "Customer:Gone"`},
		{"an unknown step", "tenants:\n  acme:\n    flows:\n      signup:\n        - teleport: true\n", "field teleport not found"},
		{"a bad override of a default flow", "tenants:\n  acme:\n    flows:\n      activation:\n        - set: {id: x}\n", "tenants.acme.flows.activation.steps[0]: set.id"},
		{"a webhook without a secret", "tenants:\n  acme:\n    webhooks:\n      endpoints: [{url: 'https://crm.example/hook'}]\n", "tenants.acme.webhooks.endpoints[0].secret"},
		{"a webhook that is not http", "tenants:\n  acme:\n    webhooks:\n      endpoints: [{url: 'ftp://x', secret: 0123456789abcdef}]\n", "tenants.acme.webhooks.endpoints[0].url"},
		{"a webhook for an unknown event", "tenants:\n  acme:\n    webhooks:\n      endpoints: [{url: 'https://x.example', secret: 0123456789abcdef, events: [Customer:Gone]}]\n", "tenants.acme.webhooks.endpoints[0].events"},
		{"a lease shorter than a delivery", "events:\n  lease: 1s\n  timeout: 5s\n", "events.lease"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}
