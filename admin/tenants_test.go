package admin_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store/storetest"
)

func TestATenantCreatedThroughTheAPIServesAFullCodeSignInAtOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		if res, _ := env.Client.GetJwksWithResponse(ctx, "brand"); res.StatusCode() != http.StatusNotFound {
			t.Fatalf("before: %d", res.StatusCode())
		}
		created := create(t, c, "brand", `{"defaultCountry": "BE", "defaultLanguage": "nl",
			"senders": {"email": {"type": "log"}}, "otp": {"maxAttempts": 3}}`)
		if created.Version != 1 || *created.Settings.DefaultCountry != "BE" || *created.Settings.PhoneRegion != "BE" {
			t.Fatalf("created: %+v", created)
		}
		tok := env.SignIn(t, "brand", "jan@example.be")
		me, err := env.Client.GetCustomerWithResponse(ctx, "brand", apptest.Bearer(tok))
		if err != nil || me.StatusCode() != http.StatusOK || *me.JSON200.Country != "BE" || *me.JSON200.Language != "nl" {
			t.Fatalf("profile: %v %d %s", err, me.StatusCode(), me.Body)
		}
		// A token of the new tenant opens nothing of another.
		if other, _ := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok)); other.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("another tenant: %d", other.StatusCode())
		}
	})
}

func TestAChangeServesTheNextRequestAndADeletedTenantStops(t *testing.T) {
	env, c := start(t, "", "")
	create(t, c, "brand", `{}`)
	up, err := env.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("a@example.com")})
	if err != nil || up.StatusCode() != http.StatusOK {
		t.Fatalf("upsert: %v %d %s", err, up.StatusCode(), up.Body)
	}
	res, err := c.ReplaceTenantWithResponse(ctx, "brand", nil, settings(t, `{"requiredFields": ["lastName"]}`))
	if err != nil || res.StatusCode() != http.StatusOK || res.JSON200.Version != 2 {
		t.Fatalf("replace: %v %d %s", err, res.StatusCode(), res.Body)
	}
	up, err = env.Client.UpsertCustomerWithResponse(ctx, "brand", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("b@example.com")})
	if err != nil || up.StatusCode() != http.StatusPreconditionFailed {
		t.Fatalf("the new rule does not apply: %v %d %s", err, up.StatusCode(), up.Body)
	}
	del, err := c.DeleteTenantWithResponse(ctx, "brand", nil)
	if err != nil || del.StatusCode() != http.StatusNoContent {
		t.Fatalf("delete: %v %d %s", err, del.StatusCode(), del.Body)
	}
	if r, _ := env.Client.GetJwksWithResponse(ctx, "brand"); r.StatusCode() != http.StatusNotFound {
		t.Fatalf("a deleted tenant serves: %d", r.StatusCode())
	}
	if r, _ := c.GetTenantWithResponse(ctx, "brand"); r.StatusCode() != http.StatusNotFound {
		t.Fatalf("a deleted tenant reads: %d", r.StatusCode())
	}
}

func TestARequestInFlightFinishesWithItsTenant(t *testing.T) {
	// A brand's webhook provider holds the request while the tenant's token
	// lifetime changes: the token still has the lifetime the request started with.
	env, c := start(t, "", "")
	entered, release := make(chan struct{}), make(chan struct{})
	brand := brandEndpoint(t, entered, release)
	create(t, c, "brand", `{"tokenLifetime": "1h", "providers": {"brand": {"type": "webhook", "url": "`+brand+`",
		"secret": "0123456789abcdef0123456789abcdef", "allowPrivateNetwork": true}}}`)
	done := make(chan *client.AuthenticateCustomerResponse, 1)
	go func() {
		res, _ := env.Client.AuthenticateCustomerWithBodyWithResponse(context.Background(), "brand",
			&client.AuthenticateCustomerParams{Provider: ptr("brand")}, "application/json", strings.NewReader(`{"login":"ada"}`))
		done <- res
	}()
	<-entered
	replaced, err := c.ReplaceTenantWithResponse(ctx, "brand", nil, settings(t, `{"tokenLifetime": "2h",
		"providers": {"brand": {"type": "webhook", "url": "`+brand+`", "allowPrivateNetwork": true}}}`))
	if err != nil || replaced.StatusCode() != http.StatusOK {
		t.Fatalf("replace: %v %d %s", err, replaced.StatusCode(), replaced.Body)
	}
	close(release)
	res := <-done
	if res == nil || res.StatusCode() != http.StatusOK {
		t.Fatalf("sign-in: %v", res)
	}
	claims, err := env.App.Tokens.Verify(ctx, "brand", *res.JSON200)
	if err != nil {
		t.Fatal(err)
	}
	if got := claims.ExpiresAt.Sub(claims.IssuedAt); got.Hours() != 1 {
		t.Fatalf("token lifetime %s, want the 1h the request started with", got)
	}
}

func TestSecretsAreWriteOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		secrets := []string{"smtp-password-123", "0123456789abcdef0123456789abcdef-sms", "webhook-secret-456", "fb-app-secret", "line-channel-secret", "0123456789abcdef0123456789abcdef-brand"}
		created := create(t, c, "acme", `{
			"senders": {
				"email": {"type": "smtp", "smtp": {"host": "mail.acme.example", "from": "no-reply@acme.example", "username": "acme", "password": "smtp-password-123"}},
				"sms": {"type": "webhook", "webhook": {"url": "https://sms.acme.example/send", "secret": "0123456789abcdef0123456789abcdef-sms"}}},
			"providers": {
				"otp": {"type": "otp"},
				"facebook": {"type": "facebook", "clientIds": ["1234"], "appSecret": "fb-app-secret"},
				"line": {"type": "line", "clientIds": ["1655"], "channelSecret": "line-channel-secret"},
				"brand": {"type": "webhook", "url": "https://auth.acme.example/x", "secret": "0123456789abcdef0123456789abcdef-brand"}},
			"webhooks": {"endpoints": [{"url": "https://crm.acme.example/hook", "secret": "webhook-secret-456"}]}}`)
		want := []string{"providers.brand.secret", "providers.facebook.appSecret", "providers.line.channelSecret",
			"senders.email.smtp.password", "senders.sms.webhook.secret", "webhooks.endpoints[0].secret"}
		if !slices.Equal(created.SecretsSet, want) {
			t.Fatalf("secretsSet %v, want %v", created.SecretsSet, want)
		}
		a := env.Admin(t)
		res, body := call(t, a.HTTP, http.MethodGet, a.Server.URL+"/admin/tenants/acme", "", "Authorization", "Bearer "+a.Key(t, "*"))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("get: %d %s", res.StatusCode, body)
		}
		list, _ := c.ListTenantsWithResponse(ctx, nil)
		audit, _ := c.ListAuditEntriesWithResponse(ctx, nil)
		for _, s := range secrets {
			for name, b := range map[string]string{"get": body, "list": string(list.Body), "audit": string(audit.Body)} {
				if strings.Contains(b, s) {
					t.Fatalf("%s answers the secret %q: %s", name, s, b)
				}
			}
		}
		// Sent back as read (no secrets): every secret stays with its unchanged block.
		got, _ := c.GetTenantWithResponse(ctx, "acme")
		again, err := c.ReplaceTenantWithResponse(ctx, "acme", &adminclient.ReplaceTenantParams{IfMatch: ptr(got.HTTPResponse.Header.Get("ETag"))}, got.JSON200.Settings)
		if err != nil || again.StatusCode() != http.StatusOK || !slices.Equal(again.JSON200.SecretsSet, want) {
			t.Fatalf("replace as read: %v %d %s", err, again.StatusCode(), again.Body)
		}
		full, _, err := env.App.Catalog.Settings(ctx, "acme")
		if err != nil || full.Senders["email"].SMTP.Password != "smtp-password-123" || full.Webhooks.Endpoints[0].Secret != "webhook-secret-456" {
			t.Fatalf("secrets after a replace: %v %+v", err, full)
		}
		// Pointing the SMTP block or the webhook elsewhere without the secret: refused, nothing sent anywhere.
		moved := got.JSON200.Settings
		(*moved.Webhooks.Endpoints)[0].Url = ptr("https://attacker.example/hook")
		bad, err := c.ReplaceTenantWithResponse(ctx, "acme", nil, moved)
		if err != nil || bad.StatusCode() != http.StatusUnprocessableEntity || bad.ApplicationproblemJSON422 == nil {
			t.Fatalf("moved endpoint: %v %d %s", err, bad.StatusCode(), bad.Body)
		}
		if _, ok := (*bad.ApplicationproblemJSON422.Errors)["webhooks.endpoints[0].secret"]; !ok {
			t.Fatalf("moved endpoint: %s", bad.Body)
		}
	})
}

