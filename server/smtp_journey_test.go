package server_test

import (
	"errors"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/sender/smtptest"
	"github.com/customerd/customerd/store"
)

const (
	smtpUser     = "customerd@demo.example"
	smtpPassword = "s3cret-pässword"
)

// smtpTenant is the YAML of a tenant whose email sender is smtpSender.
func smtpTenant(name string, port int, rootCAs string) string {
	return fmt.Sprintf(`
  %s:
    senders:
      email: %s
    providers:
      otp:
        type: otp
`, name, smtpSender(port, rootCAs, 5*time.Second))
}

// smtpSender is the YAML of an email sender that submits to 127.0.0.1:port
// with STARTTLS and AUTH PLAIN, trusting rootCAs, within timeout.
func smtpSender(port int, rootCAs string, timeout time.Duration) string {
	return fmt.Sprintf(`{type: smtp, smtp: {host: 127.0.0.1, port: %d, tls: starttls, username: %q, password: %q,
        from: "Demo <no-reply@demo.example>", timeout: %s, rootCAs: %q, allowPrivateNetwork: true}}`,
		port, smtpUser, smtpPassword, timeout, rootCAs)
}

// codeFrom checks that d is a code email to to, sent over TLS by the
// configured user, and returns the code it carries.
func codeFrom(t *testing.T, d smtptest.Delivery, to string) string {
	t.Helper()
	if !d.TLS {
		t.Error("the code was not sent over TLS")
	}
	if d.User != smtpUser || d.Password != smtpPassword {
		t.Errorf("AUTH PLAIN as %q/%q, want %q/%q", d.User, d.Password, smtpUser, smtpPassword)
	}
	if d.From != "no-reply@demo.example" {
		t.Errorf("MAIL FROM %q, want no-reply@demo.example", d.From)
	}
	if len(d.To) != 1 || d.To[0] != to {
		t.Errorf("RCPT TO %q, want [%s]", d.To, to)
	}
	m := smtptest.Parse(t, d.Data)
	if got := m.Header.Get("To"); !strings.Contains(got, to) {
		t.Errorf("To = %q, want %s", got, to)
	}
	codes := sixDigits.FindAllString(m.Body, -1)
	if len(codes) != 1 {
		t.Fatalf("want exactly one 6-digit code in the body, found %q:\n%s", codes, m.Body)
	}
	return codes[0]
}

// closedPort is a port of 127.0.0.1 on which nothing listens.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// mustBe503 checks an unavailable problem with a Retry-After.
func mustBe503(t *testing.T, what string, status int, header http.Header, body []byte) {
	t.Helper()
	if status != http.StatusServiceUnavailable {
		t.Fatalf("%s: %d %s, want 503", what, status, body)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s: Content-Type %q, want a problem", what, ct)
	}
	if header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", what)
	}
	if strings.Contains(string(body), smtpPassword) {
		t.Errorf("%s: the problem leaks the SMTP password: %s", what, body)
	}
}

// noLiveChallenge checks that no challenge to destination can be completed.
func noLiveChallenge(t *testing.T, env *apptest.Env, tenant, destination string) {
	t.Helper()
	c, err := env.App.Store.LiveChallenge(ctx, tenant, destination, "", time.Now().UTC())
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after a failed send, LiveChallenge(%s) = %+v, %v; want ErrNotFound", destination, c, err)
	}
}

func TestJourneyOverSMTP(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		t.Run("an emailed code signs the owner in", func(t *testing.T) { smtpJourney(t, dbURL) })
		t.Run("an SMTP outage answers 503 and leaves no usable code", func(t *testing.T) { smtpOutage(t, dbURL) })
	})
}

// smtpJourney: create an account, ask again anonymously, read the code from
// the email the SMTP server got, sign in with it.
func smtpJourney(t *testing.T, dbURL string) {
	srv := smtptest.Start(t, smtptest.StartTLS, smtpUser, smtpPassword)
	env := apptest.Start(t, dbURL, "tenants:"+smtpTenant("demo", srv.Port, srv.RootCAs))
	const email = "jane.doe@example.com"

	created, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
		Email: ptr(" Jane.Doe@Example.COM "), FirstName: ptr("Jane"), Postcode: ptr("75001")})
	if err != nil || created.StatusCode() != http.StatusOK || created.JSON200 == nil {
		t.Fatalf("create: %v %d %s", err, created.StatusCode(), created.Body)
	}
	if *created.JSON200.Email != email || *created.JSON200.EmailVerified {
		t.Fatalf("created account: %s", created.Body)
	}
	srv.NoDelivery(t) // creating an account sends nothing

	// The same email again, anonymously: nothing changes, a code goes to the owner.
	again, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
		Email: ptr(email), FirstName: ptr("Mallory"), LastName: ptr("Doe")})
	if err != nil || again.StatusCode() != http.StatusAccepted || again.JSON202 == nil {
		t.Fatalf("anonymous upsert of an existing account: %v %d %s", err, again.StatusCode(), again.Body)
	}
	if again.JSON202.Destination != "j***@e***.com" || again.JSON202.Channel != "email" {
		t.Fatalf("challenge: %s", again.Body)
	}

	code := codeFrom(t, srv.Received(t, 5*time.Second), email)
	srv.NoDelivery(t) // one code, one email

	id := again.JSON202.ChallengeId.String()
	tokRes, err := env.Client.AuthenticateCustomerWithResponse(ctx, "demo", &client.AuthenticateCustomerParams{Provider: ptr("otp")},
		client.AuthenticateCustomerJSONRequestBody{ChallengeId: &id, Code: &code})
	if err != nil || tokRes.StatusCode() != http.StatusOK || tokRes.JSON200 == nil {
		t.Fatalf("exchange the emailed code: %v %d %s", err, tokRes.StatusCode(), tokRes.Body)
	}

	got, err := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(*tokRes.JSON200))
	if err != nil || got.StatusCode() != http.StatusOK || got.JSON200 == nil {
		t.Fatalf("get: %v %d %s", err, got.StatusCode(), got.Body)
	}
	p := got.JSON200
	// What the anonymous caller's change may fill was held by the challenge and
	// lands once the owner proves the address; it overwrites nothing.
	if *p.Id != *created.JSON200.Id || *p.Email != email || !*p.EmailVerified || *p.FirstName != "Jane" || *p.LastName != "Doe" ||
		*p.Provider != "otp" {
		t.Fatalf("profile after the emailed code: %s", got.Body)
	}
}

