package config_test

import (
	"errors"
	"fmt"
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
		c.PublicURL != "http://localhost:8080", len(c.Tenants) != 1, demo == nil, !c.Demo, c.MetricsAddr != "127.0.0.1:9464":
		t.Fatalf("defaults: %+v", c)
	case demo.DefaultCountry != "FR", demo.DefaultLanguage != "fr", demo.PhoneRegion != "FR",
		demo.TokenLifetime != 24*time.Hour, demo.Senders["email"].Type != "log", demo.Providers["otp"].Type != "otp",
		demo.OTP.CodeLifetime != 10*time.Minute, demo.OTP.MaxAttempts != 5, demo.OTP.ResendInterval != time.Minute,
		demo.OTP.MaxFailuresPerDay != 100:
		t.Fatalf("demo tenant: %+v", demo)
	}
}

func TestEnvironmentOverridesTheFile(t *testing.T) {
	c, err := load(t, "addr: ':9000'\ndatabase:\n  url: sqlite://a.db\nlog:\n  level: warn\ntenants:\n  acme: {}\n", map[string]string{
		"CUSTOMERD_ADDR": "127.0.0.1:7000", "CUSTOMERD_DATABASE_URL": "postgres://u@h/db", "CUSTOMERD_SECRET": strings.Repeat("s3cr3t-key", 4),
		"CUSTOMERD_METRICS_ADDR": "127.0.0.1:0", "CUSTOMERD_LOG_LEVEL": "debug", "CUSTOMERD_LOG_FORMAT": "text"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7000" || c.Database.URL != "postgres://u@h/db" || c.Secret != strings.Repeat("s3cr3t-key", 4) ||
		c.MetricsAddr != "127.0.0.1:0" || c.Log.Level != "debug" || c.Log.Format != "text" {
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
		{"unknown setting", "adr: ':1'\n", "adr: unknown setting, did you mean addr?"},
		{"bad addr", "addr: 'nope'\n", "addr:"},
		{"bad database url", "database:\n  url: mysql://x\n", `database.url: "mysql://x" is not postgres://… or sqlite://PATH`},
		{"a database password is never shown", "database:\n  url: 'mysql://u:hunter2@h/db'\n", `"mysql://u:xxxxx@h/db"`},
		{"a PostgreSQL URL pgx cannot read", "database:\n  url: 'postgres://u:hunter2@db:54x2/app'\n", `database.url: (an unparsable URL): invalid port ":54x2" after host`},
		{"an sslmode pgx does not know", "database:\n  url: 'postgres://db/app?sslmode=required&password=hunter2'\n", "database.url: postgres://db/app?password=xxxxx&sslmode=required: failed to configure TLS (sslmode is invalid)"},
		{"a password that is not percent-encoded", "database:\n  url: 'postgres://u:hun%ter2@db/app'\n", "database.url: (an unparsable URL): not a URL (a character of the password, say, that is not percent-encoded?)"},
		{"a port pgx cannot read", "database:\n  url: 'postgres://u:hunter2@db:99999/app'\n", "database.url: postgres://u:xxxxx@db:99999/app: invalid port"},
		{"short secret", "secret: short\n", "secret:"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"a garbage collector target too low", "gcPercent: 10\n", "gcPercent: 10: must be at least 25"},
		{"a negative pool", "database:\n  maxOpenConns: -1\n", "database.maxOpenConns: -1: must be at least 1 (or 0 for the database's default)"},
		{"a memory limit below what customerd holds", "memoryLimitMiB: 16\n", "memoryLimitMiB: 16: must be 0 (no limit) or between 64 and 1073741824"},
		{"a negative memory limit", "memoryLimitMiB: -1\n", "memoryLimitMiB: -1: must be 0 (no limit) or between 64 and 1073741824"},
		{"a negative mapping", "database:\n  sqliteMmapMiB: -1\n", "database.sqliteMmapMiB: -1: must be between 0 (no mapping) and 2047"},
		{"a mapping larger than SQLite's", "database:\n  sqliteMmapMiB: 4096\n", "database.sqliteMmapMiB: 4096: must be between 0 (no mapping) and 2047"},
		{"bad tenant id", "tenants:\n  Acme!: {}\n", "tenants.Acme!"},
		{"bad country", "tenants:\n  acme:\n    defaultCountry: France\n", "tenants.acme.defaultCountry"},
		{"bad language", "tenants:\n  acme:\n    defaultLanguage: '12'\n", "tenants.acme.defaultLanguage"},
		{"bad identifier", "tenants:\n  acme:\n    identifier: login\n", "tenants.acme.identifier"},
		{"bad token lifetime", "tenants:\n  acme:\n    tokenLifetime: 1s\n", "tenants.acme.tokenLifetime"},
		{"bad sender type", "tenants:\n  acme:\n    senders:\n      email:\n        type: pigeon\n", "tenants.acme.senders.email.type"},
		{"smtp without host", "tenants:\n  acme:\n    senders:\n      email:\n        type: smtp\n        smtp:\n          from: a@b.c\n", "tenants.acme.senders.email.smtp.host"},
		{"sms over smtp", "tenants:\n  acme:\n    senders:\n      sms:\n        type: smtp\n        smtp:\n          host: h\n          from: a@b.c\n", "tenants.acme.senders.sms.type"},
		{"email over twilio", "tenants:\n  acme:\n    senders:\n      email:\n        type: twilio\n        twilio:\n          accountSid: a\n          authToken: b\n          from: '+33600000000'\n", "tenants.acme.senders.email.type"},
		{"a twilio timeout above 30s", "tenants:\n  acme:\n    senders:\n      sms:\n        type: twilio\n        twilio:\n          accountSid: a\n          authToken: b\n          from: '+33600000000'\n          timeout: 5m\n", "tenants.acme.senders.sms.twilio.timeout: 5m0s is above 30s"},
		{"an sms gateway timeout above 30s", "tenants:\n  acme:\n    senders:\n      sms:\n        type: webhook\n        webhook:\n          url: https://sms.acme.example/send\n          secret: 0123456789abcdef0123456789abcdef\n          timeout: 1h\n", "tenants.acme.senders.sms.webhook.timeout: 1h0m0s is above 30s"},
		{"twilio without token", "tenants:\n  acme:\n    senders:\n      sms:\n        type: twilio\n        twilio:\n          accountSid: a\n          from: '+33600000000'\n", "tenants.acme.senders.sms.twilio.authToken"},
		{"webhook sender over http", "tenants:\n  acme:\n    senders:\n      sms:\n        type: webhook\n        webhook:\n          url: http://gateway.example/sms\n          secret: 0123456789abcdef0123456789abcdef\n", "tenants.acme.senders.sms.webhook.url"},
		{"bad sms country", "tenants:\n  acme:\n    senders:\n      sms:\n        type: log\n        countries: [France]\n", "tenants.acme.senders.sms.countries[0]"},
		{"countries on email", "tenants:\n  acme:\n    senders:\n      email:\n        type: log\n        countries: [FR]\n", "tenants.acme.senders.email.countries"},
		{"unknown channel", "tenants:\n  acme:\n    senders:\n      fax:\n        type: log\n", "tenants.acme.senders.fax"},
		{"provider without type", "tenants:\n  acme:\n    providers:\n      otp: {}\n", "tenants.acme.providers.otp.type"},
		{"bad code lifetime", "tenants:\n  acme:\n    otp:\n      codeLifetime: 2h\n", "tenants.acme.otp.codeLifetime"},
		{"bad attempts", "tenants:\n  acme:\n    otp:\n      maxAttempts: 50\n", "tenants.acme.otp.maxAttempts"},
		{"a day of wrong codes that guesses any code", "tenants:\n  acme:\n    otp:\n      maxFailuresPerDay: 4294967296\n", "tenants.acme.otp.maxFailuresPerDay: 4294967296: must be between 1 and 100000"},
		// The janitor purges throttles a day old, so a longer interval held less than it said.
		{"a resend interval the purge would cut short", "tenants:\n  acme:\n    otp:\n      resendInterval: 48h\n", "tenants.acme.otp.resendInterval"},
		{"bad public url", "publicURL: ftp://x\n", "publicURL"},
		{"bad check-in policy", "tenants:\n  acme:\n    checkInPolicy: some\n", "tenants.acme.checkInPolicy"},
		{"partial check-in without a page", "tenants:\n  acme:\n    checkInPolicy: partial\n", "tenants.acme.checkInPage"},
		{"a bad flow step names the flow and the step", "tenants:\n  acme:\n    flows:\n      signup:\n        - verified: true\n        - emit: Customer:Gone\n",
			`tenants.acme.flows.signup.steps[1]: emit: unknown event type "Customer:Gone"`},
		{"emitting the event every change writes", "tenants:\n  acme:\n    flows:\n      signup:\n        - emit: Customer:Upserted\n",
			"tenants.acme.flows.signup.steps[0]: emit: every create and update writes Customer:Upserted already"},
		{"an unknown step", "tenants:\n  acme:\n    flows:\n      signup:\n        - teleport: true\n", "tenants.acme.flows.signup[0].teleport: unknown setting, have ["},
		// A flow may make the tenant's check-in policy stricter, never looser.
		{"a flow's check-in looser than the tenant's", "tenants:\n  acme:\n    checkInPolicy: full\n    flows:\n      preregistration:\n        - checkIn: none\n",
			"tenants.acme.flows.preregistration.steps[0]: checkIn: none would tell anonymous callers who has an account"},
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
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %v shows the password", err)
			}
		})
	}
}