// A secret sent as null or "" is removed: a leaked LINE channel secret then
// signs no more tokens (found by an audit: the replace kept it, and anyone
// with it signed HS256 ID tokens for any subject). Left out, it is kept; a
// required one removed is a 422 naming it.
func TestASecretSentAsNullIsRemoved(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		iss := oidctest.New(t)
		const brand = `"0123456789abcdef0123456789abcdef"`
		tenant := func(lineSecret, brandSecret string) adminclient.TenantSettings {
			return settings(t, fmt.Sprintf(`{"providers": {"otp": {"type": "otp"},
				"line": {"type": "line", "clientIds": ["1655"], "issuer": %q, "jwksUrl": %q, "allowPrivateNetwork": true%s},
				"brand": {"type": "webhook", "url": "https://auth.acme.example/x", "secret": %s}}}`,
				iss.URL(), iss.JWKSURL(), lineSecret, brandSecret))
		}
		line := func(secret string) adminclient.TenantSettings { return tenant(secret, brand) }
		forged := oidctest.HS256([]byte("line-channel-secret"), map[string]any{"alg": "HS256", "typ": "JWT"}, iss.Claims("1655", "anyone"))
		signIn := func() int {
			res, err := env.Client.AuthenticateCustomerWithBodyWithResponse(ctx, "acme", &client.AuthenticateCustomerParams{Provider: ptr("line")},
				"application/json", strings.NewReader(`{"idToken":"`+forged+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			return res.StatusCode()
		}
		replace := func(s adminclient.TenantSettings) *adminclient.ReplaceTenantResponse {
			res, err := c.ReplaceTenantWithResponse(ctx, "acme", nil, s)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		create(t, c, "acme", `{}`)
		for _, cleared := range []string{`, "channelSecret": null`, `, "channelSecret": ""`} {
			if res := replace(line(`, "channelSecret": "line-channel-secret"`)); res.StatusCode() != http.StatusOK {
				t.Fatalf("set: %d %s", res.StatusCode(), res.Body)
			}
			if res := replace(line(``)); res.StatusCode() != http.StatusOK || !slices.Contains(res.JSON200.SecretsSet, "providers.line.channelSecret") {
				t.Fatalf("left out: %d %s, want the secret kept", res.StatusCode(), res.Body)
			}
			if got := signIn(); got != http.StatusOK {
				t.Fatalf("an HS256 token with the channel secret: %d, want 200", got)
			}
			res := replace(line(cleared))
			if res.StatusCode() != http.StatusOK || slices.Contains(res.JSON200.SecretsSet, "providers.line.channelSecret") {
				t.Fatalf("%s: %d %s, want the secret removed", cleared, res.StatusCode(), res.Body)
			}
			if got := signIn(); got != http.StatusUnprocessableEntity {
				t.Fatalf("%s: an HS256 token with the removed channel secret: %d, want 422", cleared, got)
			}
		}
		bad := replace(tenant(``, `null`))
		if bad.StatusCode() != http.StatusUnprocessableEntity || bad.ApplicationproblemJSON422 == nil {
			t.Fatalf("a required secret removed: %d %s", bad.StatusCode(), bad.Body)
		}
		if _, ok := (*bad.ApplicationproblemJSON422.Errors)["providers.brand.secret"]; !ok {
			t.Fatalf("a required secret removed: %s, want it named", bad.Body)
		}
	})
}

func TestAStaleWriteAnswers412(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		_, c := start(t, dbURL, "")
		create(t, c, "acme", `{}`)
		got, _ := c.GetTenantWithResponse(ctx, "acme")
		tag := got.HTTPResponse.Header.Get("ETag")
		if !strings.HasPrefix(tag, `"1.`) {
			t.Fatalf("ETag %q", tag)
		}
		first, err := c.ReplaceTenantWithResponse(ctx, "acme", &adminclient.ReplaceTenantParams{IfMatch: &tag}, settings(t, `{"defaultCountry": "DE"}`))
		if err != nil || first.StatusCode() != http.StatusOK || !strings.HasPrefix(first.HTTPResponse.Header.Get("ETag"), `"2.`) {
			t.Fatalf("first writer: %v %d %s", err, first.StatusCode(), first.Body)
		}
		second, err := c.ReplaceTenantWithResponse(ctx, "acme", &adminclient.ReplaceTenantParams{IfMatch: &tag}, settings(t, `{"defaultCountry": "IT"}`))
		if err != nil || second.StatusCode() != http.StatusPreconditionFailed || second.ApplicationproblemJSON412 == nil {
			t.Fatalf("second writer: %v %d %s", err, second.StatusCode(), second.Body)
		}
		del, err := c.DeleteTenantWithResponse(ctx, "acme", &adminclient.DeleteTenantParams{IfMatch: &tag})
		if err != nil || del.StatusCode() != http.StatusPreconditionFailed {
			t.Fatalf("stale delete: %v %d %s", err, del.StatusCode(), del.Body)
		}
		if now, _ := c.GetTenantWithResponse(ctx, "acme"); *now.JSON200.Settings.DefaultCountry != "DE" {
			t.Fatalf("the stale writer won: %s", now.Body)
		}
	})
}

