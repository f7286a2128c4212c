// Package sender delivers customerd's one-time codes to the people who asked
// for them: a Message (tenant, channel, destination, code, expiry, language)
// goes out as an email over SMTP, an SMS through Twilio or the tenant's own
// gateway (a signed webhook) or, in development, as a log line.
//
// Each tenant configures one sender per channel with a Config, decoded from
// the service configuration; a Registry of the sender types (Builtin) checks
// it at startup and opens the live Sender.
//
// A one-time code is a credential. The "log" sender is the only place in the
// service that ever writes one to a log; no other sender puts a code or a
// password in a log line or an error string.
package sender

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/customerd/customerd/egress"
)

// Channel is how a code travels.
type Channel string

// The channels a code can travel on.
const (
	Email Channel = "email"
	SMS   Channel = "sms"
)

// Message is one one-time code to deliver.
type Message struct {
	Tenant    string // tenant id, for logs and templates
	Channel   Channel
	To        string // full destination: a normalised email or an E.164 number
	Code      string // the 6-digit code
	ExpiresAt time.Time
	Language  string // BCP 47, e.g. "fr" or "en"; templates in fr and en, fallback en
	// Link, when set, is a page address carrying the challenge id and the code,
	// offered beside the code (a partial check-in).
	Link string
	// NewContact, when set, makes the message a notice without a code to a
	// verified contact of an account: the account's new contact (masked),
	// or NoContact; Change says what happened (Replaced when empty).
	NewContact string
	Change     Change
	// Fills names the empty fields of the account that completing the
	// challenge will fill with what an anonymous request held, so that the
	// owner knows what the code confirms; MoreFills counts the free-form
	// properties it fills besides (their names are a stranger's text, never
	// shown).
	Fills     []string
	MoreFills int
}

// Change is what a notice tells the verified contact it goes to.
type Change string

// The changes a notice tells of.
const (
	Replaced Change = "replaced" // the recipient was replaced by NewContact
	Removed  Change = "removed"  // the recipient was removed from the account (NewContact is NoContact)
	Added    Change = "added"    // NewContact was added to the recipient's account
)

// NoContact is a removal notice's NewContact: the account has no contact
// of the recipient's kind now.
const NoContact = "(none)"

// change is what m, a notice, tells of.
func (m Message) change() Change { return cmp.Or(m.Change, Replaced) }

// noticeWords are a notice's sentences in one language; %s is the new
// contact.
type noticeWords struct{ replaced, added, removedEmail, removedPhone, advice string }

var (
	noticeEnglish = noticeWords{
		replaced:     "The contact details of your account were changed to %s.",
		added:        "%s was added to the contact details of your account.",
		removedEmail: "This email address was removed from your account.",
		removedPhone: "This phone number was removed from your account.",
		advice:       "If you did not make this change, contact us.",
	}
	noticeFrench = noticeWords{
		replaced:     "Les coordonnées de votre compte ont été remplacées par %s.",
		added:        "%s a été ajouté aux coordonnées de votre compte.",
		removedEmail: "Cette adresse e-mail a été retirée de votre compte.",
		removedPhone: "Ce numéro de téléphone a été retiré de votre compte.",
		advice:       "Si vous n'êtes pas à l'origine de ce changement, contactez-nous.",
	}
)

// noticeText is a notice's two sentences, in French or English: what
// changed, and what to do about a change the recipient did not make.
func noticeText(m Message) (what, advice string) {
	w := noticeEnglish
	if french(m.Language) {
		w = noticeFrench
	}
	switch {
	case m.change() == Added:
		what = fmt.Sprintf(w.added, m.NewContact)
	case m.change() == Removed && m.Channel == Email:
		what = w.removedEmail
	case m.change() == Removed:
		what = w.removedPhone
	default:
		what = fmt.Sprintf(w.replaced, m.NewContact)
	}
	return what, w.advice
}

// fillsText is what m's code fills, in French or English ("" for nothing).
func fillsText(m Message, french bool) string {
	list := slices.Clone(m.Fills)
	switch n := m.MoreFills; {
	case n == 1 && french:
		list = append(list, "1 autre propriété")
	case n > 1 && french:
		list = append(list, fmt.Sprintf("%d autres propriétés", n))
	case n == 1:
		list = append(list, "1 other property")
	case n > 1:
		list = append(list, fmt.Sprintf("%d other properties", n))
	}
	return strings.Join(list, ", ")
}

// Sender delivers messages. A returned error means the message was not
// accepted for delivery.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Sender types.
const (
	typeLog     = "log"
	typeSMTP    = "smtp"
	typeTwilio  = "twilio"
	typeWebhook = "webhook"
)

