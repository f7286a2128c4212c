// Package webhook is the custom provider: a brand's own system proves who the
// shopper is. The authenticate body is posted as is to the tenant's endpoint,
// signed with X-Customerd-Signature; the endpoint answers with the subject
// and claims, or refuses.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/signature"
	"github.com/customerd/customerd/strictjson"
)

// Type is the provider type name in configuration.
const Type = "webhook"

// ClientAddressHeader names the shopper's address in the call to the endpoint.
const ClientAddressHeader = "X-Customerd-Client-Address"

// Timeout is how long at most the endpoint has to answer.
const Timeout = 5 * time.Second

// maxAnswer bounds the endpoint's answer.
const maxAnswer = 64 << 10

// Config is the settings of a custom provider.
type Config struct {
	// URL is the brand's endpoint: https on a public address, unless
	// AllowPrivateNetwork. Required.
	URL string `json:"url"`
	// Secret keys the HMAC-SHA256 signature (at least 32 characters). Required.
	Secret string `json:"secret"`
	// Timeout is how long the endpoint has to answer, e.g. "2s"; at most and by default 5s.
	Timeout string `json:"timeout"`
	// AllowPrivateNetwork lets URL be on a private or loopback address (and
	// plain http there): an endpoint inside the brand's own network.
	AllowPrivateNetwork bool `json:"allowPrivateNetwork"`
}

type provider struct {
	name   string
	tenant string
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
}

var _ providers.Verifier = (*provider)(nil)

// Factory opens a custom provider.
func Factory(name string, settings map[string]any, deps providers.Deps) (providers.Provider, error) {
	var c Config
	if err := providers.DecodeSettings(settings, &c); err != nil {
		return nil, err
	}
	if err := egress.CheckURL(c.URL, c.AllowPrivateNetwork); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if len(c.Secret) < 32 {
		return nil, errors.New("secret: must be at least 32 characters")
	}
	timeout := Timeout
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 || d > Timeout {
			return nil, fmt.Errorf("timeout: %q is not a duration between 0 and %s", c.Timeout, Timeout)
		}
		timeout = d
	}
	client := egress.NewClient(egress.Options{AllowPrivateNetwork: c.AllowPrivateNetwork, Timeout: timeout})
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &provider{name: name, tenant: deps.Tenant, url: c.URL, secret: []byte(c.Secret), client: client, now: time.Now, log: log}, nil
}

// Answer is what the endpoint answers with 200.
type Answer struct {
	Subject string
	Claims  Claims
}

// Claims are the OpenID Connect standard claims the endpoint may vouch for.
type Claims struct {
	Email               string
	EmailVerified       bool
	PhoneNumber         string
	PhoneNumberVerified bool
	GivenName           string
	FamilyName          string
	Locale              string
}

// decode reads an answer, which must be JSON with one reading only
// (strictjson.Check: UTF-8, no member repeated in any case), by the exact
// names of its members. encoding/json would also take "EMAIL",
// "Email_Verified" or "ſubject" for a field, the last one winning: a brand
// that copies its members' own attributes into claims, leaving out the
// names it reserves as it spells them, would have let a member set a
// victim's address as verified.
func decode(raw []byte) (Answer, error) {
	var (
		a      Answer
		claims json.RawMessage
	)
	if _, err := strictjson.Check(raw); err != nil {
		return a, fmt.Errorf("JSON that %w", err)
	}
	err := members(raw, map[string]any{"subject": &a.Subject, "claims": &claims})
	if err == nil && claims != nil {
		c := &a.Claims
		err = members(claims, map[string]any{"email": &c.Email, "email_verified": &c.EmailVerified,
			"phone_number": &c.PhoneNumber, "phone_number_verified": &c.PhoneNumberVerified,
			"given_name": &c.GivenName, "family_name": &c.FamilyName, "locale": &c.Locale})
	}
	if err != nil {
		return a, fmt.Errorf("malformed JSON: %w", err)
	}
	return a, nil
}

// members decodes the members of the JSON object raw that fields names,
// each into its value; other members are not read.
func members(raw []byte, fields map[string]any) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return err
	}
	for name, v := range fields {
		if m, ok := obj[name]; ok {
			if err := json.Unmarshal(m, v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

func (p *provider) Authenticate(ctx context.Context, body []byte) (providers.Identity, error) {
	if !json.Valid(body) {
		return providers.Identity{}, fmt.Errorf("%w: the body is not JSON", providers.ErrBadRequest)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return providers.Identity{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "customerd")
	req.Header.Set("X-Customerd-Tenant", p.tenant)
	req.Header.Set("X-Customerd-Provider", p.name)
	if addr := providers.ClientAddress(ctx); addr != "" {
		// All calls come from customerd: without it the endpoint cannot
		// throttle one client's password guesses without throttling everyone.
		req.Header.Set(ClientAddressHeader, addr)
	}
	req.Header.Set(signature.Header, signature.Sign(p.secret, p.now(), body))
	res, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return providers.Identity{}, fmt.Errorf("%w: %s: %w", providers.ErrUnavailable, p.name, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	switch {
	case err != nil:
		return providers.Identity{}, fmt.Errorf("%w: %s: %w", providers.ErrUnavailable, p.name, err)
	case res.StatusCode >= 400 && res.StatusCode < 500:
		// Whoever sets up the endpoint needs to see its refusals.
		p.log.InfoContext(ctx, "brand endpoint refused", "tenant", p.tenant, "provider", p.name, "status", res.StatusCode)
		return providers.Identity{}, fmt.Errorf("%w: %s refused with %d", providers.ErrRejected, p.name, res.StatusCode)
	case res.StatusCode != http.StatusOK:
		return providers.Identity{}, fmt.Errorf("%w: %s answered %d", providers.ErrUnavailable, p.name, res.StatusCode)
	case len(raw) > maxAnswer:
		return providers.Identity{}, fmt.Errorf("%w: %s answered more than %d bytes", providers.ErrUnavailable, p.name, maxAnswer)
	}
	a, err := decode(raw)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("%w: %s answered %w", providers.ErrUnavailable, p.name, err)
	}
	// The subject is the brand's key, kept as it said it: trimmed, "alice "
	// (another member, for a brand that keys logins as typed) was "alice".
	if strings.TrimSpace(a.Subject) == "" || len(a.Subject) > 255 {
		return providers.Identity{}, fmt.Errorf("%w: %s answered no subject", providers.ErrUnavailable, p.name)
	}
	c := a.Claims
	return providers.Identity{Provider: p.name, Subject: a.Subject, AMR: []string{"ext"}, Email: c.Email, EmailVerified: c.EmailVerified,
		Phone: c.PhoneNumber, PhoneVerified: c.PhoneNumberVerified, FirstName: c.GivenName, LastName: c.FamilyName, Language: c.Locale}, nil
}