// smtpOutage: a tenant whose SMTP server is down, and one whose server
// refuses the recipient for a while.
func smtpOutage(t *testing.T, dbURL string) {
	refusing := smtptest.Start(t, smtptest.StartTLS, smtpUser, smtpPassword)
	env := apptest.Start(t, dbURL, "tenants:"+
		smtpTenant("down", closedPort(t), refusing.RootCAs)+
		smtpTenant("refusing", refusing.Port, refusing.RootCAs))
	otp := &client.AuthenticateCustomerParams{Provider: ptr("otp")}

	t.Run("nothing listens", func(t *testing.T) {
		const email = "down@example.com"
		for i := range 2 { // the failed send did not spend the resend slot: no 429
			res, err := env.Client.AuthenticateCustomerWithResponse(ctx, "down", otp,
				client.AuthenticateCustomerJSONRequestBody{Email: ptr(email)})
			if err != nil {
				t.Fatal(err)
			}
			mustBe503(t, fmt.Sprintf("ask for a code #%d", i+1), res.StatusCode(), res.HTTPResponse.Header, res.Body)
			if res.Headers503 == nil || res.Headers503.RetryAfter == nil || *res.Headers503.RetryAfter <= 0 {
				t.Errorf("ask for a code #%d: Retry-After %q is not a positive number of seconds", i+1, res.HTTPResponse.Header.Get("Retry-After"))
			}
			noLiveChallenge(t, env, "down", email)
		}
	})

	t.Run("the server refuses the recipient, then recovers", func(t *testing.T) {
		const email = "refused@example.com"
		created, err := env.Client.UpsertCustomerWithResponse(ctx, "refusing", nil, client.UpsertCustomerJSONRequestBody{
			Email: ptr(email), FirstName: ptr("Rita")})
		if err != nil || created.StatusCode() != http.StatusOK {
			t.Fatalf("create: %v %d %s", err, created.StatusCode(), created.Body)
		}

		refusing.RefuseRecipients(true)
		res, err := env.Client.AuthenticateCustomerWithResponse(ctx, "refusing", otp,
			client.AuthenticateCustomerJSONRequestBody{Email: ptr(email)})
		if err != nil {
			t.Fatal(err)
		}
		mustBe503(t, "ask for a code", res.StatusCode(), res.HTTPResponse.Header, res.Body)
		up, err := env.Client.UpsertCustomerWithResponse(ctx, "refusing", nil, client.UpsertCustomerJSONRequestBody{Email: ptr(email)})
		if err != nil {
			t.Fatal(err)
		}
		mustBe503(t, "anonymous upsert of an existing account", up.StatusCode(), up.HTTPResponse.Header, up.Body)
		refusing.NoDelivery(t)
		noLiveChallenge(t, env, "refusing", email)

		// The server is back: an immediate new request gets a fresh, working code.
		refusing.RefuseRecipients(false)
		again, err := env.Client.AuthenticateCustomerWithResponse(ctx, "refusing", otp,
			client.AuthenticateCustomerJSONRequestBody{Email: ptr(email)})
		if err != nil || again.StatusCode() != http.StatusAccepted || again.JSON202 == nil {
			t.Fatalf("ask again right after the outage: %v %d %s, want 202", err, again.StatusCode(), again.Body)
		}
		code := codeFrom(t, refusing.Received(t, 5*time.Second), email)
		refusing.NoDelivery(t)
		id := again.JSON202.ChallengeId.String()
		tok, err := env.Client.AuthenticateCustomerWithResponse(ctx, "refusing", otp,
			client.AuthenticateCustomerJSONRequestBody{ChallengeId: &id, Code: &code})
		if err != nil || tok.StatusCode() != http.StatusOK || tok.JSON200 == nil {
			t.Fatalf("exchange the code: %v %d %s", err, tok.StatusCode(), tok.Body)
		}
		me, err := env.Client.GetCustomerWithResponse(ctx, "refusing", apptest.Bearer(*tok.JSON200))
		if err != nil || me.StatusCode() != http.StatusOK || *me.JSON200.FirstName != "Rita" || !*me.JSON200.EmailVerified {
			t.Fatalf("profile: %v %d %s", err, me.StatusCode(), me.Body)
		}
	})
}
