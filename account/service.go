package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/language"

	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
)

var (
	// ErrUnknownCaller: the token's customer does not exist (any more).
	ErrUnknownCaller = errors.New("the token's customer does not exist")
	// ErrUnprovenContact: the proven contact is on an account, but neither as
	// its identifier nor verified there, so it does not sign in as that account.
	ErrUnprovenContact = errors.New("this contact is not verified on its account")
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
	// Held is the change the completed challenge held (JSON), applied on sign-in.
	Held string
	// Challenge is the checked challenge the sign-in consumes, in the same
	// transaction as the account change (nil for providers without one).
	Challenge *store.Challenge
	// Holder, when Looked is set, is the account that held the proven
	// contact when the challenge was read (nil: none), so that the sign-in
	// does not look it up again.
	Holder *store.Customer
	Looked bool
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

// maxAttempts bounds the retries of an update that keeps meeting concurrent writers.
const maxAttempts = 25

// Result is the answer to an upsert: the account (200) or a challenge (202).
type Result struct {
	Customer  *store.Customer
	Challenge *challenge.Issued
}

// held is the change a challenge holds: the request's fields and the flow to
// run again once the shopper proves the contact.
type held struct {
	Input Input  `json:"input"`
	Flow  string `json:"flow,omitempty"`
}

func (h held) encode() string {
	if len(h.Input.Set) == 0 && len(h.Input.Extras) == 0 && h.Flow == "" {
		return ""
	}
	b, err := json.Marshal(h)
	if err != nil {
		return ""
	}
	return string(b)
}

func flowName(f *flows.Flow) string {
	if f == nil {
		return ""
	}
	return f.Name
}

// Update applies in to the caller's own account and runs flow (nil: none).
// A new email or phone number on an account whose current one is verified is
// not applied: it is held by a challenge sent to the new contact.
func (s *Service) Update(ctx context.Context, t *Tenant, caller string, in Input, flow *flows.Flow) (Result, error) {
	return s.update(ctx, t, caller, in, flow, nil)
}

// update is Update; proven, when set, is the identity that completed the
// challenge holding in: the contact it proved is marked verified.
func (s *Service) update(ctx context.Context, t *Tenant, caller string, in Input, flow *flows.Flow, proven *Identity) (Result, error) {
	for attempt := range maxAttempts {
		if attempt > 0 {
			// Writers of one account collide: spread the retries out.
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(time.Duration(rand.Int64N(int64(attempt)*int64(2*time.Millisecond)) + 1)):
			}
		}
		c, err := s.Customer(ctx, t, caller)
		if err != nil {
			return Result{}, err
		}
		now := s.now().UTC()
		next, err := Apply(t, c, in, now)
		if err != nil {
			return Result{}, err
		}
		if proven != nil {
			markVerified(next, *proven)
		} else if ch, to, ok := contactChange(c, next); ok {
			probe := &store.Customer{Email: &to}
			if ch == sender.SMS {
				probe = &store.Customer{Phone: &to}
			}
			if other, err := s.existing(ctx, t, probe); err == nil && other.ID != c.ID {
				return Result{}, s.conflict(in) // taken: no code to someone else's contact
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return Result{}, err
			}
			snd := t.Senders[ch]
			if snd == nil {
				return Result{}, ErrNoChannel
			}
			target := challenge.Target{Tenant: t.ID, Channel: ch, To: to, CustomerID: &c.ID, Language: languageOf(t, next),
				Pending: held{Input: in, Flow: flowName(flow)}.encode()}
			iss, err := s.challenges.Issue(ctx, t.OTP, target, snd, true)
			return Result{Challenge: iss}, err
		}
		var ask *flows.Ask
		err = s.store.Tx(ctx, func(tx store.Store) error {
			st := &flows.State{Customer: next, Now: now}
			if flow != nil {
				if err := flow.Run(ctx, st); err != nil {
					return err
				}
			}
			ask = st.Ask
			if err := tx.UpdateCustomer(ctx, next); err != nil {
				return err
			}
			return s.record(ctx, t, tx, c, next, st.Events, now)
		})
		switch {
		case err == nil:
			if ask != nil && proven == nil {
				iss, err := s.challengeOwner(ctx, t, next, ask, held{Flow: flowName(flow)}, nil)
				return Result{Challenge: iss}, err
			}
			return Result{Customer: next}, nil
		case errors.Is(err, store.ErrStale):
			continue // someone else wrote in between: apply the change to what is there now
		case errors.Is(err, store.ErrConflict):
			return Result{}, s.conflict(in)
		default:
			return Result{}, err
		}
	}
	return Result{}, fmt.Errorf("update %s: %w", caller, store.ErrUnavailable)
}

