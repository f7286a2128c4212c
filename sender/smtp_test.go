package sender_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/sender/smtptest"
)

const (
	testUser     = "mailer@acme.example"
	testPassword = "correct-hörse-battery"
	testFrom     = "Acme Café <no-reply@acme.example>"
	testTo       = "alice@example.com"
	testCode     = "402913"
)

// startServer starts a go-smtp server in mode that accepts testUser and
// testPassword.
func startServer(t *testing.T, mode string, opts ...smtptest.Option) *smtptest.Server {
	t.Helper()
	return smtptest.Start(t, mode, testUser, testPassword, opts...)
}

func smtpConfig(port int, mode, rootCAs string) sender.Config {
	return sender.Config{Type: "smtp", SMTP: &sender.SMTPConfig{
		Host:                "127.0.0.1",
		Port:                port,
		TLS:                 mode,
		Username:            testUser,
		Password:            testPassword,
		From:                testFrom,
		RootCAs:             rootCAs,
		AllowPrivateNetwork: true, // smtptest listens on loopback
	}}
}

func open(t *testing.T, c sender.Config) sender.Sender {
	t.Helper()
	s, err := sender.Builtin().Open(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func message(lang string) sender.Message {
	return sender.Message{
		Tenant:    "acme",
		Channel:   sender.Email,
		To:        testTo,
		Code:      testCode,
		ExpiresAt: time.Now().Add(10 * time.Minute),
		Language:  lang,
	}
}

// send calls Send and fails the test, instead of hanging, if Send has not
// returned shortly before the test's own deadline.
func send(t *testing.T, ctx context.Context, s sender.Sender, m sender.Message) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, m) }()
	var deadline <-chan time.Time
	if d, ok := t.Deadline(); ok {
		timer := time.NewTimer(time.Until(d) * 9 / 10)
		defer timer.Stop()
		deadline = timer.C
	}
	select {
	case err := <-done:
		return err
	case <-deadline:
		t.Fatal("Send did not return before the test deadline")
		return nil
	}
}

func TestSMTPStartTLSWithAuthenticationDeliversTheMessage(t *testing.T) {
	srv := startServer(t, smtptest.StartTLS)
	s := open(t, smtpConfig(srv.Port, "starttls", srv.RootCAs))

	if err := send(t, t.Context(), s, message("en")); err != nil {
		t.Fatal(err)
	}

	d := srv.Received(t, 0)
	if !d.TLS {
		t.Error("the message was not sent over TLS")
	}
	if d.User != testUser || d.Password != testPassword {
		t.Errorf("AUTH PLAIN as %q/%q, want %q/%q", d.User, d.Password, testUser, testPassword)
	}
	if d.From != "no-reply@acme.example" {
		t.Errorf("MAIL FROM %q, want no-reply@acme.example", d.From)
	}
	if len(d.To) != 1 || d.To[0] != testTo {
		t.Errorf("RCPT TO %q, want [%s]", d.To, testTo)
	}

	p := smtptest.Parse(t, d.Data)
	if p.Subject != "Your verification code" {
		t.Errorf("Subject = %q", p.Subject)
	}
	if !strings.Contains(p.Body, testCode) || !strings.Contains(p.Body, "10 minutes") {
		t.Errorf("body does not state the code and its validity:\n%s", p.Body)
	}
	from, err := p.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Acme Café" || from[0].Address != "no-reply@acme.example" {
		t.Errorf("From = %q (%v), want %q", p.Header.Get("From"), err, testFrom)
	}
	to, err := p.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != testTo {
		t.Errorf("To = %q (%v), want %s", p.Header.Get("To"), err, testTo)
	}
	if date, err := p.Header.Date(); err != nil || time.Since(date) > time.Hour {
		t.Errorf("Date = %q (%v)", p.Header.Get("Date"), err)
	}
	if id := p.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@acme.example>") {
		t.Errorf("Message-ID = %q", id)
	}
	if v := p.Header.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version = %q", v)
	}
	mediaType, params, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
	if err != nil || mediaType != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type = %q (%v)", p.Header.Get("Content-Type"), err)
	}
}

func TestSMTPImplicitTLSDelivers(t *testing.T) {
	srv := startServer(t, smtptest.TLS)
	s := open(t, smtpConfig(srv.Port, "tls", srv.RootCAs))

	if err := send(t, t.Context(), s, message("en")); err != nil {
		t.Fatal(err)
	}
	d := srv.Received(t, 0)
	if !d.TLS || d.User != testUser {
		t.Errorf("delivered with tls=%v user=%q, want TLS and %q", d.TLS, d.User, testUser)
	}
	if p := smtptest.Parse(t, d.Data); !strings.Contains(p.Body, testCode) {
		t.Errorf("body does not contain the code:\n%s", p.Body)
	}
}

