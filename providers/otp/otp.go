// Package otp is the one-time code provider: a code sent by email or SMS,
// exchanged for a token. It reads the requests; the sign-in core
// (signin.Service) sends and checks the codes.
package otp

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/customerd/customerd/providers"
)

// Type is the provider type name in configuration.
const Type = "otp"

// Config is the otp provider's settings (none yet: the limits are the tenant's).
type Config struct{}

type provider struct{}

var _ providers.Challenger = provider{}

// Factory opens the otp provider.
func Factory(_ string, settings map[string]any, _ providers.Deps) (providers.Provider, error) {
	var c Config
	if err := providers.DecodeSettings(settings, &c); err != nil {
		return nil, err
	}
	return provider{}, nil
}

const usage = `otp wants {"email"} or {"phoneNumber"} to send a code, then {"challengeId","code"}, {"email","code"} or {"phoneNumber","code"}`

// CodeRequest reads one of the five bodies otp takes.
func (provider) CodeRequest(body []byte) (providers.CodeRequest, error) {
	var r struct {
		Email       *string `json:"email"`
		PhoneNumber *string `json:"phoneNumber"`
		ChallengeID *string `json:"challengeId"`
		Code        *string `json:"code"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&r); err != nil {
		return providers.CodeRequest{}, fmt.Errorf("%w: %s", providers.ErrBadRequest, usage)
	}
	named := 0
	for _, v := range []*string{r.Email, r.PhoneNumber, r.ChallengeID} {
		if v != nil {
			named++
		}
	}
	if named != 1 || (r.ChallengeID != nil && r.Code == nil) {
		return providers.CodeRequest{}, fmt.Errorf("%w: %s", providers.ErrBadRequest, usage)
	}
	return providers.CodeRequest{Email: r.Email, PhoneNumber: r.PhoneNumber, ChallengeID: r.ChallengeID, Code: r.Code}, nil
}
