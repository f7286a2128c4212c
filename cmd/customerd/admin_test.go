package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/store"
)

// call sends a request with an admin key and returns the status and body.
func adminCall(t *testing.T, method, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return res.StatusCode, readAll(t, res.Body)
}

// waitServed waits until the running server s serves tenant, which a
// command wrote (SQLite: at the server's next reconcile).
func waitServed(t *testing.T, s *server, api, tenant string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if code, _ := adminCall(t, http.MethodGet, api+"/api/"+tenant+"/.well-known/jwks.json", ""); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running server never served the applied tenant:\n%s", s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAdminKeysAndTenantsApply(t *testing.T) {
	dir := t.TempDir()
	env := serveEnv(dir)
	cfg := writeConfig(t, dir, "tenants:\n  acme: {}\n")
	s, line := startServe(t, dir, env, "--config", cfg)
	adminURL, _ := line["admin"].(string)
	api, _ := line["api"].(string)
	if !strings.HasPrefix(adminURL, "http://127.0.0.1:") || strings.HasPrefix(adminURL, api) {
		t.Fatalf("start-up line: %v", line)
	}

	r := customerd(t, dir, env, "--config", cfg, "admin-key", "create", "--scope", "*", "--name", "ops")
	key := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(key, "cdk_") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("admin-key create: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if code, body := adminCall(t, http.MethodGet, adminURL+"/tenants/acme", key); code != http.StatusOK {
		t.Fatalf("the admin API with the new key: %d %s", code, body)
	}
	if code, _ := adminCall(t, http.MethodGet, api+"/admin/tenants/acme", key); code != http.StatusNotFound {
		t.Fatalf("the public listener answers the admin API: %d", code)
	}

	file := filepath.Join(dir, "tenants.yaml")
	write := func(yaml string) {
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tenants:\n  shop:\n    defaultCountry: BE\n    webhooks:\n      endpoints: [{url: 'https://crm.shop.example/h', secret: shop-webhook-secret-123}]\n")
	r = customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", file, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "shop: would be created\n") || !strings.Contains(r.stdout, `+ defaultCountry: "BE"`) ||
		!strings.Contains(r.stdout, "+ webhooks.endpoints[0].secret: (secret)") || strings.Contains(r.stdout, "shop-webhook-secret") {
		t.Fatalf("dry run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if code, _ := adminCall(t, http.MethodGet, adminURL+"/tenants/shop", key); code != http.StatusNotFound {
		t.Fatalf("a dry run wrote: %d", code)
	}
	if r = customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", file); r.code != 0 || !strings.HasPrefix(r.stdout, "shop: created\n") {
		t.Fatalf("apply: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r = customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", file); r.code != 0 || r.stdout != "shop: unchanged\n" {
		t.Fatalf("apply again: %d %q %s", r.code, r.stdout, r.stderr)
	}
	write("tenants:\n  shop:\n    defaultCountry: BE\n    otp: {maxAttempts: 3}\n    webhooks:\n      endpoints: [{url: 'https://crm.shop.example/h', secret: shop-webhook-secret-123}]\n")
	if r = customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", file); r.code != 0 || r.stdout != "shop: updated\n  ~ otp.maxAttempts: 5 -> 3\n" {
		t.Fatalf("apply a change: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// The running server serves it, without a restart (SQLite: at its next reconcile).
	waitServed(t, s, api, "shop")
	// A bad file is refused whole, with the file's line.
	write("tenants:\n  shop:\n    otp: {maxAttempts: 50}\n  other: {}\n")
	if r = customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", file); r.code != 1 ||
		!strings.Contains(r.stderr, "tenants.shop.otp.maxAttempts") || !strings.Contains(r.stderr, "tenants.yaml:3") {
		t.Fatalf("a bad file: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if code, _ := adminCall(t, http.MethodGet, adminURL+"/tenants/other", key); code != http.StatusNotFound {
		t.Fatal("a bad file wrote its good tenant")
	}

	// serve created acme from its file, the key was made, then the two applies of shop.
	code, body := adminCall(t, http.MethodGet, adminURL+"/audit", key)
	if code != http.StatusOK || strings.Count(body, `"keyId":"cli"`) != 4 || !strings.Contains(body, `"action":"admin-key.create"`) ||
		strings.Contains(body, "shop-webhook-secret") || strings.Contains(body, key) {
		t.Fatalf("audit: %d %s", code, body)
	}

	r = customerd(t, dir, env, "--config", cfg, "admin-key", "list")
	var k struct{ ID, Name, Scope string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &k) != nil || k.Name != "ops" || k.Scope != "*" || strings.Contains(r.stdout, key) {
		t.Fatalf("admin-key list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = customerd(t, dir, env, "--config", cfg, "admin-key", "create", "--scope", "*", "--name", "auditor")
	auditor := strings.TrimSpace(r.stdout)
	if r = customerd(t, dir, env, "--config", cfg, "admin-key", "revoke", k.ID); r.code != 0 {
		t.Fatalf("revoke: %d %s", r.code, r.stderr)
	}
	code, body = adminCall(t, http.MethodGet, adminURL+"/audit", auditor)
	var log struct {
		Items []struct{ Action, Target string }
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &log) != nil || len(log.Items) == 0 ||
		log.Items[len(log.Items)-1].Action != "admin-key.revoke" || log.Items[len(log.Items)-1].Target != k.ID {
		t.Fatalf("the revocation in the audit log: %d %s", code, body)
	}
	if code, _ := adminCall(t, http.MethodGet, adminURL+"/tenants/acme", key); code != http.StatusUnauthorized {
		t.Fatalf("a revoked key: %d", code)
	}
	if r = customerd(t, dir, env, "--config", cfg, "admin-key", "revoke", k.ID); r.code != 1 || !strings.Contains(r.stderr, "no live admin key") {
		t.Fatalf("revoke twice: %d %s", r.code, r.stderr)
	}
	if r = customerd(t, dir, env, "--config", cfg, "admin-key", "create"); r.code != 2 || !strings.Contains(r.stderr, "--scope is required") {
		t.Fatalf("no scope: %d %s", r.code, r.stderr)
	}
}

func TestAdminKeyListShowsAScopeOfTenantsAsAList(t *testing.T) {
	dir := t.TempDir()
	env := serveEnv(dir)
	if r := customerd(t, dir, env, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	for _, scope := range []string{"*", "acme,shop"} {
		if r := customerd(t, dir, env, "admin-key", "create", "--scope", scope); r.code != 0 {
			t.Fatalf("admin-key create --scope %s: %d %s", scope, r.code, r.stderr)
		}
	}
	r := customerd(t, dir, env, "admin-key", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.Contains(lines[0], `"scope":"*"`) || !strings.Contains(lines[1], `"scope":["acme","shop"]`) {
		t.Fatalf("admin-key list: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// A scope naming a tenant that is in neither the configuration nor the
// database makes the key all the same (its tenant may come later), and
// says so: a typo in --scope does not pass unseen.
func TestAdminKeyCreateSaysWhichScopedTenantIsNowhereYet(t *testing.T) {
	dir := t.TempDir()
	env := serveEnv(dir)
	if r := customerd(t, dir, env, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	r := customerd(t, dir, env, "admin-key", "create", "--scope", "demo,acmee")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "cdk_") {
		t.Fatalf("admin-key create: %d %s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, `note: there is no tenant "acmee" yet`) || strings.Contains(r.stderr, `"demo"`) {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// A version may refuse a setting an earlier one stored: tenants check names
// the stored tenants that no longer load, which serve builds lazily.
func TestTenantsCheckNamesTheStoredTenantsThatNoLongerLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := serveEnv(dir)
	cfg := withRuntimeTenant(t, dir, env, "tenants:\n  shop: {}\n",
		"tenants:\n  acme:\n    checkInPolicy: full\n    checkInPage: https://shop.example/check-in\n")
	if r := customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", cfg); r.code != 0 {
		t.Fatalf("tenants apply %s: %d %s", cfg, r.code, r.stderr)
	}
	if r := customerd(t, dir, env, "--config", cfg, "tenants", "check"); r.code != 0 || r.stdout != "2 tenants checked, 0 no longer loading\n" {
		t.Fatalf("every tenant loads: %d %s%s", r.code, r.stdout, r.stderr)
	}

	// acme as an earlier version stored it: a plain http check-in page,
	// accepted then under checkInPolicy full.
	s, err := store.Open(ctx, env["CUSTOMERD_DATABASE_URL"], store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows := s.(catalog.Store)
	row, err := rows.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	row.Settings = strings.Replace(row.Settings, "https://shop.example", "http://shop.example", 1)
	if err := rows.UpdateTenant(ctx, row); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	r := customerd(t, dir, env, "--config", cfg, "tenants", "check")
	if r.code != 1 || !strings.Contains(r.stdout, "acme: 1 problem\n  tenants.acme.checkInPage") ||
		!strings.HasSuffix(r.stdout, "2 tenants checked, 1 no longer loading\n") || strings.Contains(r.stdout, "shop:") {
		t.Fatalf("a tenant stored before the rule: %d %s%s", r.code, r.stdout, r.stderr)
	}
}

// tenants apply names a URL setting as every message does (egress.Where):
// scheme, host and path, never its query, where a receiver may take its
// credential (an api_key parameter); a change of the query alone is still
// shown, as a change of the hidden part.
func TestTenantsApplyNeverShowsAURLsQuery(t *testing.T) {
	dir := t.TempDir()
	env := serveEnv(dir)
	if r := customerd(t, dir, env, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	file := filepath.Join(dir, "tenants.yaml")
	apply := func(query, sms string, args ...string) result {
		t.Helper()
		yaml := "tenants:\n  shop:\n    senders:\n      sms:\n        type: webhook\n        countries: [FR]\n" +
			"        webhook: {url: 'https://sms.shop.example/send?" + sms + "', secret: " + secret + "}\n"
		if query != "" {
			yaml += "    webhooks:\n      endpoints: [{url: 'https://crm.shop.example/h?" + query + "', secret: shop-webhook-secret-123}]\n"
		}
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		r := customerd(t, dir, env, append([]string{"tenants", "apply", "-f", file}, args...)...)
		if r.code != 0 {
			t.Fatalf("apply: %d %s %s", r.code, r.stdout, r.stderr)
		}
		for _, credential := range []string{"k123", "k456", "t789", "t000"} {
			if strings.Contains(r.stdout+r.stderr, credential) {
				t.Fatalf("a URL's query shown:\n%s%s", r.stdout, r.stderr)
			}
		}
		return r
	}
	for _, dryRun := range [][]string{{"--dry-run"}, nil} {
		r := apply("api_key=k123", "token=t789", dryRun...)
		if !strings.Contains(r.stdout, `+ webhooks.endpoints[0].url: "https://crm.shop.example/h"`) ||
			!strings.Contains(r.stdout, `+ senders.sms.webhook.url: "https://sms.shop.example/send"`) {
			t.Fatalf("created %v: %s", dryRun, r.stdout)
		}
	}
	for _, dryRun := range [][]string{{"--dry-run"}, nil} {
		r := apply("api_key=k456", "token=t789", dryRun...)
		if !strings.Contains(r.stdout, "shop: ") || strings.Contains(r.stdout, "unchanged") ||
			!strings.Contains(r.stdout, `~ webhooks.endpoints[0].url: "https://crm.shop.example/h" -> "https://crm.shop.example/h" (query changed)`) ||
			strings.Contains(r.stdout, "senders.sms") {
			t.Fatalf("the query alone changed %v: %s", dryRun, r.stdout)
		}
	}
	r := apply("", "token=t000")
	if !strings.Contains(r.stdout, `- webhooks.endpoints[0].url: "https://crm.shop.example/h"`) ||
		!strings.Contains(r.stdout, `~ senders.sms.webhook.url: "https://sms.shop.example/send" -> "https://sms.shop.example/send" (query changed)`) {
		t.Fatalf("an endpoint removed: %s", r.stdout)
	}
}

// A tenant whose one-time codes go to the log (a log sender, named or by
// leaving senders out) is warned about wherever it is written, as serve
// warns at start-up about the file's: tenants apply, its dry run too, says
// so for each tenant and channel, and a running replica logs it when it
// builds the tenant, once for each version it builds.
func TestATenantAppliedWithALogSenderIsWarnedAbout(t *testing.T) {
	dir := t.TempDir()
	env := serveEnv(dir)
	cfg := writeConfig(t, dir, "tenants:\n  acme:\n    senders:\n      email: {type: smtp, smtp: {host: smtp.acme.example, from: no-reply@acme.example}}\n")
	s, line := startServe(t, dir, env, "--config", cfg)
	api, _ := line["api"].(string)
	const warning = "log sender: one-time codes are written to the log; never use it in production"
	if w := s.lines(warning); len(w) != 0 {
		t.Fatalf("acme writes no code to the log: %v", w)
	}
	file := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(file, []byte("tenants:\n  shop: {}\n  club:\n    senders:\n      email: {type: log}\n"+
		"      sms: {type: webhook, countries: [FR], webhook: {url: 'https://sms.club.example/send', secret: "+secret+"}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "warning: tenants.club.senders.email: type log writes one-time codes to the log; never in production\n" +
		"warning: tenants.shop.senders.email: type log writes one-time codes to the log; never in production\n" +
		"warning: tenants.shop.senders.sms: type log writes one-time codes to the log; never in production\n"
	for _, args := range [][]string{{"--dry-run"}, nil} {
		r := customerd(t, dir, env, append([]string{"--config", cfg, "tenants", "apply", "-f", file}, args...)...)
		var warned strings.Builder
		for l := range strings.Lines(r.stderr) {
			if strings.HasPrefix(l, "warning: ") {
				warned.WriteString(l)
			}
		}
		if r.code != 0 || warned.String() != want {
			t.Fatalf("tenants apply %v: %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
	}

	// The running server builds shop at its first request (SQLite: once its
	// reconcile learnt of it), and at its next ones serves what it built.
	waitServed(t, s, api, "shop")
	if code, _ := adminCall(t, http.MethodGet, api+"/api/shop/.well-known/jwks.json", ""); code != http.StatusOK {
		t.Fatalf("shop again: %d", code)
	}
	var warned []string
	for _, m := range s.lines(warning) {
		warned = append(warned, fmt.Sprint(m["level"], " ", m["tenant"], "/", m["channel"]))
	}
	if strings.Join(warned, ", ") != "WARN shop/email, WARN shop/sms" {
		t.Fatalf("the replica's warnings: %v\n%s", warned, s.log())
	}
}