func TestSMTPWrongPasswordIsAnErrorThatDoesNotLeakThePassword(t *testing.T) {
	srv := startServer(t, smtptest.StartTLS, smtptest.EchoCredentials())
	c := smtpConfig(srv.Port, "starttls", srv.RootCAs)
	const wrong = "wrong-pässword-42"
	c.SMTP.Password = wrong
	s := open(t, c)

	err := send(t, t.Context(), s, message("en"))
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	msg := fmt.Sprintf("%v %+v %q", err, err, err)
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + wrong))
	for _, secret := range []string{wrong, plain, testCode} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q leaks %q", err, secret)
		}
	}
	if !strings.Contains(err.Error(), "auth") || !strings.Contains(err.Error(), "535") {
		t.Errorf("error %q does not say authentication failed", err)
	}
	var smtpErr *smtp.SMTPError
	if !errors.As(err, &smtpErr) || smtpErr.Code != 535 {
		t.Errorf("error %q does not wrap the server's 535", err)
	}
	srv.NoDelivery(t)
}

func TestSMTPServerWithoutSTARTTLSIsRefused(t *testing.T) {
	srv := startServer(t, smtptest.Plain)
	s := open(t, smtpConfig(srv.Port, "starttls", srv.RootCAs))

	err := send(t, t.Context(), s, message("en"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a STARTTLS error", err)
	}
	srv.NoDelivery(t)
}

func TestSMTPTimeoutWhenTheServerNeverAnswers(t *testing.T) {
	port, _ := smtptest.Silent(t)
	c := smtpConfig(port, "starttls", "")
	c.SMTP.Timeout = 300 * time.Millisecond
	s := open(t, c)

	err := send(t, t.Context(), s, message("en"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
}

// A relay may take longer than the send's timeout to judge a recipient at
// RCPT TO (it calls the address's domain, which stalls): that is the
// recipient's failure, as a refusal there is, and neither the relay's own
// nor a caller's giving up. Found by an audit: it was context.DeadlineExceeded,
// which RefusedRecipient leaves out, so a contact change to a free address
// at a stalling domain got 503 where one another account proved, its code
// withheld, got 202. A timeout at another stage (the end of DATA here)
// stays the relay's, and a caller's deadline at RCPT TO the caller's.
func TestARecipientTheRelayTakesTooLongToJudgeIsRefused(t *testing.T) {
	const timeout, stall = time.Second, 5 * time.Second
	for _, tc := range []struct {
		name    string
		relay   smtptest.Option
		caller  time.Duration // the caller's deadline; 0: none
		refused bool          // the recipient's; otherwise the relay's own, or the caller's
	}{
		{"at RCPT TO", smtptest.SlowRecipients(stall, testTo), 0, true},
		{"at the end of DATA", smtptest.Slow(stall), 0, false},
		{"the caller's deadline at RCPT TO", smtptest.SlowRecipients(stall, testTo), timeout / 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, smtptest.StartTLS, tc.relay)
			c := smtpConfig(srv.Port, "starttls", srv.RootCAs)
			c.SMTP.Timeout = timeout
			ctx := t.Context()
			if tc.caller > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.caller)
				defer cancel()
			}
			err := send(t, ctx, open(t, c), message("en"))
			refused, relays := sender.RefusedRecipient(err), errors.Is(err, sender.ErrUnavailable)
			if err == nil || refused != tc.refused || (tc.caller == 0 && relays == tc.refused) {
				t.Fatalf("Send = %v: RefusedRecipient %v, ErrUnavailable %v; want the recipient's %v", err, refused, relays, tc.refused)
			}
			srv.NoDelivery(t)
		})
	}
}

func TestSMTPContextCancellation(t *testing.T) {
	port, accepted := smtptest.Silent(t)
	c := smtpConfig(port, "tls", "")
	c.SMTP.Timeout = sender.MaxTimeout // only the cancellation can end the send (in time)
	s := open(t, c)

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-accepted
		cancel()
	}()
	err := send(t, ctx, s, message("en"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}

	// An already canceled context does not even dial.
	if err := send(t, ctx, s, message("en")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a canceled context = %v, want context.Canceled", err)
	}
}

