// Package otp is the one-time code provider: a code sent by email or SMS,
// exchanged for a token. It reads the requests; the sign-in core
// (signin.Service) sends and checks the codes.
package otp

import (
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

// Check accepts the five bodies otp takes.
func (provider) Check(r providers.CodeRequest) error {
	named := 0
	for _, v := range []*string{r.Email, r.PhoneNumber, r.ChallengeID} {
		if v != nil {
			named++
		}
	}
	if named != 1 || (r.ChallengeID != nil && r.Code == nil) {
		return fmt.Errorf("%w: %s", providers.ErrBadRequest, usage)
	}
	return nil
}
