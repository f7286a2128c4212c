package sender_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/customerd/customerd/sender"
)

const (
	testUser     = "mailer@acme.example"
	testPassword = "correct-hörse-battery"
	testFrom     = "Acme Café <no-reply@acme.example>"
	testTo       = "alice@example.com"
	testCode     = "402913"
)

// delivery is what the test server saw of one accepted message.
type delivery struct {
	tls      bool
	user     string // authenticated with AUTH PLAIN, "" without
	password string
	from     string
	to       []string
	data     []byte
}

// backend is a real go-smtp server backend that records deliveries.
type backend struct {
	user, password string // the only accepted credentials, if user is set
	// echoCredentials makes a failed AUTH answer with the credentials it
	// got, like a careless server would: the client must not repeat them.
	echoCredentials bool
	deliveries      chan delivery
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{b: b, d: delivery{tls: isTLS}}, nil
}

type session struct {
	b *backend
	d delivery
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.b.user || password != s.b.password {
			if s.b.echoCredentials {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
					Message: fmt.Sprintf("bad credentials %s:%s (AUTH PLAIN %s)", username, password,
						base64.StdEncoding.EncodeToString([]byte("\x00"+username+"\x00"+password)))}
			}
			return smtp.ErrAuthFailed
		}
		s.d.user, s.d.password = username, password
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.d.user == "" {
		return smtp.ErrAuthRequired
	}
	s.d.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.d.to = append(s.d.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	d := s.d
	d.data = data
	s.b.deliveries <- d
	return nil
}

func (s *session) Reset()        { s.d.from, s.d.to = "", nil }
func (s *session) Logout() error { return nil }

// certificate returns a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// localhost, and the path of its PEM, to trust through SMTPConfig.RootCAs.
func certificate(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "customerd sender test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// server modes.
const (
	offerStartTLS = "starttls"
	implicitTLS   = "tls"
	plainOnly     = "plain" // no STARTTLS offered
)

// startServer starts a go-smtp server on 127.0.0.1:0 and returns its port
// and the path of the CA to trust.
func startServer(t *testing.T, b *backend, mode string) (port int, rootCAs string) {
	t.Helper()
	cert, rootCAs := certificate(t)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}

	s := smtp.NewServer(b)
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	switch mode {
	case offerStartTLS:
		s.TLSConfig = tlsConfig
	case implicitTLS:
		s.TLSConfig = tlsConfig
		l = tls.NewListener(l, tlsConfig)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return port, rootCAs
}

// silentServer accepts connections and never says a word. accepted receives
// each connection once it is accepted.
func silentServer(t *testing.T) (port int, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			ch <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port, ch
}

func newBackend() *backend {
	return &backend{user: testUser, password: testPassword, deliveries: make(chan delivery, 10)}
}

func smtpConfig(port int, mode, rootCAs string) sender.Config {
	return sender.Config{Type: "smtp", SMTP: &sender.SMTPConfig{
		Host:     "127.0.0.1",
		Port:     port,
		TLS:      mode,
		Username: testUser,
		Password: testPassword,
		From:     testFrom,
		RootCAs:  rootCAs,
	}}
}

func open(t *testing.T, c sender.Config) sender.Sender {
	t.Helper()
	s, err := c.Open(slog.New(slog.DiscardHandler))
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

func received(t *testing.T, b *backend) delivery {
	t.Helper()
	select {
	case d := <-b.deliveries:
		return d
	default:
		t.Fatal("the server received no message")
		return delivery{}
	}
}

func noDelivery(t *testing.T, b *backend) {
	t.Helper()
	select {
	case d := <-b.deliveries:
		t.Errorf("the server received a message:\n%s", d.data)
	default:
	}
}

// parsed is a received message, decoded.
type parsed struct {
	header  mail.Header
	subject string // decoded from RFC 2047
	body    string // decoded from quoted-printable
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("message has a bare LF:\n%q", data)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
		t.Errorf("Content-Transfer-Encoding = %q, want quoted-printable", got)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return parsed{header: msg.Header, subject: subject, body: string(body)}
}

func TestSMTPStartTLSWithAuthenticationDeliversTheMessage(t *testing.T) {
	b := newBackend()
	port, rootCAs := startServer(t, b, offerStartTLS)
	s := open(t, smtpConfig(port, "starttls", rootCAs))

	if err := send(t, t.Context(), s, message("en")); err != nil {
		t.Fatal(err)
	}

	d := received(t, b)
	if !d.tls {
		t.Error("the message was not sent over TLS")
	}
	if d.user != testUser || d.password != testPassword {
		t.Errorf("AUTH PLAIN as %q/%q, want %q/%q", d.user, d.password, testUser, testPassword)
	}
	if d.from != "no-reply@acme.example" {
		t.Errorf("MAIL FROM %q, want no-reply@acme.example", d.from)
	}
	if len(d.to) != 1 || d.to[0] != testTo {
		t.Errorf("RCPT TO %q, want [%s]", d.to, testTo)
	}

	p := parse(t, d.data)
	if p.subject != "Your verification code" {
		t.Errorf("Subject = %q", p.subject)
	}
	if !strings.Contains(p.body, testCode) || !strings.Contains(p.body, "10 minutes") {
		t.Errorf("body does not state the code and its validity:\n%s", p.body)
	}
	from, err := p.header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Acme Café" || from[0].Address != "no-reply@acme.example" {
		t.Errorf("From = %q (%v), want %q", p.header.Get("From"), err, testFrom)
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != testTo {
		t.Errorf("To = %q (%v), want %s", p.header.Get("To"), err, testTo)
	}
	if date, err := p.header.Date(); err != nil || time.Since(date) > time.Hour {
		t.Errorf("Date = %q (%v)", p.header.Get("Date"), err)
	}
	if id := p.header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@acme.example>") {
		t.Errorf("Message-ID = %q", id)
	}
	if v := p.header.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version = %q", v)
	}
	mediaType, params, err := mime.ParseMediaType(p.header.Get("Content-Type"))
	if err != nil || mediaType != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type = %q (%v)", p.header.Get("Content-Type"), err)
	}
}