func TestInvalidSettingsNameEveryBadSettingAsTheFileDoes(t *testing.T) {
	bad := `{"defaultCountry": "France", "otp": {"maxAttempts": 50}, "identifier": "login",
		"senders": {"email": {"type": "smtp", "smtp": {"from": "a@b.c"}}},
		"providers": {"google": {"type": "google"}},
		"flows": {"signup": [{"verified": true}, {"emit": "Customer:Gone"}]}}`
	yaml := "tenants:\n  acme:\n    defaultCountry: France\n    otp: {maxAttempts: 50}\n    identifier: login\n" +
		"    senders: {email: {type: smtp, smtp: {from: a@b.c}}}\n    providers: {google: {type: google}}\n" +
		"    flows: {signup: [{verified: true}, {emit: 'Customer:Gone'}]}\n"
	env, c := start(t, "", "")
	res, err := c.CreateTenantWithResponse(ctx, adminclient.NewTenant{Id: "acme", Settings: settings(t, bad)})
	if err != nil || res.StatusCode() != http.StatusUnprocessableEntity || res.ApplicationproblemJSON422 == nil {
		t.Fatalf("%v %d %s", err, res.StatusCode(), res.Body)
	}
	fields := *res.ApplicationproblemJSON422.Errors
	// Start-up with the same block refuses it with the same messages (the
	// providers' once the rest is good: they are opened after the file is read).
	startErr := startError(t, yaml) + startError(t, "tenants:\n  acme:\n    providers: {google: {type: google}}\n")
	for _, f := range []string{"defaultCountry", "otp.maxAttempts", "identifier", "senders.email.smtp.host",
		"providers.google.clientIds", "flows.signup.steps[1]"} {
		msgs, ok := fields[f]
		if !ok {
			t.Errorf("%s not named: %s", f, res.Body)
			continue
		}
		if line := "tenants.acme." + f + ": " + msgs[0]; !strings.Contains(startErr, line) {
			t.Errorf("%q is not what start-up says:\n%s", line, startErr)
		}
	}
	if r, _ := env.Client.GetJwksWithResponse(ctx, "acme"); r.StatusCode() != http.StatusNotFound {
		t.Fatal("a refused tenant serves")
	}
	// A bad id is named as the file names it, and so is a setting no tenant has.
	for id, js := range map[string]string{"Acme!": `{}`, "acme": `{"otp": {"maxAtempts": 5}}`} {
		res, err := c.CreateTenantWithResponse(ctx, adminclient.NewTenant{Id: id, Settings: settings(t, js)})
		if err != nil || res.StatusCode() != http.StatusUnprocessableEntity {
			t.Fatalf("%s %s: %v %d %s", id, js, err, res.StatusCode(), res.Body)
		}
	}
}

