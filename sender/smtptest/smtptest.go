// Package smtptest runs a real SMTP server for tests: a
// github.com/emersion/go-smtp server on 127.0.0.1, with a self-signed
// certificate for 127.0.0.1 and localhost, that accepts AUTH PLAIN with one
// set of credentials and records every message it accepts.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Server modes, for Start.
const (
	StartTLS = "starttls" // plain text, offers STARTTLS
	TLS      = "tls"      // implicit TLS from the first byte
	Plain    = "plain"    // plain text, no STARTTLS offered
)

// Delivery is what the server saw of one accepted message.
type Delivery struct {
	TLS      bool   // the session was over TLS when the message was sent
	User     string // authenticated with AUTH PLAIN, "" without
	Password string
	From     string   // MAIL FROM
	To       []string // RCPT TO
	Data     []byte   // the message, as sent after DATA
}

// Server is a running test SMTP server. It is closed when the test ends.
type Server struct {
	// Port is the server's port on 127.0.0.1.
	Port int
	// RootCAs is the path of the PEM of the server's self-signed
	// certificate, for sender.SMTPConfig.RootCAs.
	RootCAs string
	// Deliveries receives each accepted message. It buffers 10; the server
	// blocks on the eleventh unread one.
	Deliveries chan Delivery

	user, password  string // the only accepted credentials, if user is set
	echoCredentials bool
	refuseRcpt      atomic.Bool
	refused         map[string]bool // recipients always answered 550
	refusedAtData   map[string]bool // recipients whose message is answered 554 after DATA
	unavailable     atomic.Bool
	slow            time.Duration            // how long a message takes to be taken
	slowRcpt        map[string]time.Duration // how long RCPT TO takes to answer, by recipient
}

// Option configures Start.
type Option func(*Server)

// EchoCredentials makes a failed AUTH answer 535 with the credentials it
// got, in clear and as the AUTH PLAIN blob, like a careless server would: the
// client must not repeat them.
func EchoCredentials() Option { return func(s *Server) { s.echoCredentials = true } }

// RefusingRecipients makes the server answer RCPT TO for each of to with a
// permanent 550 (no such mailbox), and take every other recipient.
func RefusingRecipients(to ...string) Option {
	return func(s *Server) {
		for _, addr := range to {
			s.refused[addr] = true
		}
	}
}

// RefusingAtData makes the server take RCPT TO for each of to, then answer
// the message with a permanent 554 at the end of DATA, as a relay that
// checks its recipients late does (Amazon SES's sandbox refuses an
// unverified address there).
func RefusingAtData(to ...string) Option {
	return func(s *Server) {
		for _, addr := range to {
			s.refusedAtData[addr] = true
		}
	}
}

// Slow makes the server take d to answer a message at the end of DATA, as
// a relay does that checks it before it takes it.
func Slow(d time.Duration) Option { return func(s *Server) { s.slow = d } }

// SlowRecipients makes the server take d to answer RCPT TO for each of to,
// as a relay does that checks a recipient with its domain's server when that
// server stalls (Exim's verify = recipient/callout).
func SlowRecipients(d time.Duration, to ...string) Option {
	return func(s *Server) {
		for _, addr := range to {
			s.slowRcpt[addr] = d
		}
	}
}

// Start starts a server on 127.0.0.1:0 in mode (StartTLS, TLS or Plain).
// With user set, the server requires AUTH PLAIN with user and password
// before MAIL FROM; with user "", it takes mail from anyone.
func Start(t testing.TB, mode string, user, password string, opts ...Option) *Server {
	t.Helper()
	s := &Server{user: user, password: password, Deliveries: make(chan Delivery, 10), refused: map[string]bool{}, refusedAtData: map[string]bool{},
		slowRcpt: map[string]time.Duration{}}
	for _, o := range opts {
		o(s)
	}
	cert, rootCAs := certificate(t)
	s.RootCAs = rootCAs
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}

	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	switch mode {
	case StartTLS:
		srv.TLSConfig = tlsConfig
	case TLS:
		srv.TLSConfig = tlsConfig
		l = tls.NewListener(l, tlsConfig)
	case Plain:
	default:
		l.Close()
		t.Fatalf("smtptest: unknown mode %q, have [%s %s %s]", mode, StartTLS, TLS, Plain)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		// Serve may start after Close (a busy machine): closing the listener
		// too makes it return either way.
		_ = l.Close()
		<-done
	})
	return s
}

