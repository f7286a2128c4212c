// Package otp is the one-time code provider: a code sent by email or SMS,
// exchanged for a token.
package otp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/sender"
)

// Type is the provider type name in configuration.
const Type = "otp"

// Config is the otp provider's settings (none yet: the limits are the tenant's).
type Config struct{}

type provider struct {
	name       string
	challenges *challenge.Service
}

var _ providers.Provider = (*provider)(nil)

// Factory opens the otp provider.
func Factory(name string, settings map[string]any, deps providers.Deps) (providers.Provider, error) {
	var c Config
	if err := providers.DecodeSettings(settings, &c); err != nil {
		return nil, err
	}
	if deps.Challenges == nil {
		return nil, errors.New("otp: no challenge service")
	}
	return &provider{name: name, challenges: deps.Challenges}, nil
}

type request struct {
	Email       *string `json:"email"`
	PhoneNumber *string `json:"phoneNumber"`
	ChallengeID *string `json:"challengeId"`
	Code        *string `json:"code"`
}

func (p *provider) Authenticate(ctx context.Context, t *account.Tenant, body []byte) (providers.Outcome, error) {
	var r request
	if err := json.Unmarshal(body, &r); err != nil {
		return providers.Outcome{}, fmt.Errorf("%w: otp wants {\"email\"}, {\"phoneNumber\"} or {\"challengeId\",\"code\"}", providers.ErrBadRequest)
	}
	switch {
	case r.ChallengeID != nil || r.Code != nil:
		if r.ChallengeID == nil || r.Code == nil || r.Email != nil || r.PhoneNumber != nil {
			return providers.Outcome{}, fmt.Errorf("%w: send challengeId and code together, and nothing else", providers.ErrBadRequest)
		}
		return p.complete(ctx, t, *r.ChallengeID, *r.Code)
	case r.Email != nil && r.PhoneNumber == nil:
		email, err := account.NormaliseEmail(*r.Email)
		if err != nil {
			return providers.Outcome{}, fieldError("email", err)
		}
		return p.start(ctx, t, sender.Email, email)
	case r.PhoneNumber != nil && r.Email == nil:
		phone, err := account.NormalisePhone(*r.PhoneNumber, t.PhoneRegion)
		if err != nil {
			return providers.Outcome{}, fieldError("phoneNumber", err)
		}
		return p.start(ctx, t, sender.SMS, phone)
	}
	return providers.Outcome{}, fmt.Errorf("%w: otp wants {\"email\"}, {\"phoneNumber\"} or {\"challengeId\",\"code\"}", providers.ErrBadRequest)
}

func fieldError(name string, err error) error {
	return &account.ValidationError{Fields: map[string][]string{name: {err.Error()}}}
}

// start sends a code whether or not an account has the destination: the
// answer must not tell which.
func (p *provider) start(ctx context.Context, t *account.Tenant, ch sender.Channel, to string) (providers.Outcome, error) {
	snd := t.Senders[ch]
	if snd == nil {
		return providers.Outcome{}, fmt.Errorf("%w: this tenant does not send codes by %s", providers.ErrBadRequest, ch)
	}
	if sc, ok := snd.(sender.Screener); ok {
		if err := sc.Allows(to); err != nil {
			return providers.Outcome{}, fieldError("phoneNumber", err)
		}
	}
	issued, err := p.challenges.Issue(ctx, t.OTP, challenge.Target{Tenant: t.ID, Channel: ch, To: to, Language: t.DefaultLanguage}, snd, false)
	if err != nil {
		return providers.Outcome{}, err
	}
	return providers.Outcome{Challenge: issued}, nil
}

func (p *provider) complete(ctx context.Context, t *account.Tenant, id, code string) (providers.Outcome, error) {
	c, err := p.challenges.Check(ctx, t.OTP, t.ID, strings.TrimSpace(id), code)
	if err != nil {
		return providers.Outcome{}, err
	}
	// The sign-in consumes the challenge in the transaction that writes the account.
	ident := &account.Identity{Provider: p.name, Held: c.Pending, Challenge: c.Challenge, Holder: c.Holder, Looked: true}
	if c.CustomerID != nil {
		ident.CustomerID = *c.CustomerID
	}
	switch sender.Channel(c.Channel) {
	case sender.Email:
		ident.Email, ident.EmailVerified, ident.AMR = c.Destination, true, []string{"otp", "email"}
	case sender.SMS:
		ident.Phone, ident.PhoneVerified, ident.AMR = c.Destination, true, []string{"otp", "sms"}
	}
	return providers.Outcome{Identity: ident}, nil
}
