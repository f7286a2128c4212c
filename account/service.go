package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
)

var (
	// ErrUnknownCaller: the token's customer does not exist (any more).
	ErrUnknownCaller = errors.New("the token's customer does not exist")
	// ErrNoChannel: the tenant has no sender for the account's contact.
	ErrNoChannel = errors.New("no sender can reach this account")
)

// Identity is what a provider proved about a shopper.
type Identity struct {
	Provider string   // the provider's name in the tenant, the token's idp
	Subject  string   // the provider's id for the shopper, when it has one
	AMR      []string // how the shopper proved it
	// CustomerID: the provider already knows the account (a challenge bound to it).
	CustomerID    string
	Email         string
	EmailVerified bool
	Phone         string
	PhoneVerified bool
	// Claims that fill empty profile fields of the account, never overwrite them.
	FirstName string
	LastName  string
	Language  string // BCP 47 or a locale such as en_US
}

// Service applies the account rules to stored accounts.
type Service struct {
	store      store.Store
	challenges *challenge.Service
	now        func() time.Time
}

// NewService returns a Service.
func NewService(s store.Store, c *challenge.Service, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, challenges: c, now: now}
}

// Customer reads an account of t.
func (s *Service) Customer(ctx context.Context, t *Tenant, id string) (*store.Customer, error) {
	c, err := s.store.Customer(ctx, t.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownCaller
	}
	return c, err
}