func TestSMTPRefusesBadMessages(t *testing.T) {
	srv := startServer(t, smtptest.StartTLS)
	s := open(t, smtpConfig(srv.Port, "starttls", srv.RootCAs))

	tests := []struct {
		name string
		edit func(m *sender.Message)
		want string // in the error, if set
	}{
		{"header injection in To is refused", func(m *sender.Message) { m.To = testTo + "\r\nBcc: mallory@evil.example" }, ""},
		{"bare LF in To is refused", func(m *sender.Message) { m.To = testTo + "\nBcc: mallory@evil.example" }, ""},
		{"To with a display name is refused", func(m *sender.Message) { m.To = "Alice <" + testTo + ">" }, ""},
		{"sms is refused", func(m *sender.Message) { m.Channel = sender.SMS; m.To = "+33612345678" }, "smtp sender cannot send sms"},
		{"expired code is refused", func(m *sender.Message) { m.ExpiresAt = time.Now().Add(-time.Second) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := message("en")
			tt.edit(&m)
			err := send(t, t.Context(), s, m)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("Send = %q, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testCode) {
				t.Errorf("error %q leaks the code", err)
			}
			srv.NoDelivery(t)
		})
	}
}

func TestSMTPTemplates(t *testing.T) {
	tests := []struct {
		name, lang, subject, text, contentLanguage string
		encodedSubject                             bool
	}{
		{"french template", "fr", "Votre code de vérification", "Ce code est valable 10 minutes", "fr", true},
		{"french template for a regional tag", "fr-CA", "Votre code de vérification", "Votre code de vérification est : " + testCode, "fr", true},
		{"english", "en-GB", "Your verification code", "Your verification code is: " + testCode, "en", false},
		{"english fallback", "de", "Your verification code", "This code is valid for 10 minutes", "en", false},
		{"english fallback without a language", "", "Your verification code", "This code is valid for 10 minutes", "en", false},
	}
	srv := startServer(t, smtptest.StartTLS)
	s := open(t, smtpConfig(srv.Port, "starttls", srv.RootCAs))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := send(t, t.Context(), s, message(tt.lang)); err != nil {
				t.Fatal(err)
			}
			p := smtptest.Parse(t, srv.Received(t, 0).Data)
			if p.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", p.Subject, tt.subject)
			}
			raw := p.Header.Get("Subject")
			if encoded := strings.HasPrefix(raw, "=?utf-8?"); encoded != tt.encodedSubject {
				t.Errorf("raw Subject %q: RFC 2047 encoded = %v, want %v", raw, encoded, tt.encodedSubject)
			}
			if !strings.Contains(p.Body, tt.text) || !strings.Contains(p.Body, testCode) {
				t.Errorf("body does not contain %q and the code:\n%s", tt.text, p.Body)
			}
			if got := p.Header.Get("Content-Language"); got != tt.contentLanguage {
				t.Errorf("Content-Language = %q, want %q", got, tt.contentLanguage)
			}
		})
	}
}

func TestSMTPNoticeAndLink(t *testing.T) {
	srv := startServer(t, smtptest.StartTLS)
	s := open(t, smtpConfig(srv.Port, "starttls", srv.RootCAs))

	m := message("en")
	m.Code, m.NewContact = "", "n***@e***.com"
	if err := send(t, t.Context(), s, m); err != nil {
		t.Fatal(err)
	}
	p := smtptest.Parse(t, srv.Received(t, 0).Data)
	if p.Subject != "Your contact details changed" || !strings.Contains(p.Body, "n***@e***.com") {
		t.Errorf("notice: %q\n%s", p.Subject, p.Body)
	}

	m = message("fr")
	m.Link = "https://shop.example/check-in?challengeId=c1&code=" + testCode
	if err := send(t, t.Context(), s, m); err != nil {
		t.Fatal(err)
	}
	if p := smtptest.Parse(t, srv.Received(t, 0).Data); !strings.Contains(p.Body, m.Link) || !strings.Contains(p.Body, testCode) {
		t.Errorf("the link is not in the message:\n%s", p.Body)
	}
}

