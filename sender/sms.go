package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/signature"
)

// defaultHTTPTimeout bounds a gateway call when its Timeout is zero.
const defaultHTTPTimeout = 10 * time.Second

// DefaultTwilioURL is Twilio's REST API.
const DefaultTwilioURL = "https://api.twilio.com"

// TwilioConfig configures the twilio sender, which sends SMS with Twilio's
// Messages REST API.
type TwilioConfig struct {
	// AccountSID and AuthToken authenticate (HTTP basic). Required.
	AccountSID string `yaml:"accountSid" json:"accountSid"`
	AuthToken  string `yaml:"authToken" json:"authToken"`
	// From is the sending number (E.164) or alphanumeric sender id; or set
	// MessagingServiceSID instead.
	From                string `yaml:"from" json:"from"`
	MessagingServiceSID string `yaml:"messagingServiceSid" json:"messagingServiceSid"`
	// BaseURL is Twilio's API, https://api.twilio.com by default.
	BaseURL string `yaml:"baseURL" json:"baseURL"`
	// Timeout bounds one send; 10s by default.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// AllowPrivateNetwork lets BaseURL be on a private or loopback address
	// (and plain http there): a local stand-in for Twilio.
	AllowPrivateNetwork bool `yaml:"allowPrivateNetwork" json:"allowPrivateNetwork"`
}

// WebhookConfig configures the webhook sender: a JSON POST of the message to
// the tenant's own gateway, signed with X-Customerd-Signature.
type WebhookConfig struct {
	// URL is the gateway: https on a public address, unless
	// AllowPrivateNetwork. Required.
	URL string `yaml:"url" json:"url"`
	// Secret keys the signature (at least 32 characters). Required.
	Secret string `yaml:"secret" json:"secret"`
	// Timeout bounds one send; 10s by default.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// AllowPrivateNetwork lets URL be on a private or loopback address (and
	// plain http there): a gateway inside the brand's own network.
	AllowPrivateNetwork bool `yaml:"allowPrivateNetwork" json:"allowPrivateNetwork"`
}

func (c *TwilioConfig) validate() error {
	switch {
	case c.AccountSID == "":
		return errors.New("twilio.accountSid: required")
	case c.AuthToken == "":
		return errors.New("twilio.authToken: required")
	case c.From == "" && c.MessagingServiceSID == "":
		return errors.New("twilio.from: required (or twilio.messagingServiceSid)")
	case c.Timeout < 0:
		return errors.New("twilio.timeout: negative")
	case c.Timeout > MaxTimeout:
		return fmt.Errorf("twilio.timeout: %s is above %s", c.Timeout, MaxTimeout)
	}
	if c.BaseURL != "" {
		if err := egress.CheckURL(c.BaseURL, c.AllowPrivateNetwork); err != nil {
			return fmt.Errorf("twilio.baseURL: %w", err)
		}
	}
	return nil
}

func (c *WebhookConfig) validate() error {
	if err := egress.CheckURL(c.URL, c.AllowPrivateNetwork); err != nil {
		return fmt.Errorf("webhook.url: %w", err)
	}
	switch {
	case len(c.Secret) < 32:
		return errors.New("webhook.secret: must be at least 32 characters")
	case c.Timeout < 0:
		return errors.New("webhook.timeout: negative")
	case c.Timeout > MaxTimeout:
		return fmt.Errorf("webhook.timeout: %s is above %s", c.Timeout, MaxTimeout)
	}
	return nil
}

// smsText is the text of a code by SMS, in French or English.
func smsText(m Message) string {
	fr := french(m.Language)
	if m.NewContact != "" { // a notice: no code
		what, advice := noticeText(m)
		return what + " " + advice
	}
	text := "Your verification code: " + m.Code
	if fr {
		text = "Votre code de vérification : " + m.Code
	}
	if fills := fillsText(m, fr); fills != "" {
		if fr {
			text += " (il complète votre profil : " + fills + ")"
		} else {
			text += " (it also fills in your profile: " + fills + ")"
		}
	}
	if m.Link != "" {
		// The check-in page's link, as the email carries it; the code stays usable alone.
		text += "\n" + m.Link
	}
	return text
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return defaultHTTPTimeout
	}
	return d
}

// post sends req and reads the answer; errors never carry the URL's query or
// the body. An error is the gateway's trouble (unreachable, too slow), never
// the message's.
func post(client *http.Client, req *http.Request) (int, []byte, error) {
	res, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, nil, errors.New("timeout")
		}
		return 0, nil, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, body, nil
}