// startError is what start-up says of a configuration file holding configYAML.
func startError(t *testing.T, configYAML string) string {
	t.Helper()
	path := t.TempDir() + "/customerd.yaml"
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CUSTOMERD_DATABASE_URL": storetest.SQLiteURL(t), "CUSTOMERD_SECRET": apptest.Secret}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		return err.Error()
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = a.Close()
		t.Fatal("start-up accepted the configuration")
	}
	return err.Error()
}

func TestThePublicListenerNeverAnswersAdminPaths(t *testing.T) {
	env, _ := start(t, "", "")
	key := env.Admin(t).Key(t, "*")
	for _, path := range []string{"/admin/tenants", "/admin/tenants/demo", "/admin/audit", "/admin/tenants/demo/customers"} {
		res, body := call(t, env.HTTP, http.MethodGet, env.Server.URL+path, "", "Authorization", "Bearer "+key)
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("public %s: %d %s", path, res.StatusCode, body)
		}
	}
}

// A provider's secret spelled in another case ("SECRET", "appsecret"), which
// encoding/json would have decoded as the secret while the sealing of
// secrets, which reads names exactly, left it in the settings answered, is
// refused as an unknown setting, and never answered (found by an audit).
func TestAProviderSecretSpelledOtherwiseIsRefused(t *testing.T) {
	_, c := start(t, "", "")
	const brandSecret, fbSecret = "brand-secret-0123456789abcdef0123456789", "fb-app-secret-98765"
	js := `{"providers": {"otp": {"type": "otp"},
		"brand": {"type": "webhook", "url": "https://auth.acme.example/x", "SECRET": "` + brandSecret + `"},
		"facebook": {"type": "facebook", "clientIds": ["1234"], "appsecret": "` + fbSecret + `"}}}`
	res, err := c.CreateTenantWithResponse(ctx, adminclientNewTenantOf(t, "acme", js))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != http.StatusUnprocessableEntity || !strings.Contains(string(res.Body), "unknown setting") {
		t.Fatalf("create: %d %s, want 422 naming an unknown setting", res.StatusCode(), res.Body)
	}
	got, err := c.GetTenantWithResponse(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := c.ListTenantsWithResponse(ctx, nil)
	for name, body := range map[string]string{"create": string(res.Body), "get": string(got.Body), "list": string(list.Body)} {
		for _, s := range []string{brandSecret, fbSecret} {
			if strings.Contains(body, s) {
				t.Errorf("%s answers the secret %q: %s", name, s, body)
			}
		}
	}
}

// A tenant's flow may make its check-in policy stricter, never looser: the
// admin API refuses a flow's checkIn: none under partial or full (422 naming
// the step), on creation and when the policy is tightened under the flow.
// Found by an audit: such a tenant answered an anonymous preregistration
// 200 with the account for a known email and 202 for a new one.
func TestAFlowCannotLoosenTheTenantsCheckInPolicy(t *testing.T) {
	_, c := start(t, "", "")
	const flow = `"flows": {"preregistration": [{"checkIn": "none"}]}`
	refused := func(what string, status int, body []byte, p *adminclient.Problem) {
		t.Helper()
		const step = "flows.preregistration.steps[0]"
		if status != http.StatusUnprocessableEntity || p == nil || p.Errors == nil || len((*p.Errors)[step]) == 0 ||
			!strings.HasPrefix((*p.Errors)[step][0], "checkIn: none would tell anonymous callers who has an account") {
			t.Fatalf("%s: %d %s", what, status, body)
		}
	}
	res, err := c.CreateTenantWithResponse(ctx, adminclient.NewTenant{Id: "strict",
		Settings: settings(t, `{"checkInPolicy": "full", `+flow+`}`)})
	if err != nil {
		t.Fatal(err)
	}
	refused("created under full", res.StatusCode(), res.Body, res.ApplicationproblemJSON422)

	create(t, c, "acme", `{"checkInPolicy": "none", `+flow+`}`)
	rep, err := c.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t,
		`{"checkInPolicy": "partial", "checkInPage": "https://shop.acme.example/check-in", `+flow+`}`))
	if err != nil {
		t.Fatal(err)
	}
	refused("the policy tightened under the flow", rep.StatusCode(), rep.Body, rep.ApplicationproblemJSON422)
}