func TestEveryProblemIsNamedWithItsSource(t *testing.T) {
	yaml := `addr: ':8080'
database:
  url: mysql://x
tenants:
  acme:
    defaultCountry: FR
    defaultCountyr: FR
    tokenLifetime: 30
    otp:
      maxAttempts: many
    senders:
      email:
        type: smtp
        smtp:
          from: nobody
`
	_, err := load(t, yaml, map[string]string{"CUSTOMERD_SECRET": "short"})
	var problems config.Problems
	if !errors.As(err, &problems) {
		t.Fatalf("error %v, want Problems", err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	// Each problem once, with its line or its variable; a bad value is not judged again.
	want := []string{
		`tenants.acme.defaultCountyr: unknown setting, did you mean defaultCountry? (%s:7)`,
		`tenants.acme.tokenLifetime: "30" is not a duration such as 30s, 10m or 24h (%s:8)`,
		`tenants.acme.otp.maxAttempts: "many" is not a whole number (%s:10)`,
		`database.url: "mysql://x" is not postgres://… or sqlite://PATH (%s:3)`,
		`CUSTOMERD_SECRET: must be at least 32 characters (openssl rand -hex 32 makes one)`,
		`tenants.acme.senders.email.smtp.host: required (%s:14)`,
	}
	file := strings.TrimSuffix(problems[0].Source, ":7")
	for i := range want {
		if strings.Contains(want[i], "%s") {
			want[i] = fmt.Sprintf(want[i], file)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAFileWithoutTenantsIsRefused(t *testing.T) {
	for _, yaml := range []string{"tenants: {}\n", "addr: ':8080'\n", "\n"} {
		_, err := load(t, yaml, nil)
		if err == nil || !strings.Contains(err.Error(), "tenants: none declared") {
			t.Errorf("%q: error %v, want tenants: none declared", yaml, err)
		}
	}
	c, err := load(t, "tenants:\n  acme:\n", nil)
	if err != nil || c.Demo || len(c.Tenants) != 1 || c.Tenants["acme"].Senders["email"].Type != "log" {
		t.Fatalf("a tenant with nothing under it: %v %+v", err, c)
	}
}

func TestChecksAddTheirProblemsWithSources(t *testing.T) {
	check := func(c *config.Config) config.Problems {
		return config.Problems{{Path: "tenants.acme.providers.google.clientIds", Message: "required"}}
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("tenants:\n  acme:\n    providers:\n      google:\n        type: google\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path, func(string) string { return "" }, check)
	if err == nil || !strings.Contains(err.Error(), "tenants.acme.providers.google.clientIds: required ("+path+":4)") {
		t.Fatalf("error %v", err)
	}
}

// Found by an audit: a password holding a /, ? or # that is not
// percent-encoded ends the URL's user information early as Go reads it (and
// pgx, which reads it so), so the password's beginning was shown as a host
// or a port, and its rest as a path or a fragment, by config check and in
// start-up's errors. Such a URL is refused, naming none of it.
func TestAPasswordThatEndsTheUserInformationEarlyIsNotShown(t *testing.T) {
	for _, u := range []string{
		"postgres://u:hunter2/tail@db/app",
		"postgres://u:hunter2?tail@db/app",
		"postgres://u:hunter2#tail@db/app",
		"postgres://u:/hunter2tail@db/app",
		"postgres://u:2024/hunter2tail@db/app",
		"postgres://db/app?password=hunter2#tail",
		"postgres://u:hunter2/c=tail@db/app",
		// Found by a review: an @ in the password before its / or ?.
		"postgres://u:hunter2@x/tail@db/app",
		"postgres://u:hunter2@x?tail@db/app",
	} {
		if got := (config.Database{URL: u}).Redacted(); strings.Contains(got, "hunter2") || strings.Contains(got, "tail") {
			t.Errorf("Redacted(%q) = %q: the password shows", u, got)
		}
		for _, env := range []map[string]string{nil, {"CUSTOMERD_DATABASE_URL": u}} {
			yaml := "tenants:\n  acme: {}\n"
			if env == nil {
				yaml = "database:\n  url: '" + u + "'\n" + yaml
			}
			_, err := load(t, yaml, env)
			if err == nil {
				t.Errorf("%q was taken: pgx reads another password, host or database than written", u)
			} else if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "tail") {
				t.Errorf("%q: %v", u, err)
			}
		}
	}
}

// pgx (like libpq) reads a password from the URL's query as well as from its
// user info: both stay out of logs, errors and `config check`. Found by an
// audit: the query's were shown.
func TestTheDatabasePasswordInTheQueryIsRedacted(t *testing.T) {
	for _, u := range []string{
		"postgres://customerd@db:5432/customerd?sslmode=disable&password=hunter2-db-password",
		"postgresql://customerd@db/customerd?password=hunter2-db-password",
		"postgres://customerd@db/customerd?sslmode=verify-full&sslkey=/k.pem&sslpassword=hunter2-key-password",
		// Found by the twelfth audit: a libpq key/value connection string,
		// which customerd refuses quoting it, and a query pair Go's parser
		// drops (a semicolon) or spells in capitals were shown as written.
		"host=db user=customerd password=hunter2-db-password dbname=customerd",
		"host=db password = 'hunter2 # db password' dbname=customerd",
		"postgres://customerd@db/customerd?password=hunter2-db-password;x",
		"postgres://customerd@db/customerd?PASSWORD=hunter2-db-password",
	} {
		got := config.Database{URL: u}.Redacted()
		if strings.Contains(got, "hunter2") {
			t.Errorf("Redacted(%q) = %q: the password shows", u, got)
		}
	}
	if _, err := load(t, "database:\n  url: 'host=db password=hunter2-db-password'\n", nil); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a key/value connection string: %v", err)
	}
	c, err := load(t, "tenants:\n  acme: {}\n", map[string]string{"CUSTOMERD_DATABASE_URL": "postgres://customerd@db/customerd?password=hunter2-db-password"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.Database.Redacted(), "hunter2") {
		t.Errorf("start-up and config check show %q", c.Database.Redacted())
	}
}