// Config is the typed configuration of one sender, decoded from YAML (yaml
// tags, camelCase) and JSON.
type Config struct {
	// Type is "log" (development only: codes are written to the log) or
	// "smtp". The smtp block is ignored when Type is "log".
	Type    string         `yaml:"type" json:"type"`
	SMTP    *SMTPConfig    `yaml:"smtp,omitempty" json:"smtp,omitempty"`
	Twilio  *TwilioConfig  `yaml:"twilio,omitempty" json:"twilio,omitempty"`
	Webhook *WebhookConfig `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	// Countries (sms) lists the ISO 3166-1 alpha-2 countries codes may be
	// sent to; empty allows any. The defence against SMS pumping.
	Countries []string `yaml:"countries,omitempty" json:"countries,omitempty"`
	// DailyBudget caps the messages the tenant sends on the channel per UTC
	// day, across replicas (429 beyond it); 0 means no cap.
	DailyBudget int `yaml:"dailyBudget,omitempty" json:"dailyBudget,omitempty"`
}

// TLS modes of SMTPConfig.TLS.
const (
	tlsStartTLS = "starttls"
	tlsImplicit = "tls"
	tlsNone     = "none"
)

// SMTPConfig configures the smtp sender, which submits each message to one
// SMTP server (a relay or a provider's submission endpoint).
type SMTPConfig struct {
	// Host is the server's host name or IP address, without a port. Required.
	Host string `yaml:"host" json:"host"`
	// Port defaults to 587 for starttls, 465 for tls and 25 for none.
	Port int `yaml:"port" json:"port"`
	// TLS is "starttls" (the default: the server must offer STARTTLS, or
	// nothing is sent), "tls" (implicit TLS from the first byte) or "none"
	// (plain text, only to a relay in a private network, with
	// AllowPrivateNetwork: local relays and tests).
	TLS string `yaml:"tls" json:"tls"`
	// Username, when set, authenticates with AUTH PLAIN. It is refused over a
	// connection without TLS unless Host is loopback.
	Username string `yaml:"username" json:"username"`
	// Password goes with Username; it never appears in a log line or an error.
	Password string `yaml:"password" json:"password"`
	// From is the RFC 5322 sender address, e.g. "Acme <no-reply@acme.example>".
	// Required. Its address is also the envelope sender (MAIL FROM).
	From string `yaml:"from" json:"from"`
	// Timeout bounds a whole send: dial, TLS handshake and SMTP dialog.
	// Defaults to 10s. In JSON it is a duration string ("10s") or nanoseconds.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// InsecureSkipVerify accepts any server certificate. It exists for tests
	// only: it makes TLS worthless against an active attacker, who would then
	// read the codes and the password. Use RootCAs to trust a private CA.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify" json:"insecureSkipVerify"`
	// RootCAs is the path of a PEM bundle of the CAs to trust instead of the
	// system's (e.g. a private CA, or a test's self-signed certificate).
	RootCAs string `yaml:"rootCAs" json:"rootCAs"`
	// AllowPrivateNetwork lets Host be on a private or loopback address: a
	// local relay must say so.
	AllowPrivateNetwork bool `yaml:"allowPrivateNetwork" json:"allowPrivateNetwork"`
}

// MaxTimeout bounds every sender's timeout: a send holds its request (or,
// for a contact change notice, a goroutine past it) for as long.
const MaxTimeout = 30 * time.Second

