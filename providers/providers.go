// Package providers is the contract between customerd and the ways a shopper
// proves who they are (one-time codes, identity providers, a brand's own
// system), and the registry that opens them from configuration by type.
package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Provider is an opened provider: a Verifier, which proves who a shopper
// is in one step, or a Challenger, which does it in two (a code sent to a
// contact, then sent back) and which the sign-in core runs.
type Provider any

// Verifier proves who a shopper is from the body of an authenticate request.
type Verifier interface {
	Authenticate(ctx context.Context, body []byte) (Identity, error)
}

// Identity is what a Verifier proved: who the shopper is at the provider
// and what it vouches for, as the provider said it (the sign-in core
// normalises and checks it). Nothing else rides along.
type Identity struct {
	Provider      string   // the provider's name in the tenant, the token's idp
	Subject       string   // the provider's id for the shopper
	AMR           []string // how the shopper proved it
	Email         string
	EmailVerified bool
	Phone         string
	PhoneVerified bool
	// Claims that fill empty profile fields of the account, never overwrite them.
	FirstName string
	LastName  string
	Language  string // BCP 47 or a locale such as en_US
}

// Challenger is a provider that proves a shopper in two steps, a code sent
// to a contact and the code sent back: the sign-in core runs them. It judges
// which of its requests an authenticate body is.
type Challenger interface {
	// Check refuses (ErrBadRequest) a request that is none of its forms.
	Check(r CodeRequest) error
}

// CodeRequest asks for a code to be sent to Email or PhoneNumber (Code is
// nil), or checks Code: for ChallengeID, or for the newest challenge sent
// to Email or PhoneNumber. Values are as sent, not normalised.
type CodeRequest struct {
	Email, PhoneNumber, ChallengeID, Code *string
}

var (
	// ErrBadRequest: the body does not fit this provider (400).
	ErrBadRequest = errors.New("bad request")
	// ErrRejected: the credentials are wrong or no longer valid (422).
	ErrRejected = errors.New("invalid credentials")
	// ErrUnavailable: the provider's own service cannot be reached (503).
	ErrUnavailable = errors.New("provider unavailable")
)

type clientKey struct{}

// WithClientAddress is ctx carrying the address of the client whose request
// a provider serves (as trustedProxies name it), for a brand's endpoint to
// throttle guesses per client: every call to it comes from customerd.
func WithClientAddress(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

// ClientAddress is the client's address ctx carries, "" when none.
func ClientAddress(ctx context.Context) string {
	s, _ := ctx.Value(clientKey{}).(string)
	return s
}

// Deps are what providers may use.
type Deps struct {
	// Tenant is the id of the tenant the provider is opened for, for logs.
	Tenant string
	Logger *slog.Logger
}

// Factory opens a provider named name from its type's settings.
type Factory func(name string, settings map[string]any, deps Deps) (Provider, error)

// Registry knows the provider types by name; it is wired in main.
type Registry struct {
	byType map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byType: map[string]Factory{}} }

// Register adds a provider type.
func (r *Registry) Register(typ string, f Factory) { r.byType[typ] = f }

// Types lists the registered types.
func (r *Registry) Types() []string {
	return slices.Sorted(maps.Keys(r.byType))
}

// Open opens the provider name of type typ; errors name the setting.
func (r *Registry) Open(name, typ string, settings map[string]any, deps Deps) (Provider, error) {
	f, ok := r.byType[typ]
	if !ok {
		return nil, fmt.Errorf("type: unknown provider type %q, have [%s]", typ, strings.Join(r.Types(), " "))
	}
	p, err := f(name, settings, deps)
	if err != nil {
		return nil, err
	}
	switch p.(type) {
	case Verifier, Challenger:
		return p, nil
	}
	return nil, fmt.Errorf("type: provider type %q is neither a Verifier nor a Challenger", typ)
}

// DecodeSettings decodes a provider's settings into its typed config,
// refusing settings the type does not have. A name must be the setting's
// own, case included: encoding/json would put "AllowPrivateNetwork" into
// allowPrivateNetwork, past every check that reads settings by their names
// (a key of one tenant may not let a provider reach private networks; a
// secret is sealed and never shown).
func DecodeSettings(settings map[string]any, into any) error {
	known := jsonNames(reflect.TypeOf(into))
	for name := range settings {
		if !slices.Contains(known, name) {
			return &UnknownSettingError{Name: name, Known: known}
		}
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return settingsError(err, into)
	}
	return nil
}