// contactChange is the new contact of next when it replaces a verified one of c.
func contactChange(c, next *store.Customer) (sender.Channel, string, bool) {
	if c.Email != nil && c.EmailVerified && next.Email != nil && *next.Email != *c.Email {
		return sender.Email, *next.Email, true
	}
	if c.Phone != nil && c.PhoneVerified && next.Phone != nil && *next.Phone != *c.Phone {
		return sender.SMS, *next.Phone, true
	}
	return "", "", false
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

// Create makes a new account from in for an anonymous caller and runs flow
// (nil: none) in the same transaction. When an account already has the
// identifier, nothing is written: the flow's check-in decides, and by
// default a code goes to the contact on file, holding the change.
func (s *Service) Create(ctx context.Context, t *Tenant, in Input, flow *flows.Flow) (Result, error) {
	now := s.now().UTC()
	next, err := Apply(t, nil, in, now)
	if err != nil {
		return Result{}, err
	}
	if existing, err := s.existing(ctx, t, next); err == nil {
		return s.named(ctx, t, existing, in, flow, now)
	} else if !errors.Is(err, store.ErrNotFound) {
		return Result{}, err
	}
	st := &flows.State{Customer: next, Anonymous: true, Now: now}
	if flow != nil {
		if err := flow.Run(ctx, st); err != nil {
			return Result{}, err
		}
	}
	evs, err := s.events(t, nil, next, st.Events, now)
	if err != nil {
		return Result{}, err
	}
	account := &store.NewAccount{Customer: next, Events: evs}
	res := Result{Customer: next}
	if st.Ask != nil {
		// The account, its events and the challenge commit together: one
		// transaction, as for an existing account's challenge, so that the two
		// answers cost the same (no enumeration by timing).
		var iss *challenge.Issued
		iss, err = s.challengeOwner(ctx, t, next, st.Ask, held{Flow: flowName(flow)},
			func(tx store.Store) error { return tx.CreateAccount(ctx, account) })
		res = Result{Challenge: iss}
	} else {
		err = s.store.CreateAccount(ctx, account)
	}
	if errors.Is(err, store.ErrConflict) {
		// Another request created it first, or the other identifier is taken.
		existing, err := s.existing(ctx, t, next)
		if err != nil {
			return Result{}, err
		}
		return s.named(ctx, t, existing, in, flow, now)
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// named answers an anonymous caller who named an existing account, whose
// data such a caller never changes.
func (s *Service) named(ctx context.Context, t *Tenant, existing *store.Customer, in Input, flow *flows.Flow, now time.Time) (Result, error) {
	st := &flows.State{Customer: existing, Anonymous: true, Existing: true, Now: now}
	if flow != nil {
		if err := flow.Run(ctx, st); err != nil {
			return Result{}, err
		}
	}
	if st.Reveal {
		return Result{Customer: existing}, nil
	}
	ask := st.Ask
	if ask == nil {
		ask = &flows.Ask{}
	}
	iss, err := s.challengeOwner(ctx, t, existing, ask, held{Input: withoutIdentifiers(in), Flow: flowName(flow)}, nil)
	return Result{Challenge: iss}, err
}

// withoutIdentifiers drops the email and phone number of an anonymous
// caller's change: the owner's code must not hand a stranger's phone number
// (and so the account) to whoever sent it.
func withoutIdentifiers(in Input) Input {
	out := Input{Set: make(map[string]any, len(in.Set)), Extras: in.Extras}
	for k, v := range in.Set {
		if k != "email" && k != "phoneNumber" {
			out.Set[k] = v
		}
	}
	return out
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

// challengeOwner sends a code (or a check-in link) to the contact on file of
// c; the challenge holds h until it is completed.
func (s *Service) challengeOwner(ctx context.Context, t *Tenant, c *store.Customer, ask *flows.Ask, h held, with func(store.Store) error) (*challenge.Issued, error) {
	target := challenge.Target{Tenant: t.ID, CustomerID: &c.ID, Language: languageOf(t, c), Pending: h.encode(), With: with}
	if ask.Link {
		target.Page = t.CheckInPage
	}
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

// record writes the events of a change (before is nil on creation) in tx.
func (s *Service) record(ctx context.Context, t *Tenant, tx store.Store, before, after *store.Customer, extra []string, now time.Time) error {
	evs, err := s.events(t, before, after, extra, now)
	if err != nil {
		return err
	}
	return addEvents(ctx, tx, evs)
}

// events are the events of a change from before (nil: created) to after,
// built outside the transaction that writes them, which holds the writer.
func (s *Service) events(t *Tenant, before, after *store.Customer, extra []string, now time.Time) ([]*store.Event, error) {
	types := []string{flows.Upserted}
	if before != nil && (!sameText(before.Email, after.Email) || !sameText(before.Phone, after.Phone)) {
		types = append(types, flows.ContactChange)
	}
	types = append(types, extra...)
	evs := make([]*store.Event, 0, len(types))
	for _, typ := range types {
		e, err := newEvent(typ, before, after, now)
		if err != nil {
			return nil, err
		}
		if t.Subscribed != nil && !t.Subscribed(typ) {
			// Kept in the log, with nothing to deliver: no webhook wants this type.
			e.DeliveredAt = &now
		}
		evs = append(evs, e)
	}
	return evs, nil
}

func addEvents(ctx context.Context, tx store.Store, evs []*store.Event) error {
	for _, e := range evs {
		if err := tx.AddEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func sameText(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// Event is the body a webhook receives; ID is stable across deliveries.
type Event struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	TenantID   string         `json:"tenantId"`
	CustomerID string         `json:"customerId"`
	OccurredAt string         `json:"occurredAt"`
	Data       map[string]any `json:"data"`
	// Previous is the contact a Customer:ContactChanged replaced, so that the
	// brand can tell the old address.
	Previous map[string]any `json:"previous,omitempty"`
}

func newEvent(typ string, before, c *store.Customer, now time.Time) (*store.Event, error) {
	body := Event{ID: uuid.NewString(), Type: typ, TenantID: c.TenantID, CustomerID: c.ID,
		OccurredAt: now.UTC().Format(time.RFC3339Nano), Data: View(c)}
	if typ == flows.ContactChange && before != nil {
		body.Previous = map[string]any{}
		if before.Email != nil {
			body.Previous["email"] = *before.Email
		}
		if before.Phone != nil {
			body.Previous["phoneNumber"] = *before.Phone
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return &store.Event{ID: body.ID, TenantID: c.TenantID, CustomerID: c.ID, Type: typ, Payload: string(b), CreatedAt: now}, nil
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
			id.Holder, id.Looked = nil, false
			continue // a concurrent sign-in or create: look again
		}
		if err != nil || id.Held == "" {
			return c, err
		}
		return s.applyHeld(ctx, t, c, id)
	}
	return nil, fmt.Errorf("sign in: %w", store.ErrUnavailable)
}

// applyHeld applies the change the completed challenge held, and runs its
// flow again, now that the contact is proven. A change that no longer fits
// the account (its new email taken meanwhile) is dropped; the sign-in stands.
func (s *Service) applyHeld(ctx context.Context, t *Tenant, c *store.Customer, id Identity) (*store.Customer, error) {
	var h held
	if err := json.Unmarshal([]byte(id.Held), &h); err != nil {
		return c, nil
	}
	var flow *flows.Flow
	if h.Flow != "" && t.Flows != nil {
		flow, _ = t.Flows.Lookup(h.Flow) // a flow removed since the code was sent: the change alone
	}
	res, err := s.update(ctx, t, c.ID, h.Input, flow, &id)
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return nil, err
	case err != nil || res.Customer == nil:
		return c, nil
	}
	s.notifyOldContact(ctx, t, c, res.Customer)
	return res.Customer, nil
}

// notifyOldContact tells a verified contact that was replaced where the
// account's messages go now; best effort, the change stands either way.
func (s *Service) notifyOldContact(ctx context.Context, t *Tenant, before, after *store.Customer) {
	notify := func(ch sender.Channel, old, now *string) {
		if old == nil || sameText(old, now) || t.Senders[ch] == nil {
			return
		}
		to := "(none)"
		if now != nil {
			to = challenge.Mask(*now)
		}
		_ = t.Senders[ch].Send(context.WithoutCancel(ctx), sender.Message{Tenant: t.ID, Channel: ch, To: *old,
			Language: languageOf(t, after), NewContact: to, ExpiresAt: s.now().Add(time.Hour)})
	}
	if before.EmailVerified {
		notify(sender.Email, before.Email, after.Email)
	}
	if before.PhoneVerified {
		notify(sender.SMS, before.Phone, after.Phone)
	}
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
	case id.Looked && id.Holder != nil:
		c = id.Holder
	case id.Looked:
		err = store.ErrNotFound
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
		evs, err := s.events(t, nil, c, nil, now)
		if err != nil {
			return nil, err
		}
		a := &store.NewAccount{Customer: c, Events: evs}
		if id.Challenge != nil {
			a.Consume = s.challenges.Use(id.Challenge)
		}
		return c, challenge.Spent(s.store.CreateAccount(ctx, a))
	}
	if err != nil {
		return nil, err
	}
	if id.CustomerID == "" && !provesAccount(t, c, id) {
		return nil, ErrUnprovenContact
	}
	before := *c
	markVerified(c, id)
	if c.EmailVerified == before.EmailVerified && c.PhoneVerified == before.PhoneVerified {
		return c, s.consume(ctx, s.store, id)
	}
	c.UpdatedAt = now
	evs, err := s.events(t, &before, c, nil, now)
	if err != nil {
		return nil, err
	}
	return c, s.store.Tx(ctx, func(tx store.Store) error {
		if err := s.consume(ctx, tx, id); err != nil {
			return err
		}
		if err := tx.UpdateCustomer(ctx, c); err != nil {
			return err
		}
		return addEvents(ctx, tx, evs)
	})
}

// provesAccount reports whether proving id's contact is enough to sign in
// as c: the account's identifier, or a contact already verified on it. An
// unverified secondary contact (a mistyped phone number) is not, or its
// holder would take the account over.
func provesAccount(t *Tenant, c *store.Customer, id Identity) bool {
	switch {
	case id.Email != "" && c.Email != nil && *c.Email == id.Email:
		return t.Identifier == "email" || c.EmailVerified
	case id.Phone != "" && c.Phone != nil && *c.Phone == id.Phone:
		return t.Identifier == "phoneNumber" || c.PhoneVerified
	}
	return false
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

// consume uses up the challenge that proved id, through st.
func (s *Service) consume(ctx context.Context, st store.Store, id Identity) error {
	if id.Challenge == nil {
		return nil
	}
	return s.challenges.Consume(ctx, st, id.Challenge)
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
			var out *store.Customer
			err = s.store.Tx(ctx, func(tx store.Store) error {
				out, err = s.withClaims(ctx, tx, t, c, id, now)
				return err
			})
			return out, err
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
	evs, err := s.events(t, nil, c, nil, now)
	if err != nil {
		return nil, err
	}
	return c, s.store.CreateAccount(ctx, &store.NewAccount{Customer: c, Identity: linkTo(c.ID), Events: evs})
}

// withClaims fills c's empty fields from id and stores it, with its event,
// when that changed something; st is a transaction.
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
	if err := st.UpdateCustomer(ctx, &next); err != nil {
		return nil, err
	}
	return &next, s.record(ctx, t, st, c, &next, nil, now)
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
