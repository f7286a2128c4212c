package sender

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/customerd/customerd/egress"
)

// defaultSMTPTimeout bounds a whole send when SMTPConfig.Timeout is zero.
const defaultSMTPTimeout = 10 * time.Second

// smtpSender submits each message to one SMTP server, on a new connection.
type smtpSender struct {
	logger    *slog.Logger
	addr      string // host:port
	mode      string // tlsStartTLS, tlsImplicit or tlsNone
	loopback  bool
	dial      egress.Options
	tlsConfig *tls.Config
	username  string
	password  string
	from      *mail.Address
	domain    string // of from, for Message-ID
	localName string // for EHLO
	timeout   time.Duration
}

func newSMTPSender(c SMTPConfig, logger *slog.Logger) (*smtpSender, error) {
	from, err := parseFrom(c.From)
	if err != nil {
		return nil, err
	}
	s := &smtpSender{
		logger:    logger,
		mode:      c.TLS,
		loopback:  egress.IsLoopback(c.Host),
		dial:      egress.Options{AllowPrivateNetwork: c.AllowPrivateNetwork},
		username:  c.Username,
		password:  c.Password,
		from:      from,
		domain:    from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		localName: localName(),
		timeout:   c.Timeout,
	}
	if s.mode == "" {
		s.mode = tlsStartTLS
	}
	if s.timeout == 0 {
		s.timeout = defaultSMTPTimeout
	}
	port := c.Port
	if port == 0 {
		switch s.mode {
		case tlsImplicit:
			port = 465
		case tlsNone:
			port = 25
		default:
			port = 587
		}
	}
	s.addr = net.JoinHostPort(c.Host, strconv.Itoa(port))
	if s.mode != tlsNone {
		s.tlsConfig = &tls.Config{
			ServerName:         c.Host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: c.InsecureSkipVerify, // tests only, see SMTPConfig
		}
		if c.RootCAs != "" {
			pem, err := readRootCAs(c.RootCAs)
			if err != nil {
				return nil, fmt.Errorf("smtp.rootCAs: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("smtp.rootCAs: no PEM certificate in %s", c.RootCAs)
			}
			s.tlsConfig.RootCAs = pool
		}
	}
	return s, nil
}

// maxRootCAs bounds the PEM bundle smtp.rootCAs names (a system's whole
// bundle is about 200 KiB).
const maxRootCAs = 1 << 20

// readRootCAs reads the PEM bundle at path: a regular file of at most
// maxRootCAs bytes, so that a path such as /dev/zero or a FIFO cannot make
// building a tenant read without end or wait for a writer.
func readRootCAs(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxRootCAs+1))
	if err == nil && len(pem) > maxRootCAs {
		err = fmt.Errorf("%s is larger than %d KiB", path, maxRootCAs>>10)
	}
	return pem, err
}

// localName is the name the sender gives in EHLO: the host name when it is
// a plausible domain, else "localhost".
func localName() string {
	name, err := os.Hostname()
	if err != nil || name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return "localhost"
	}
	return name
}

// Send delivers an email message. It never logs the code, and no error it
// returns contains the code or the password, even when the server echoes
// them back.
func (s *smtpSender) Send(ctx context.Context, m Message) error {
	switch m.Channel {
	case Email:
	case SMS:
		return errors.New("smtp sender cannot send sms")
	default:
		return fmt.Errorf("smtp sender: unknown channel %q", m.Channel)
	}
	if strings.ContainsAny(m.To, "\r\n") {
		return errors.New("smtp sender: recipient contains a line break")
	}
	if to, err := mail.ParseAddress(m.To); err != nil || to.Name != "" || to.Address != m.To {
		return errors.New("smtp sender: recipient is not a bare email address")
	}
	if m.Code == "" && m.NewContact == "" {
		return errors.New("smtp sender: message has no code")
	}
	msg, id, err := s.compose(m, time.Now())
	if err != nil {
		return err
	}

	sendCtx, cancel := context.WithTimeoutCause(ctx, s.timeout, errTimedOut)
	defer cancel()
	resp, err := s.deliver(sendCtx, m.To, msg)
	if err != nil {
		if sendCtx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (timeout %s)", err, s.timeout)
		}
		return s.redact(err, m.Code, m.To)
	}
	s.logger.LogAttrs(ctx, slog.LevelDebug, "otp email accepted",
		slog.String("tenant", m.Tenant),
		slog.String("messageID", id),
		slog.String("response", s.redactString(resp, m.Code, m.To)),
	)
	return nil
}