type twilioSender struct {
	cfg    TwilioConfig
	base   string
	client *http.Client
}

func newTwilioSender(c TwilioConfig) *twilioSender {
	base := strings.TrimSuffix(c.BaseURL, "/")
	if base == "" {
		base = DefaultTwilioURL
	}
	return &twilioSender{cfg: c, base: base,
		client: egress.NewClient(egress.Options{AllowPrivateNetwork: c.AllowPrivateNetwork, Timeout: timeoutOr(c.Timeout)})}
}

// Send posts one message to Twilio; anything but a 2xx is a failure.
func (s *twilioSender) Send(ctx context.Context, m Message) error {
	form := url.Values{"To": {m.To}, "Body": {smsText(m)}}
	if s.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", s.cfg.MessagingServiceSID)
	} else {
		form.Set("From", s.cfg.From)
	}
	u := s.base + "/2010-04-01/Accounts/" + url.PathEscape(s.cfg.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	status, body, err := post(s.client, req)
	if err != nil {
		return unavailable(fmt.Errorf("twilio: %w", err))
	}
	if status < 200 || status > 299 {
		var e struct {
			Code int `json:"code"`
		}
		_ = json.Unmarshal(body, &e)
		return refused(status, fmt.Errorf("twilio: status %d, error code %d", status, e.Code))
	}
	return nil
}

type webhookSender struct {
	cfg    WebhookConfig
	client *http.Client
	now    func() time.Time
}

func newWebhookSender(c WebhookConfig) *webhookSender {
	return &webhookSender{cfg: c, now: time.Now,
		client: egress.NewClient(egress.Options{AllowPrivateNetwork: c.AllowPrivateNetwork, Timeout: timeoutOr(c.Timeout)})}
}

// The kinds of WebhookMessage, as openapi.yaml's GatewayMessage names them.
const (
	kindCode           = "code"
	kindContactChanged = "contactChanged" // a notice of a change of the account's contacts: no code
)

// WebhookMessage is the JSON body the webhook sender posts: openapi.yaml's
// GatewayMessage.
type WebhookMessage struct {
	// Kind tells a one-time code from a notice, which a gateway must not
	// deliver (nor refuse) as a code without one.
	Kind       string  `json:"kind"`
	Tenant     string  `json:"tenant"`
	Channel    Channel `json:"channel"`
	To         string  `json:"to"`
	Code       string  `json:"code,omitempty"`
	Link       string  `json:"link,omitempty"`
	NewContact string  `json:"newContact,omitempty"`
	Change     Change  `json:"change,omitempty"`
	Text       string  `json:"text"`
	Language   string  `json:"language"`
	// ExpiresAt is a code's; a notice has nothing to expire.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Send posts the message to the gateway, signed; anything but a 2xx is a failure.
func (s *webhookSender) Send(ctx context.Context, m Message) error {
	w := WebhookMessage{Kind: kindCode, Tenant: m.Tenant, Channel: m.Channel, To: m.To, Code: m.Code, Link: m.Link,
		Text: smsText(m), Language: m.Language, ExpiresAt: m.ExpiresAt.UTC()}
	if m.NewContact != "" {
		w.Kind, w.NewContact, w.Change, w.ExpiresAt = kindContactChanged, m.NewContact, m.change(), time.Time{}
	}
	body, err := json.Marshal(w)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "customerd")
	req.Header.Set(signature.Header, signature.Sign([]byte(s.cfg.Secret), s.now(), body))
	status, _, err := post(s.client, req)
	if err != nil {
		return unavailable(fmt.Errorf("webhook: %w", err))
	}
	if status < 200 || status > 299 {
		return refused(status, fmt.Errorf("webhook: status %d", status))
	}
	return nil
}

// refused is err, a gateway's answer of status (not 2xx), marked
// ErrUnavailable when the trouble is the gateway's or ours (5xx, 429: its
// rate, 401 and 403: our credentials, 3xx: a redirect, which is not
// followed, so nothing is sent whoever the number); any other 4xx is about
// the message, its number first (Twilio's 400 for an invalid or
// unsubscribed number), and the caller chose the number.
func refused(status int, err error) error {
	switch {
	case status < 400, status >= 500, status == http.StatusTooManyRequests, status == http.StatusUnauthorized, status == http.StatusForbidden:
		return unavailable(err)
	}
	return err
}