func TestSMTPImplicitTLSDelivers(t *testing.T) {
	b := newBackend()
	port, rootCAs := startServer(t, b, implicitTLS)
	s := open(t, smtpConfig(port, "tls", rootCAs))

	if err := send(t, t.Context(), s, message("en")); err != nil {
		t.Fatal(err)
	}
	d := received(t, b)
	if !d.tls || d.user != testUser {
		t.Errorf("delivered with tls=%v user=%q, want TLS and %q", d.tls, d.user, testUser)
	}
	if p := parse(t, d.data); !strings.Contains(p.body, testCode) {
		t.Errorf("body does not contain the code:\n%s", p.body)
	}
}

func TestSMTPWrongPasswordIsAnErrorThatDoesNotLeakThePassword(t *testing.T) {
	b := newBackend()
	b.echoCredentials = true
	port, rootCAs := startServer(t, b, offerStartTLS)
	c := smtpConfig(port, "starttls", rootCAs)
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
	noDelivery(t, b)
}

func TestSMTPServerWithoutSTARTTLSIsRefused(t *testing.T) {
	b := newBackend()
	port, rootCAs := startServer(t, b, plainOnly)
	s := open(t, smtpConfig(port, "starttls", rootCAs))

	err := send(t, t.Context(), s, message("en"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a STARTTLS error", err)
	}
	noDelivery(t, b)
}

func TestSMTPTimeoutWhenTheServerNeverAnswers(t *testing.T) {
	port, _ := silentServer(t)
	c := smtpConfig(port, "starttls", "")
	c.SMTP.Timeout = 300 * time.Millisecond
	s := open(t, c)

	err := send(t, t.Context(), s, message("en"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
}

func TestSMTPContextCancellation(t *testing.T) {
	port, accepted := silentServer(t)
	c := smtpConfig(port, "tls", "")
	c.SMTP.Timeout = time.Hour // only the cancellation can end the send
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
	b := newBackend()
	port, rootCAs := startServer(t, b, offerStartTLS)
	s := open(t, smtpConfig(port, "starttls", rootCAs))

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
			noDelivery(t, b)
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
	b := newBackend()
	port, rootCAs := startServer(t, b, offerStartTLS)
	s := open(t, smtpConfig(port, "starttls", rootCAs))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := send(t, t.Context(), s, message(tt.lang)); err != nil {
				t.Fatal(err)
			}
			p := parse(t, received(t, b).data)
			if p.subject != tt.subject {
				t.Errorf("Subject = %q, want %q", p.subject, tt.subject)
			}
			raw := p.header.Get("Subject")
			if encoded := strings.HasPrefix(raw, "=?utf-8?"); encoded != tt.encodedSubject {
				t.Errorf("raw Subject %q: RFC 2047 encoded = %v, want %v", raw, encoded, tt.encodedSubject)
			}
			if !strings.Contains(p.body, tt.text) || !strings.Contains(p.body, testCode) {
				t.Errorf("body does not contain %q and the code:\n%s", tt.text, p.body)
			}
			if got := p.header.Get("Content-Language"); got != tt.contentLanguage {
				t.Errorf("Content-Language = %q, want %q", got, tt.contentLanguage)
			}
		})
	}
}

func TestSMTPNoticeAndLink(t *testing.T) {
	b := newBackend()
	port, rootCAs := startServer(t, b, offerStartTLS)
	s := open(t, smtpConfig(port, "starttls", rootCAs))

	m := message("en")
	m.Code, m.NewContact = "", "n***@e***.com"
	if err := send(t, t.Context(), s, m); err != nil {
		t.Fatal(err)
	}
	p := parse(t, received(t, b).data)
	if p.subject != "Your contact details changed" || !strings.Contains(p.body, "n***@e***.com") {
		t.Errorf("notice: %q\n%s", p.subject, p.body)
	}

	m = message("fr")
	m.Link = "https://shop.example/check-in?challengeId=c1&code=" + testCode
	if err := send(t, t.Context(), s, m); err != nil {
		t.Fatal(err)
	}
	if p := parse(t, received(t, b).data); !strings.Contains(p.body, m.Link) || !strings.Contains(p.body, testCode) {
		t.Errorf("the link is not in the message:\n%s", p.body)
	}
}