// deliver runs one SMTP transaction on a new connection and returns the
// server's reply to the message. ctx bounds all of it: when ctx ends, the
// connection is closed, which unblocks any read or write in progress.
func (s *smtpSender) deliver(ctx context.Context, to string, msg []byte) (string, error) {
	at := func(stage string, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil && err != errTimedOut { // refused has said why
			err = ctxErr // the connection failed because ctx closed it
		}
		err = fmt.Errorf("smtp sender: %s: %w", stage, err)
		if errors.Is(err, errRepliesTooLong) {
			return unavailable(err) // the relay's own, whatever it answered
		}
		return err
	}
	// Every stage but RCPT TO (and a permanent refusal of the message) is
	// the relay's own: it happens whoever the message is for.
	fail := func(stage string, err error) error { return unavailable(at(stage, err)) }
	// RCPT TO fails for the recipient, whatever the relay answered or
	// however long it took (checking an address may call its domain, which
	// may stall): the caller chose the address. The send's own timeout there
	// is errTimedOut, not context.DeadlineExceeded, which RefusedRecipient
	// takes for a caller that gave up: a free address at a stalling domain
	// got 503 where one another account proved, its code withheld, got 202.
	refused := func(stage string, err error) error {
		if context.Cause(ctx) == errTimedOut {
			err = errTimedOut
		}
		return at(stage, err)
	}

	dial := s.dial.DialContext
	if s.mode == tlsNone {
		dial = s.dial.DialPlainContext // never a public address in clear
	}
	raw, err := dial(ctx, "tcp", s.addr)
	if err != nil {
		return "", fail("dial", err)
	}
	// Under TLS too (the handshake counts): every byte the relay sends.
	conn := &repliesConn{Conn: raw, left: maxReplies}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *smtp.Client
	switch s.mode {
	case tlsImplicit:
		tc := tls.Client(conn, s.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", fail("tls handshake", err)
		}
		c = smtp.NewClient(tc)
	case tlsStartTLS:
		// Greets, says EHLO and refuses a server that does not offer STARTTLS.
		c, err = smtp.NewClientStartTLS(conn, s.tlsConfig)
		if err != nil {
			return "", fail("starttls", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout = s.timeout
	c.SubmissionTimeout = s.timeout

	if err := c.Hello(s.localName); err != nil {
		return "", fail("hello", err)
	}
	if s.username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !s.loopback {
			return "", unavailable(errors.New("smtp sender: auth: refusing to authenticate without TLS"))
		}
		if !c.SupportsAuth("PLAIN") {
			return "", unavailable(errors.New("smtp sender: auth: server does not offer AUTH PLAIN"))
		}
		if err := c.Auth(sasl.NewPlainClient("", s.username, s.password)); err != nil {
			return "", fail("auth", err)
		}
	}
	var opts *smtp.MailOptions
	if !isASCII(s.from.Address) || !isASCII(to) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(s.from.Address, opts); err != nil {
		if opts != nil && isASCII(s.from.Address) {
			// SMTPUTF8 was asked for the recipient alone (a relay without it
			// refuses it here): the recipient's failure, as at RCPT TO.
			return "", refused("mail from", err)
		}
		return "", fail("mail from", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return "", refused("rcpt to", err)
	}
	// A permanent refusal of the message (5xx) may be the recipient's, told
	// late: a relay that checks its recipients once it has the message
	// (Amazon SES's sandbox, for an address it has not verified). A relay
	// that cannot take the message now answers 4xx, or nothing.
	refusedData := func(err error) error {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return at("data", err)
		}
		return fail("data", err)
	}
	w, err := c.Data()
	if err != nil {
		return "", refusedData(err)
	}
	if _, err := w.Write(msg); err != nil {
		return "", fail("data", err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", refusedData(err)
	}
	// The message is accepted: a failed QUIT changes nothing for the caller.
	_ = c.Quit()
	return resp.StatusText, nil
}

// errTimedOut is why a send that took its whole timeout ended: the error
// of a stage that is the recipient's (deliver); the relay's own stages say
// context.DeadlineExceeded, marked ErrUnavailable.
var errTimedOut = errors.New("no answer in time")

// maxReplies bounds what a relay may send in one transaction, TLS
// handshakes included. go-smtp bounds a line, not a reply: a relay sending
// continuation lines ("220-…") for as long as the send's timeout would
// grow one buffer without end.
const maxReplies = 64 << 10

var errRepliesTooLong = fmt.Errorf("the relay's replies exceed %d KiB", maxReplies>>10)

// repliesConn is a connection that reads at most left bytes more, then
// fails with errRepliesTooLong.
type repliesConn struct {
	net.Conn
	left int
}

func (c *repliesConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errRepliesTooLong
	}
	n, err := c.Conn.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// compose renders m as an RFC 5322 message with CRLF line endings and returns
// it with its Message-ID.
func (s *smtpSender) compose(m Message, now time.Time) (msg []byte, id string, err error) {
	minutes := int(math.Ceil(m.ExpiresAt.Sub(now).Minutes()))
	if m.NewContact != "" {
		minutes = 1 // a notice has no code to expire
	}
	if minutes < 1 {
		return nil, "", fmt.Errorf("smtp sender: code expired at %s", m.ExpiresAt.Format(time.RFC3339))
	}
	t := templateFor(m.Language)
	id = "<" + rand.Text() + "@" + s.domain + ">"
	subject, body := t.subject, t.body(m.Code, minutes)
	if m.NewContact != "" {
		what, advice := noticeText(m)
		subject, body = t.noticeSubject, what+"\n\n"+advice+"\n"
	}

	var b bytes.Buffer
	for _, h := range [][2]string{
		{"From", s.from.String()},
		{"To", (&mail.Address{Address: m.To}).String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)}, // RFC 2047 only when needed
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", id},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"Content-Language", t.lang},
		{"Auto-Submitted", "auto-generated"}, // RFC 3834: no auto-replies
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b) // writes line breaks as CRLF
	if fills := fillsText(m, french(m.Language)); fills != "" {
		body += "\n" + t.fills(fills) + "\n"
	}
	if m.Link != "" {
		body += "\n" + m.Link + "\n"
	}
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, "", fmt.Errorf("smtp sender: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, "", fmt.Errorf("smtp sender: encode body: %w", err)
	}
	return b.Bytes(), id, nil
}

// template is the text of a code email in one language.
type template struct {
	lang    string
	subject string
	body    func(code string, minutes int) string
	// noticeSubject is a notice's (noticeText is its body).
	noticeSubject string
	// fills says which empty fields of the account the code will fill.
	fills func(fields string) string
}

// french reports whether a BCP 47 tag (or a locale such as fr_CA) is French.
func french(tag string) bool {
	primary, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
	return strings.EqualFold(primary, "fr")
}

// templateFor returns the template for a BCP 47 language tag: French for
// any "fr" tag, English otherwise.
func templateFor(tag string) template {
	if french(tag) {
		return template{
			lang:    "fr",
			subject: "Votre code de vérification",
			body: func(code string, minutes int) string {
				return "Votre code de vérification est : " + code + "\n\n" +
					"Ce code est valable " + plural(minutes, "minute", "minutes") + ".\n" +
					"Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n"
			},
			noticeSubject: "Vos coordonnées ont changé",
			fills: func(fields string) string {
				return "Ce code complétera aussi ces champs vides de votre profil : " + fields + "."
			},
		}
	}
	return template{
		lang:    "en",
		subject: "Your verification code",
		body: func(code string, minutes int) string {
			return "Your verification code is: " + code + "\n\n" +
				"This code is valid for " + plural(minutes, "minute", "minutes") + ".\n" +
				"If you did not request it, you can ignore this message.\n"
		},
		noticeSubject: "Your contact details changed",
		fills: func(fields string) string {
			return "This code will also fill in these empty fields of your profile: " + fields + "."
		},
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// redactString replaces the code and the credentials in s, in case a server
// echoed them back, and the recipient's address, which a server refusing it
// quotes ("550 5.1.1 <jane@…>: Recipient address rejected"): an address a
// stranger typed stays out of errors and logs.
func (s *smtpSender) redactString(str, code, to string) string {
	secrets := []string{code}
	if s.password != "" {
		plain := base64.StdEncoding.EncodeToString([]byte("\x00" + s.username + "\x00" + s.password))
		secrets = append(secrets, plain, s.password)
	}
	for _, secret := range secrets {
		if secret != "" {
			str = strings.ReplaceAll(str, secret, "[redacted]")
		}
	}
	if to != "" {
		str = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(to)).ReplaceAllLiteralString(str, "[recipient]")
	}
	return str
}

// redact returns err, or an error with the same chain but a message scrubbed
// of the code, the credentials and the recipient if err's message contains them.
func (s *smtpSender) redact(err error, code, to string) error {
	msg := err.Error()
	if clean := s.redactString(msg, code, to); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// redactedError keeps errors.Is and errors.As working on a scrubbed error.
// Its Unwrap still reaches the original, unscrubbed error: never log that.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