// Update applies in to the caller's own account.
func (s *Service) Update(ctx context.Context, t *Tenant, caller string, in Input) (*store.Customer, error) {
	for range 5 {
		c, err := s.Customer(ctx, t, caller)
		if err != nil {
			return nil, err
		}
		next, err := Apply(t, c, in, s.now().UTC())
		if err != nil {
			return nil, err
		}
		err = s.store.UpdateCustomer(ctx, next)
		switch {
		case err == nil:
			return next, nil
		case errors.Is(err, store.ErrStale):
			continue // someone else wrote in between: apply the change to what is there now
		case errors.Is(err, store.ErrConflict):
			return nil, s.conflict(in)
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("update %s: %w", caller, store.ErrUnavailable)
}

func (s *Service) conflict(in Input) error {
	verr := &ValidationError{}
	for _, name := range []string{"email", "phoneNumber"} {
		if in.Has(name) {
			verr.add(name, "cannot be used for this account")
		}
	}
	return verr.orNil()
}

// Create makes a new account from in for an anonymous caller. When an account
// already has the identifier, nothing is written: a code goes to the contact
// on file and the challenge comes back instead.
func (s *Service) Create(ctx context.Context, t *Tenant, in Input) (*store.Customer, *challenge.Issued, error) {
	next, err := Apply(t, nil, in, s.now().UTC())
	if err != nil {
		return nil, nil, err
	}
	if existing, err := s.existing(ctx, t, next); err == nil {
		ch, err := s.challengeOwner(ctx, t, existing)
		return nil, ch, err
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	err = s.store.CreateCustomer(ctx, next)
	if errors.Is(err, store.ErrConflict) {
		// Another request created it first, or the other identifier is taken.
		existing, err := s.existing(ctx, t, next)
		if err != nil {
			return nil, nil, err
		}
		ch, err := s.challengeOwner(ctx, t, existing)
		return nil, ch, err
	}
	if err != nil {
		return nil, nil, err
	}
	return next, nil, nil
}

// existing finds the account that holds one of c's identifiers.
func (s *Service) existing(ctx context.Context, t *Tenant, c *store.Customer) (*store.Customer, error) {
	if c.Email != nil {
		found, err := s.store.CustomerByEmail(ctx, t.ID, *c.Email)
		if !errors.Is(err, store.ErrNotFound) {
			return found, err
		}
	}
	if c.Phone != nil {
		return s.store.CustomerByPhone(ctx, t.ID, *c.Phone)
	}
	return nil, store.ErrNotFound
}

// challengeOwner sends a code to the contact on file of c.
func (s *Service) challengeOwner(ctx context.Context, t *Tenant, c *store.Customer) (*challenge.Issued, error) {
	target := challenge.Target{Tenant: t.ID, CustomerID: &c.ID, Language: languageOf(t, c)}
	switch {
	case c.Email != nil && t.Senders[sender.Email] != nil:
		target.Channel, target.To = sender.Email, *c.Email
	case c.Phone != nil && t.Senders[sender.SMS] != nil:
		target.Channel, target.To = sender.SMS, *c.Phone
	default:
		return nil, ErrNoChannel
	}
	return s.challenges.Issue(ctx, t.OTP, target, t.Senders[target.Channel], true)
}

func languageOf(t *Tenant, c *store.Customer) string {
	if l, ok := c.Profile["language"].(string); ok {
		return l
	}
	return t.DefaultLanguage
}

// SignIn finds (or, on a first verification, creates) the account a proven
// identity belongs to, and records what was verified.
func (s *Service) SignIn(ctx context.Context, t *Tenant, id Identity) (*store.Customer, error) {
	for range 5 {
		c, err := s.signIn(ctx, t, id)
		if errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrConflict) {
			continue // a concurrent sign-in or create: look again
		}
		return c, err
	}
	return nil, fmt.Errorf("sign in: %w", store.ErrUnavailable)
}

func (s *Service) signIn(ctx context.Context, t *Tenant, id Identity) (*store.Customer, error) {
	if id.Subject != "" {
		return s.signInLinked(ctx, t, id)
	}
	var (
		c   *store.Customer
		err error
	)
	switch {
	case id.CustomerID != "":
		c, err = s.store.Customer(ctx, t.ID, id.CustomerID)
	case id.Email != "":
		c, err = s.store.CustomerByEmail(ctx, t.ID, id.Email)
	case id.Phone != "":
		c, err = s.store.CustomerByPhone(ctx, t.ID, id.Phone)
	default:
		return nil, errors.New("sign in: the identity names no account")
	}
	now := s.now().UTC()
	if errors.Is(err, store.ErrNotFound) {
		if id.CustomerID != "" {
			return nil, ErrUnknownCaller // the account was deleted since the code was sent
		}
		c = newAccount(t, now)
		markVerified(c, id)
		return c, s.store.CreateCustomer(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	before := *c
	markVerified(c, id)
	if c.EmailVerified == before.EmailVerified && c.PhoneVerified == before.PhoneVerified {
		return c, nil
	}
	c.UpdatedAt = now
	return c, s.store.UpdateCustomer(ctx, c)
}

// markVerified records the proven contact on the account, filling it when empty.
func markVerified(c *store.Customer, id Identity) {
	if id.Email != "" && id.EmailVerified {
		if c.Email == nil {
			email := id.Email
			c.Email = &email
		}
		if *c.Email == id.Email {
			c.EmailVerified = true
		}
	}
	if id.Phone != "" && id.PhoneVerified {
		if c.Phone == nil {
			phone := id.Phone
			c.Phone = &phone
		}
		if *c.Phone == id.Phone {
			c.PhoneVerified = true
		}
	}
}

// newAccount is an empty account of t with the tenant's defaults.
func newAccount(t *Tenant, now time.Time) *store.Customer {
	c := &store.Customer{ID: newID(), TenantID: t.ID, Profile: store.Profile{}, CreatedAt: now, UpdatedAt: now}
	fill(t, c, true)
	return c
}

// signInLinked signs in an identity (tenant, provider, subject): the account
// it is linked to; on its first sign-in, the account that has its verified
// email (an unverified one never links), or a new account.
func (s *Service) signInLinked(ctx context.Context, t *Tenant, id Identity) (*store.Customer, error) {
	now := s.now().UTC()
	link, err := s.store.Identity(ctx, t.ID, id.Provider, id.Subject)
	switch {
	case err == nil:
		c, err := s.store.Customer(ctx, t.ID, link.CustomerID)
		if err == nil {
			return s.withClaims(ctx, s.store, t, c, id, now)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		// The account was deleted: the identity starts over.
		if err := s.store.UnlinkIdentity(ctx, t.ID, id.Provider, id.Subject); err != nil {
			return nil, err
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	linkTo := func(customer string) *store.Identity {
		return &store.Identity{TenantID: t.ID, Provider: id.Provider, Subject: id.Subject, CustomerID: customer, CreatedAt: now}
	}
	if id.Email != "" && id.EmailVerified {
		c, err := s.store.CustomerByEmail(ctx, t.ID, id.Email)
		if err == nil {
			var out *store.Customer
			err = s.store.Tx(ctx, func(tx store.Store) error {
				if err := tx.LinkIdentity(ctx, linkTo(c.ID)); err != nil {
					return err
				}
				out, err = s.withClaims(ctx, tx, t, c, id, now)
				return err
			})
			return out, err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	c := &store.Customer{ID: newID(), TenantID: t.ID, Profile: store.Profile{}, CreatedAt: now, UpdatedAt: now}
	if err := s.fillClaims(ctx, s.store, t, c, id); err != nil {
		return nil, err
	}
	fill(t, c, true)
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := tx.CreateCustomer(ctx, c); err != nil {
			return err
		}
		return tx.LinkIdentity(ctx, linkTo(c.ID))
	})
	return c, err
}

// withClaims fills c's empty fields from id and stores it when that changed something.
func (s *Service) withClaims(ctx context.Context, st store.Store, t *Tenant, c *store.Customer, id Identity, now time.Time) (*store.Customer, error) {
	next := *c
	next.Profile = make(store.Profile, len(c.Profile))
	for k, v := range c.Profile {
		next.Profile[k] = v
	}
	if err := s.fillClaims(ctx, st, t, &next, id); err != nil {
		return nil, err
	}
	if equalAccounts(c, &next) {
		return c, nil
	}
	next.UpdatedAt = now
	return &next, st.UpdateCustomer(ctx, &next)
}

// fillClaims sets what id proves where c has nothing: a verified email or
// phone number no other account holds, names and language. What the shopper
// entered is never overwritten.
func (s *Service) fillClaims(ctx context.Context, st store.Store, t *Tenant, c *store.Customer, id Identity) error {
	if id.Email != "" && id.EmailVerified && c.Email == nil {
		if _, err := st.CustomerByEmail(ctx, t.ID, id.Email); errors.Is(err, store.ErrNotFound) {
			email := id.Email
			c.Email = &email
		} else if err != nil {
			return err
		}
	}
	if id.Phone != "" && id.PhoneVerified && c.Phone == nil {
		if _, err := st.CustomerByPhone(ctx, t.ID, id.Phone); errors.Is(err, store.ErrNotFound) {
			phone := id.Phone
			c.Phone = &phone
		} else if err != nil {
			return err
		}
	}
	markVerified(c, Identity{Email: id.Email, EmailVerified: id.EmailVerified && c.Email != nil,
		Phone: id.Phone, PhoneVerified: id.PhoneVerified && c.Phone != nil})
	fillText := func(name, value string) {
		if value == "" {
			return
		}
		if v, ok := c.Profile[name]; ok && v != nil && v != "" {
			return
		}
		c.Profile[name] = value
	}
	fillText("firstName", id.FirstName)
	fillText("lastName", id.LastName)
	if id.Language != "" {
		if tag, err := language.Parse(strings.ReplaceAll(id.Language, "_", "-")); err == nil {
			fillText("language", tag.String())
		}
	}
	return nil
}

func equalAccounts(a, b *store.Customer) bool {
	if a.EmailVerified != b.EmailVerified || a.PhoneVerified != b.PhoneVerified ||
		!equalPtr(a.Email, b.Email) || !equalPtr(a.Phone, b.Phone) || len(a.Profile) != len(b.Profile) {
		return false
	}
	// fillClaims only ever sets these, and only as strings.
	for _, k := range []string{"firstName", "lastName", "language"} {
		av, _ := a.Profile[k].(string)
		bv, _ := b.Profile[k].(string)
		if av != bv {
			return false
		}
	}
	return true
}

func equalPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