// UnmarshalJSON decodes c as encoding/json would, except that timeout may
// also be a duration string such as "10s", as in YAML.
func (c *SMTPConfig) UnmarshalJSON(b []byte) error {
	type plain SMTPConfig // no methods, so no recursion
	v := struct {
		plain
		Timeout json.RawMessage `json:"timeout"`
	}{plain: plain(*c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = SMTPConfig(v.plain)
	switch t := v.Timeout; {
	case len(t) == 0 || string(t) == "null":
	case t[0] == '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		c.Timeout = d
	default:
		var n int64
		if err := json.Unmarshal(t, &n); err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		c.Timeout = time.Duration(n)
	}
	return nil
}

// Type is one kind of sender: how its block of a Config is checked and
// opened.
type Type struct {
	// Validate checks the type's own settings in c.
	Validate func(c Config) error
	// Open returns the live sender of a checked c.
	Open func(c Config, logger *slog.Logger) (Sender, error)
}

// Registry knows the sender types by name, as providers.Registry knows the
// provider types; Builtin is customerd's.
type Registry struct {
	byType map[string]Type
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byType: map[string]Type{}} }

// Register adds a sender type.
func (r *Registry) Register(name string, t Type) { r.byType[name] = t }

// Names lists the registered types.
func (r *Registry) Names() []string { return slices.Sorted(maps.Keys(r.byType)) }

// Builtin is the registry of customerd's sender types.
func Builtin() *Registry {
	r := NewRegistry()
	r.Register(typeLog, Type{
		Validate: func(Config) error { return nil },
		Open: func(_ Config, logger *slog.Logger) (Sender, error) {
			return &logSender{logger: logger}, nil // the replica warns as it builds the tenant; a judge's opening is silent
		},
	})
	r.Register(typeSMTP, Type{
		Validate: func(c Config) error {
			if c.SMTP == nil {
				return errors.New("smtp: required when type is smtp")
			}
			return c.SMTP.validate()
		},
		Open: func(c Config, logger *slog.Logger) (Sender, error) { return newSMTPSender(*c.SMTP, logger) },
	})
	r.Register(typeTwilio, Type{
		Validate: func(c Config) error {
			if c.Twilio == nil {
				return errors.New("twilio: required when type is twilio")
			}
			return c.Twilio.validate()
		},
		Open: func(c Config, _ *slog.Logger) (Sender, error) { return newTwilioSender(*c.Twilio), nil },
	})
	r.Register(typeWebhook, Type{
		Validate: func(c Config) error {
			if c.Webhook == nil {
				return errors.New("webhook: required when type is webhook")
			}
			return c.Webhook.validate()
		},
		Open: func(c Config, _ *slog.Logger) (Sender, error) { return newWebhookSender(*c.Webhook), nil },
	})
	return r
}

// Validate checks c and returns an error naming the first bad setting,
// e.g. `smtp.host: required`.
func (r *Registry) Validate(c Config) error {
	for i, cc := range c.Countries {
		if len(cc) != 2 || strings.ToUpper(cc) != cc {
			return fmt.Errorf("countries[%d]: %q is not an ISO 3166-1 alpha-2 code", i, cc)
		}
	}
	if c.DailyBudget < 0 {
		return errors.New("dailyBudget: must not be negative")
	}
	have := "have [" + strings.Join(r.Names(), " ") + "]"
	if c.Type == "" {
		return errors.New("type: required, " + have)
	}
	t, ok := r.byType[c.Type]
	if !ok {
		return fmt.Errorf("type: unknown sender type %q, %s", c.Type, have)
	}
	return t.Validate(c)
}

// Open returns the live sender of c. logger is the service's *slog.Logger.
func (r *Registry) Open(c Config, logger *slog.Logger) (Sender, error) {
	if logger == nil {
		return nil, errors.New("open sender: nil logger")
	}
	if err := r.Validate(c); err != nil {
		return nil, err
	}
	return r.byType[c.Type].Open(c, logger)
}

func (c *SMTPConfig) validate() error {
	switch {
	case c.Host == "":
		return errors.New("smtp.host: required")
	case !validHost(c.Host):
		return fmt.Errorf("smtp.host: %q is not a host name or IP address (the port goes in smtp.port)", c.Host)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("smtp.port: %d is out of range 1-65535", c.Port)
	}
	if err := egress.CheckHost(c.Host, c.AllowPrivateNetwork); err != nil {
		return fmt.Errorf("smtp.host: %w", err)
	}
	switch c.TLS {
	case "", tlsStartTLS, tlsImplicit:
	case tlsNone:
		// Every code would cross the network in clear: only to a relay in
		// a private network, which a key of some tenants cannot name.
		if err := egress.CheckPlainHost(c.Host, c.AllowPrivateNetwork); err != nil {
			return fmt.Errorf("smtp.tls: none: %w (else starttls or tls)", err)
		}
	default:
		return fmt.Errorf("smtp.tls: unknown mode %q, have [starttls tls none]", c.TLS)
	}
	if _, err := parseFrom(c.From); err != nil {
		return err
	}
	switch {
	case c.Username == "" && c.Password != "":
		return errors.New("smtp.username: required when smtp.password is set")
	case c.Username != "" && c.Password == "":
		return errors.New("smtp.password: required when smtp.username is set")
	case c.Username != "" && c.TLS == tlsNone && !egress.IsLoopback(c.Host):
		return fmt.Errorf("smtp.username: refusing to authenticate without TLS to non-loopback host %q, set smtp.tls to starttls or tls", c.Host)
	case c.Timeout < 0:
		return fmt.Errorf("smtp.timeout: %s is negative", c.Timeout)
	case c.Timeout > MaxTimeout:
		return fmt.Errorf("smtp.timeout: %s is above %s", c.Timeout, MaxTimeout)
	}
	return nil
}

// parseFrom parses SMTPConfig.From, naming the setting in its errors.
func parseFrom(from string) (*mail.Address, error) {
	if from == "" {
		return nil, errors.New("smtp.from: required")
	}
	if strings.ContainsAny(from, "\r\n") {
		return nil, errors.New("smtp.from: must not contain a line break")
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("smtp.from: %q is not an RFC 5322 address: %w", from, err)
	}
	return addr, nil
}

// validHost reports whether host looks like a host name or an IP address,
// not a URL or a host:port.
func validHost(host string) bool {
	if strings.ContainsAny(host, " \t\r\n/@[]") {
		return false
	}
	_, _, err := net.SplitHostPort(host)
	return err != nil // "::1" fails, "example.com:25" does not
}