// A notice says what happened to the address it goes to, in the message's
// language: replaced, removed (never "changed to (none)") or a contact
// added to its account.
func TestSMTPNoticeSaysWhatChanged(t *testing.T) {
	srv := startServer(t, smtptest.StartTLS)
	s := open(t, smtpConfig(srv.Port, "starttls", srv.RootCAs))
	for _, tt := range []struct {
		lang       string
		change     sender.Change
		newContact string
		want       string
	}{
		{"en", sender.Replaced, "n***@e***.com", "The contact details of your account were changed to n***@e***.com."},
		{"en", sender.Removed, sender.NoContact, "This email address was removed from your account."},
		{"en", sender.Added, "+33*******02", "+33*******02 was added to the contact details of your account."},
		{"fr", sender.Replaced, "n***@e***.com", "Les coordonnées de votre compte ont été remplacées par n***@e***.com."},
		{"fr", sender.Removed, sender.NoContact, "Cette adresse e-mail a été retirée de votre compte."},
		{"fr", sender.Added, "+33*******02", "+33*******02 a été ajouté aux coordonnées de votre compte."},
	} {
		m := message(tt.lang)
		m.Code, m.NewContact, m.Change = "", tt.newContact, tt.change
		if err := send(t, t.Context(), s, m); err != nil {
			t.Fatal(err)
		}
		if p := smtptest.Parse(t, srv.Received(t, 0).Data); !strings.Contains(p.Body, tt.want) || strings.Contains(p.Body, sender.NoContact) {
			t.Errorf("%s %s: body does not say %q:\n%s", tt.lang, tt.change, tt.want, p.Body)
		}
	}
}

// A code's message names the account fields it fills and only counts the
// free-form properties (their names are the text of whoever sent the
// change), in the message's language.
func TestSMTPSaysWhatTheCodeFills(t *testing.T) {
	srv := startServer(t, smtptest.StartTLS)
	s := open(t, smtpConfig(srv.Port, "starttls", srv.RootCAs))
	for _, tt := range []struct {
		lang string
		more int
		want string
	}{
		{"en", 0, "empty fields of your profile: lastName, postcode."},
		{"en", 1, "empty fields of your profile: lastName, postcode, 1 other property."},
		{"en", 3, "empty fields of your profile: lastName, postcode, 3 other properties."},
		{"fr", 2, "champs vides de votre profil : lastName, postcode, 2 autres propriétés."},
	} {
		m := message(tt.lang)
		m.Fills, m.MoreFills = []string{"lastName", "postcode"}, tt.more
		if err := send(t, t.Context(), s, m); err != nil {
			t.Fatal(err)
		}
		if p := smtptest.Parse(t, srv.Received(t, 0).Data); !strings.Contains(p.Body, tt.want) {
			t.Errorf("%s with %d more: body does not say %q:\n%s", tt.lang, tt.more, tt.want, p.Body)
		}
	}
}

// endless is a relay on 127.0.0.1 that answers every command 250 until the
// one starting with at (the greeting when at is ""), whose reply it never
// ends: continuation lines, for as long as the client reads them. closed
// is closed once a write fails, the client having closed the connection.
func endless(t *testing.T, at string) (port int, closed <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	done := make(chan struct{})
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		code := "220"
		if at != "" {
			_, _ = io.WriteString(c, "220 localhost ready\r\n")
			for code = "250"; ; {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(strings.ToUpper(line), at) {
					break
				}
				_, _ = io.WriteString(c, "250 ok\r\n")
			}
		}
		line := code + "-" + strings.Repeat("A", 996) + "\r\n"
		for {
			if _, err := io.WriteString(c, line); err != nil {
				close(done)
				return
			}
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, done
}

// A relay's reply has no end unless the client gives it one: go-smtp
// bounds each line, not the lines of one reply. The relay that never ends
// its reply is cut off once it has sent maxReplies, as a relay that is
// down (its own failure, whoever the message was for), long before the
// send's timeout.
func TestARelayThatNeverEndsItsReplyIsCutOff(t *testing.T) {
	for _, tc := range []struct{ name, mode, at string }{
		{"the greeting", "starttls", ""},
		{"the reply to RCPT TO", "none", "RCPT TO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, closed := endless(t, tc.at)
			c := smtpConfig(port, tc.mode, "")
			c.SMTP.Username, c.SMTP.Password = "", ""
			c.SMTP.Timeout = sender.MaxTimeout // only the bound can end the send in time
			err := send(t, t.Context(), open(t, c), message("en"))
			if !errors.Is(err, sender.ErrUnavailable) || sender.RefusedRecipient(err) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send = %v, want the relay unavailable", err)
			}
			select {
			case <-closed:
			case <-t.Context().Done():
				t.Fatal("the relay never saw the connection closed")
			}
		})
	}
}
