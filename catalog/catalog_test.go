package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

var ctx = context.Background()

func open(t *testing.T, url string) (*catalog.Catalog, store.Store) {
	st := storetest.Open(t, url)
	c, err := catalog.New(st.(catalog.Store), make([]byte, 32), func(id string, tc *config.Tenant) error {
		if ps := tc.Problems(id); len(ps) > 0 {
			return ps
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

func doc(t *testing.T, js string) map[string]any {
	d, err := config.ParseDocument([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const smtp = `{"senders": {"email": {"type": "smtp", "smtp": {"host": "mail.acme.example", "from": "no-reply@acme.example",
	"username": "acme", "password": "smtp-password-1"}}},
	"webhooks": {"endpoints": [{"url": "https://crm.acme.example/a", "secret": "webhook-secret-aaaa"},
	                           {"url": "https://crm.acme.example/b", "secret": "webhook-secret-bbbb"}]}}`

func TestSecretsAreKeptApartAndNeverShown(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			c, st := open(t, b.URL(t))
			e, err := c.Create(ctx, "acme", doc(t, smtp))
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"senders.email.smtp.password", "webhooks.endpoints[0].secret", "webhooks.endpoints[1].secret"}
			if !slices.Equal(e.Secrets, want) {
				t.Fatalf("secrets set %v, want %v", e.Secrets, want)
			}
			row, err := st.(catalog.Store).Tenant(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"smtp-password-1", "webhook-secret-aaaa", "webhook-secret-bbbb"} {
				if strings.Contains(row.Settings, s) || strings.Contains(string(row.Secrets), s) {
					t.Fatalf("%q stored in clear: %s", s, row.Settings)
				}
			}
			got, err := c.Get(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(mustJSON(t, got.Settings)), "secret-") || strings.Contains(string(mustJSON(t, got.Settings)), "password-1") {
				t.Fatalf("a secret is shown: %v", got.Settings)
			}
			full, _, err := c.Settings(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if full.Senders["email"].SMTP.Password != "smtp-password-1" || full.Webhooks.Endpoints[1].Secret != "webhook-secret-bbbb" {
				t.Fatalf("the service does not get the secrets back: %+v", full)
			}
		})
	}
}

func TestAnOmittedSecretIsKeptOnlyWhereItsBlockIsUnchanged(t *testing.T) {
	c, _ := open(t, storetest.SQLiteURL(t))
	if _, err := c.Create(ctx, "acme", doc(t, smtp)); err != nil {
		t.Fatal(err)
	}
	// The endpoints swapped places, the SMTP block unchanged: every secret stays with its block.
	same := `{"senders": {"email": {"type": "smtp", "smtp": {"host": "mail.acme.example", "from": "no-reply@acme.example", "username": "acme"}}},
		"webhooks": {"endpoints": [{"url": "https://crm.acme.example/b"}, {"url": "https://crm.acme.example/a"}]}}`
	if _, err := c.Replace(ctx, "acme", doc(t, same), store.Stamp{}); err != nil {
		t.Fatal(err)
	}
	full, _, err := c.Settings(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if full.Senders["email"].SMTP.Password != "smtp-password-1" || full.Webhooks.Endpoints[0].Secret != "webhook-secret-bbbb" ||
		full.Webhooks.Endpoints[1].Secret != "webhook-secret-aaaa" {
		t.Fatalf("secrets not kept with their blocks: %+v %+v", full.Senders["email"].SMTP, full.Webhooks.Endpoints)
	}
	// A new SMTP host without its password: the stored one never goes to it.
	moved := `{"senders": {"email": {"type": "smtp", "smtp": {"host": "mail.attacker.example", "from": "no-reply@acme.example", "username": "acme"}}}}`
	_, err = c.Replace(ctx, "acme", doc(t, moved), store.Stamp{})
	var invalid *catalog.InvalidError
	if !errors.As(err, &invalid) || len(invalid.Fields["senders.email.smtp.password"]) == 0 {
		t.Fatalf("moved SMTP host: %v, want the password required", err)
	}
}

func TestInvalidSettingsNameEveryBadSetting(t *testing.T) {
	c, _ := open(t, storetest.SQLiteURL(t))
	_, err := c.Create(ctx, "acme", doc(t, `{"defaultCountry": "France", "otp": {"maxAttempts": 50}, "checkInPolicy": "some"}`))
	var invalid *catalog.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("error %v, want an InvalidError", err)
	}
	for _, f := range []string{"defaultCountry", "otp.maxAttempts", "checkInPolicy"} {
		if len(invalid.Fields[f]) == 0 {
			t.Errorf("%s not named: %v", f, invalid.Fields)
		}
	}
	if got := invalid.Fields["otp.maxAttempts"][0]; got != "50: must be between 1 and 10" {
		t.Errorf("message %q, want the file's", got)
	}
	_, err = c.Create(ctx, "acme", doc(t, `{"otp": {"maxAtempts": 5}}`))
	if !errors.As(err, &invalid) || len(invalid.Fields["otp.maxAtempts"]) != 1 || !strings.Contains(invalid.Fields["otp.maxAtempts"][0], "did you mean maxAttempts?") {
		t.Fatalf("an unknown setting: %v", err)
	}
}

func TestApplyIsIdempotentAndSaysWhatChanges(t *testing.T) {
	c, _ := open(t, storetest.SQLiteURL(t))
	tc, err := config.DecodeTenant("acme", doc(t, smtp))
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Apply(ctx, "acme", tc, false)
	if err != nil || first.Action != "create" || len(first.Lines) == 0 {
		t.Fatalf("first apply: %+v %v", first, err)
	}
	again, err := c.Apply(ctx, "acme", tc, false)
	if err != nil || again.Action != "none" || len(again.Lines) != 0 || again.Entry.Version != first.Entry.Version {
		t.Fatalf("second apply: %+v %v", again, err)
	}
	tc.OTP.MaxAttempts = 3
	tc.Senders["email"].SMTP.Password = "smtp-password-2"
	dry, err := c.Apply(ctx, "acme", tc, true)
	if err != nil || dry.Action != "update" {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	want := []string{"~ otp.maxAttempts: 5 -> 3", "~ senders.email.smtp.password: (secret) -> (secret)"}
	if !slices.Equal(dry.Lines, want) {
		t.Fatalf("difference %q, want %q", dry.Lines, want)
	}
	if e, _ := c.Get(ctx, "acme"); e.Version != first.Entry.Version {
		t.Fatalf("a dry run wrote: version %d", e.Version)
	}
	done, err := c.Apply(ctx, "acme", tc, false)
	if err != nil || done.Entry.Version != first.Entry.Version+1 {
		t.Fatalf("apply: %+v %v", done, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A URL's user info is a credential (Go's HTTP client sends it as Basic
// authentication): refused, where it would have been printed by tenants
// apply, stored in clear and answered by the admin API (found by an audit);
// a credential belongs in the block's secret.
func TestAURLPasswordIsRefused(t *testing.T) {
	const pw = "crm-basic-auth-password"
	c, _ := open(t, storetest.Backends()[0].URL(t))
	tc, err := config.DecodeTenant("acme", doc(t, `{"webhooks": {"endpoints": [{"url": "https://crm-user:`+pw+`@crm.acme.example/h", "secret": "webhook-secret-aaaa"}]}}`))
	if err == nil {
		_, err = c.Apply(ctx, "acme", tc, true)
	}
	if err == nil || !strings.Contains(err.Error(), "carries credentials") || strings.Contains(err.Error(), pw) {
		t.Fatalf("a URL with a password: %v", err)
	}
}

// An unparsable URL's message quotes it not: its password stays out.
func TestAnUnparsableURLsPasswordStaysOutOfTheMessage(t *testing.T) {
	tc := &config.Tenant{Webhooks: config.Webhooks{Endpoints: []config.Endpoint{{URL: "https://crm-user:p%zz-crm-password@crm.acme.example/h", Secret: "webhook-secret-aaaa"}}}}
	ps := tc.Problems("acme")
	if len(ps) == 0 {
		t.Fatal("an unparsable URL passed")
	}
	for _, p := range ps {
		if strings.Contains(p.Message, "crm-password") {
			t.Errorf("%s: %s", p.Path, p.Message)
		}
	}
}

func TestADifferenceShowsAValueAsWritten(t *testing.T) {
	c, _ := open(t, storetest.SQLiteURL(t))
	tc, err := config.DecodeTenant("acme", doc(t, `{"senders": {"email": {"type": "smtp", "smtp": {"host": "mail.acme.example",
		"from": "Acme <no-reply@acme.example>"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Apply(ctx, "acme", tc, true)
	if err != nil || !slices.Contains(ch.Lines, `+ senders.email.smtp.from: "Acme <no-reply@acme.example>"`) {
		t.Fatalf("difference %q: %v", ch.Lines, err)
	}
}

// The configuration file is the whole of a tenant: a secret it no longer
// holds is gone, not carried over from the stored tenant, so that a leaked
// LINE channel secret deleted from the file stops signing tokens (found by
// an audit: apply said "updated" and kept it), and applying the same file
// again is unchanged.
func TestASecretLeftOutOfTheFileIsRemoved(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		c, _ := open(t, dbURL)
		line := func(js string) *config.Tenant {
			tc, err := config.DecodeTenant("acme", doc(t, `{"providers": {"line": {"type": "line", "clientIds": ["1655"]`+js+`}}}`))
			if err != nil {
				t.Fatal(err)
			}
			return tc
		}
		if _, err := c.Apply(ctx, "acme", line(`, "channelSecret": "line-channel-secret"`), false); err != nil {
			t.Fatal(err)
		}
		ch, err := c.Apply(ctx, "acme", line(``), false)
		if err != nil || ch.Action != "update" || !slices.Equal(ch.Lines, []string{"- providers.line.channelSecret: (secret)"}) {
			t.Fatalf("apply without the secret: %+v %v", ch, err)
		}
		full, _, err := c.Settings(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := full.Providers["line"].Settings["channelSecret"]; ok {
			t.Fatalf("the channel secret left out of the file is kept: %v", s)
		}
		if slices.Contains(ch.Entry.Secrets, "providers.line.channelSecret") {
			t.Fatalf("secrets set %v", ch.Entry.Secrets)
		}
		again, err := c.Apply(ctx, "acme", line(``), false)
		if err != nil || again.Action != "none" || again.Entry.Version != ch.Entry.Version {
			t.Fatalf("the same file again: %+v %v", again, err)
		}
	})
}
