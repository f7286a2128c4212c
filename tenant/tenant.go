// Package tenant is one brand as the service runs it: its defaults and
// rules, its one-time code limits and check-in policy, and the live parts
// opened from its settings (senders, providers, flows). app builds one from
// the settings of the configuration file or the database (catalog); a
// request is served with the one it started with.
package tenant

import (
	"time"

	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/sender"
)

// Tenant is one brand, never changed once built.
type Tenant struct {
	ID              string
	DefaultCountry  string
	DefaultLanguage string
	PhoneRegion     string
	// Identifier is the field that identifies an account: email or phoneNumber.
	Identifier     string
	RequiredFields []string
	TokenLifetime  time.Duration
	OTP            challenge.Limits
	// Senders deliver its codes, by channel.
	Senders map[sender.Channel]sender.Sender
	// Providers are the ways it lets shoppers prove who they are, by name
	// (authenticate?provider=NAME).
	Providers map[string]providers.Provider
	// Subscribed tells whether a webhook wants events of a type; nil: every type.
	Subscribed func(eventType string) bool
	// Flows are the tenant's flows by name.
	Flows *flows.Registry
	// CheckInPage is the page a partial check-in link opens.
	CheckInPage string
	// CheckInPolicy is how anonymous callers are answered: none, partial or
	// full (the last two answer new and existing identifiers alike).
	CheckInPolicy string
}