// RefuseRecipients makes the server answer every RCPT TO with a permanent
// 550 while refuse is set, so that no message gets through.
func (s *Server) RefuseRecipients(refuse bool) { s.refuseRcpt.Store(refuse) }

// Unavailable makes the server answer every new session's EHLO with 421
// (service not available) while down is set, as a relay out of service or
// refusing the client does: before any recipient is named.
func (s *Server) Unavailable(down bool) { s.unavailable.Store(down) }

// Received returns the next accepted message, waiting up to timeout for it;
// with timeout <= 0, the message must already be there. It fails t if none
// comes.
func (s *Server) Received(t testing.TB, timeout time.Duration) Delivery {
	t.Helper()
	if timeout <= 0 {
		select {
		case d := <-s.Deliveries:
			return d
		default:
			t.Fatal("the server received no message")
			return Delivery{}
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case d := <-s.Deliveries:
		return d
	case <-timer.C:
		t.Fatalf("the server received no message in %s", timeout)
		return Delivery{}
	}
}

// NoDelivery fails t, without stopping it, if the server holds an accepted
// message.
func (s *Server) NoDelivery(t testing.TB) {
	t.Helper()
	select {
	case d := <-s.Deliveries:
		t.Errorf("the server received a message:\n%s", d.Data)
	default:
	}
}

// backend is the go-smtp backend of a Server.
type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if b.s.unavailable.Load() {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "service not available"}
	}
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, d: Delivery{TLS: isTLS}}, nil
}

type session struct {
	s *Server
	d Delivery
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.s.user || password != s.s.password {
			if s.s.echoCredentials {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
					Message: fmt.Sprintf("bad credentials %s:%s (AUTH PLAIN %s)", username, password,
						base64.StdEncoding.EncodeToString([]byte("\x00"+username+"\x00"+password)))}
			}
			return smtp.ErrAuthFailed
		}
		s.d.User, s.d.Password = username, password
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.s.user != "" && s.d.User == "" {
		return smtp.ErrAuthRequired
	}
	s.d.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	time.Sleep(s.s.slowRcpt[to])
	if s.s.refuseRcpt.Load() || s.s.refused[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
	}
	s.d.To = append(s.d.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, to := range s.d.To {
		if s.s.refusedAtData[to] {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message rejected: address is not verified"}
		}
	}
	time.Sleep(s.s.slow)
	d := s.d
	d.Data = data
	s.s.Deliveries <- d
	return nil
}

func (s *session) Reset()        { s.d.From, s.d.To = "", nil }
func (s *session) Logout() error { return nil }

// certificate returns a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// localhost, and the path of its PEM in t's temporary folder.
func certificate(t testing.TB) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "customerd smtptest"},
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

// Silent starts a server that accepts connections and never says a word.
// accepted receives once per accepted connection (it buffers 10).
func Silent(t testing.TB) (port int, accepted <-chan struct{}) {
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
			select {
			case ch <- struct{}{}:
			default: // nobody is counting past 10
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port, ch
}

// Message is a delivered message, decoded.
type Message struct {
	Header  mail.Header
	Subject string // decoded from RFC 2047
	Body    string // decoded from quoted-printable
}

// Parse decodes a delivered message: its header, its RFC 2047 subject and
// its quoted-printable body. It also fails t, without stopping it, if the
// message has a bare LF or its Content-Transfer-Encoding is not
// quoted-printable, and stops t if the message cannot be read.
func Parse(t testing.TB, data []byte) Message {
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
	return Message{Header: msg.Header, Subject: subject, Body: string(body)}
}
