// Package signin is customerd's sign-in core: it sends one-time codes,
// completes challenges and signs in identities that providers proved,
// always by the one ownership rule (account/ownership.go). Completing a
// challenge is one call here: the attempt is counted first (a wrong code
// must count), then the challenge is used up, what it holds applied and the
// account signed in, in one transaction. A plain first sign-in is all of
// that in the attempt's own statement.
package signin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

var (
	// ErrNoSender: the tenant sends no codes on the contact's channel.
	ErrNoSender = errors.New("this tenant does not send codes on this channel")
	// ErrBadSubject: a provider named the shopper with something no account
	// can keep (empty, too long, not text): the identity is refused.
	ErrBadSubject = errors.New("the provider's subject is not a usable id")
)

// Store is what the sign-in core needs of the database; a transaction (Tx)
// is the whole store.
type Store interface {
	Tx(ctx context.Context, fn func(store.Store) error) error
	Customer(ctx context.Context, tenant, id string) (*store.Customer, error)
	Identity(ctx context.Context, tenant, provider, subject string) (*store.Identity, error)
	UnlinkIdentity(ctx context.Context, tenant, provider, subject string) error
	CreateAccount(ctx context.Context, a *store.NewAccount) error
	// SigningKeys: a contact change dies with its token's retired key.
	SigningKeys(ctx context.Context, tenant string) ([]store.SigningKey, error)
	challenge.Consumer
}

// Service signs shoppers in.
type Service struct {
	store      Store
	accounts   *account.Service
	challenges *challenge.Service
	lengths    Lengths
}

// Lengths are the most characters an account's text fields keep, by JSON
// name: the contract's maxLength, read from openapi.yaml.
type Lengths map[string]int

// New returns a Service; a provider's claims are kept within lengths.
func New(st Store, accounts *account.Service, challenges *challenge.Service, lengths Lengths) *Service {
	return &Service{store: st, accounts: accounts, challenges: challenges, lengths: lengths}
}

// Start sends a one-time code to k. The answer is the same whether or not
// an account has k.
func (s *Service) Start(ctx context.Context, t *tenant.Tenant, k account.Contact) (*challenge.Issued, error) {
	snd := t.Senders[k.Channel]
	if snd == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSender, k.Channel)
	}
	if sc, ok := snd.(sender.Screener); ok {
		if err := sc.Allows(k.Value); err != nil {
			return nil, &account.ValidationError{Fields: map[string][]string{"phoneNumber": {err.Error()}}}
		}
	}
	return s.challenges.Issue(ctx, t.OTP, challenge.Target{Tenant: t.ID, Purpose: challenge.SignIn, Channel: k.Channel,
		To: k.Value, Language: t.DefaultLanguage}, snd)
}

// Complete checks a code and, when it is right, does what its challenge is
// for: signs in the account its contact proves (a new one when it proves
// none), applies a token holder's contact change, or finishes the check-in
// or flow it held. It answers the account signed in and how (amr).
func (s *Service) Complete(ctx context.Context, t *tenant.Tenant, code challenge.Code) (*store.Customer, []string, error) {
	// The first sign-in of a contact nobody holds is made in the attempt:
	// its account, on each channel the tenant sends codes on.
	now := s.accounts.Now()
	blank := account.NewAccount(t, now)
	first := map[string]*store.NewAccount{}
	for ch := range t.Senders {
		c := newAccount(t, blank, account.Contact{Channel: ch, Value: store.Destination}, account.Input{}, now)
		evs, err := s.accounts.Events(t, nil, c, nil, now)
		if err != nil {
			return nil, nil, err
		}
		first[string(ch)] = &store.NewAccount{Customer: c, Events: evs}
	}
	var (
		p       *challenge.Proof
		created *store.NewAccount
		err     error
	)
	for range 5 {
		// A conflict: someone took the contact meanwhile, nothing was written.
		if p, created, err = s.challenges.Attempt(ctx, t.OTP, t.ID, code, first); !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	k := account.Contact{Channel: sender.Channel(p.Channel), Value: p.Destination}
	amr := []string{"otp", string(k.Channel)}
	if created != nil {
		return created.Customer, amr, nil
	}
	for try := range 5 {
		if try > 0 {
			// A concurrent write moved the accounts: read them again.
			if p.Holder, err = s.accounts.Holder(ctx, t, k); err != nil {
				return nil, nil, err
			}
		}
		c, err := s.complete(ctx, t, p, k, code.ChallengeID != "")
		if errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrConflict) {
			continue
		}
		return c, amr, err
	}
	return nil, nil, fmt.Errorf("complete: %w", store.ErrUnavailable)
}

func (s *Service) complete(ctx context.Context, t *tenant.Tenant, p *challenge.Proof, k account.Contact, byID bool) (*store.Customer, error) {
	held := account.DecodeHeld(p.Pending)
	var bound *store.Customer
	if p.CustomerID != nil {
		c, err := s.store.Customer(ctx, t.ID, *p.CustomerID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		bound = c // nil: the account was deleted since the code was sent
	}
	if challenge.Purpose(p.Purpose) == challenge.Contact {
		return s.changeContact(ctx, t, p, k, bound, held)
	}
	target, detach, err := s.resolve(ctx, t, p.Holder, k)
	if err != nil {
		return nil, err
	}
	// What the challenge holds lands only where it was meant to: on the
	// account it was for, when the contact proves that account; on whatever
	// the contact proves for a plain sign-in (an anonymous caller's change,
	// which only fills empty fields).
	var (
		in   account.Input
		flow *flows.Flow
	)
	if challenge.Purpose(p.Purpose) == challenge.SignIn || (bound != nil && target != nil && target.ID == bound.ID) {
		in = held.Input
		// A code typed as {email, code} runs the flow only on an account
		// it proves for the first time (one made or claimed with it, as an
		// upstream-only client's is): an owner's was the stranger's choice.
		if held.Flow != "" && t.Flows != nil && (byID || target == nil || !account.VerifiedOn(target, k)) {
			flow, _ = t.Flows.Lookup(held.Flow) // a flow removed since the code was sent: the change alone
		}
	}
	// The flow runs again as the completion of its own challenge: the code
	// its challenge step asked for is proven, and the steps after it run.
	// Only a challenge that holds the flow gets here with it (one its
	// request issued: a plain sign-in holds none; a contact change is
	// completed above and passes nothing), and only when the code is sent
	// back with its challenge's id, which the flow's own caller holds (or
	// its link carries): an owner typing into a sign-in form, as
	// {email, code}, a code a stranger's request had sent (its challenge
	// took the minute's code) signs in, and confirms nothing the flow asks
	// after its code (an opt-in). Nor does the flow run at all then on an
	// account the code's contact proved already: its steps before a
	// challenge step (or in a flow without one: a set of a consent, an
	// activation) were a stranger's choice, not the owner's.
	run := account.Run{Flow: flow, Passed: flow != nil && byID}
	now := s.accounts.Now()
	for {
		var c *store.Customer
		if target == nil {
			c, err = s.create(ctx, t, p, k, detach, in, run, now)
		} else {
			c, err = s.prove(ctx, t, p, k, target, in, run, now)
		}
		// A held flow the account does not pass (a stranger's request named
		// it, judged on fields a stranger may not fill: a phone number, a
		// consent) is dropped, and the sign-in stands, as a held fill that
		// no longer passes is: it kept the owner from signing in with the
		// code the request sent them, and with a request a minute, at all.
		var missing *flows.MissingError
		if run.Flow == nil || !errors.As(err, &missing) {
			return c, err
		}
		run = account.Run{}
	}
}

// resolve is the ownership rule for a proven contact k: the account it
// signs in (target), or none, with the account it must leave (detach).
func (s *Service) resolve(ctx context.Context, t *tenant.Tenant, holder *store.Customer, k account.Contact) (target, detach *store.Customer, err error) {
	if holder == nil {
		return nil, nil, nil
	}
	linked, err := s.accounts.Linked(ctx, holder)
	if err != nil {
		return nil, nil, err
	}
	if account.Decide(t, holder, k, linked) == account.Detaches {
		return nil, holder, nil
	}
	return holder, nil, nil
}

// create makes the prover's own account with k verified: what the
// challenge held fills it, and k leaves detach, in one transaction.
func (s *Service) create(ctx context.Context, t *tenant.Tenant, p *challenge.Proof, k account.Contact, detach *store.Customer,
	in account.Input, run account.Run, now time.Time) (*store.Customer, error) {
	c := newAccount(t, account.NewAccount(t, now), k, in, now)
	if detach == nil && run.Flow == nil {
		// A first sign-in that the attempt could not make (it holds a change): one write.
		evs, err := s.accounts.Events(t, nil, c, nil, now)
		if err != nil {
			return nil, err
		}
		return c, challenge.Spent(s.store.CreateAccount(ctx, &store.NewAccount{Customer: c, Events: evs, Consume: s.challenges.Use(p)}))
	}
	err := s.store.Tx(ctx, func(tx store.Store) error {
		if detach != nil {
			if err := s.detach(ctx, tx, t, detach, k, now); err != nil {
				return err
			}
		}
		st := &flows.State{Customer: c, Now: now, Passed: run.Passed}
		if err := run.Flow.Run(ctx, st); err != nil {
			return err
		}
		evs, err := s.accounts.Events(t, nil, c, st.Events, now)
		if err != nil {
			return err
		}
		return challenge.Spent(tx.CreateAccount(ctx, &store.NewAccount{Customer: c, Events: evs, Consume: s.challenges.Use(p)}))
	})
	return c, err
}

// prove signs in target, which k proves: k is marked verified, and what the
// challenge held fills target's empty fields and runs its flow again.
func (s *Service) prove(ctx context.Context, t *tenant.Tenant, p *challenge.Proof, k account.Contact, target *store.Customer,
	in account.Input, run account.Run, now time.Time) (*store.Customer, error) {
	next, filled := fillHeld(t, target, in, now)
	account.MarkVerified(next, k)
	if !filled && run.Flow == nil && account.VerifiedOn(target, k) {
		return target, s.challenges.Consume(ctx, s.store, p) // nothing to write but the challenge
	}
	next.UpdatedAt = now
	// k proves target without being verified on it: nobody had proved the
	// account (the ownership rule's one exception), and it is the prover's now.
	claims := !account.VerifiedOn(target, k)
	err := s.store.Tx(ctx, func(tx store.Store) error {
		if err := s.challenges.Consume(ctx, tx, p); err != nil {
			return err
		}
		if _, err := s.accounts.Write(ctx, tx, t, target, next, run, now); err != nil { // proven now: a flow's challenge is not asked again
			return err
		}
		if claims {
			return revokeBeforeClaim(ctx, tx, t.ID, target.ID, now)
		}
		return nil
	})
	return next, err
}

// revokeBeforeClaim refuses every token issued for an account nobody had
// proved before its claim at now: they are not the prover's. One issued in
// the claim's own second still opens it (a token's time is in whole seconds).
func revokeBeforeClaim(ctx context.Context, tx store.Store, tenant, customer string, now time.Time) error {
	return tx.RevokeSessions(ctx, tenant, customer, now.Truncate(time.Second).Add(-time.Second))
}

// newAccount is the prover's own account, blank (a new account of t) with
// in filling it and k verified.
func newAccount(t *tenant.Tenant, blank *store.Customer, k account.Contact, in account.Input, now time.Time) *store.Customer {
	c, _ := fillHeld(t, blank, in, now)
	account.MarkVerified(c, k)
	return c
}

// fillHeld is a copy of c with in applied to its empty fields only (filled
// tells whether it changed anything); what no longer passes the rules is
// dropped, and the sign-in stands.
func fillHeld(t *tenant.Tenant, c *store.Customer, in account.Input, now time.Time) (next *store.Customer, filled bool) {
	fill := account.FillOnly(c, account.Fillable(in))
	if len(fill.Set) > 0 || len(fill.Extras) > 0 {
		if next, err := account.Apply(t, c, fill, now); err == nil {
			// What Apply derives from the filled fields (enrichment's city and
			// region from a postcode) never replaces a value c has: a
			// stranger's postcode rewrote the owner's city and region.
			for k, v := range c.Profile {
				next.Profile[k] = v
			}
			return next, true
		}
	}
	copied := *c
	copied.Profile = maps.Clone(c.Profile)
	return &copied, false
}

// changeContact applies a token holder's held change to the account it was
// for, now that its new contact k is proven; k leaves an account where it
// sat unverified. The account's verified contacts are told.
func (s *Service) changeContact(ctx context.Context, t *tenant.Tenant, p *challenge.Proof, k account.Contact, bound *store.Customer,
	held account.Held) (*store.Customer, error) {
	if bound == nil {
		return nil, account.ErrUnprovenContact // the account is gone
	}
	if _, withheld := challenge.Withheld(p.Destination); withheld {
		return nil, challenge.ErrInvalidCode // its code went to nobody: a guess
	}
	// A change asked by a token that the account's sessions revocation
	// refuses (even one written just after the revocation, by a request let
	// in just before it) was asked by a token that no longer stands:
	// completing it would attach the requester's contact and hand out a
	// new token.
	if challenge.AskedBefore(p.Challenge, bound.SessionsRevokedAt) {
		return nil, challenge.ErrInvalidCode
	}
	// The same for a token whose key was retired since (rotate-key
	// --retire-previous): the retirement drops the changes written before
	// it, not one written after it by a request let in before it, nor by a
	// token forged with the key while a replica still had it loaded.
	retired, err := s.askedWithRetiredKey(ctx, t.ID, p.Challenge)
	if err != nil {
		return nil, err
	}
	if retired {
		return nil, challenge.ErrInvalidCode
	}
	// The prover chose this account: k leaves wherever it sits unproven
	// (an anonymous account nobody claimed included), unless it is another
	// account's proof by now.
	var detach *store.Customer
	if h := p.Holder; h != nil && h.ID != bound.ID {
		if account.VerifiedOn(h, k) {
			return nil, account.ErrUnprovenContact
		}
		detach = h
	}
	// Only the proven contact changes: the other one stays as it is now
	// (a change held before it was left out of held changes may name it).
	in := held.Input.Without(account.OtherContactField(k))
	now := s.accounts.Now()
	next, err := account.Apply(t, bound, in, now)
	if err != nil {
		return nil, err
	}
	if !account.Holds(next, k) {
		return nil, account.ErrUnprovenContact
	}
	account.MarkVerified(next, k)
	var flow *flows.Flow
	if held.Flow != "" && t.Flows != nil {
		flow, _ = t.Flows.Lookup(held.Flow)
	}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if err := s.challenges.Consume(ctx, tx, p); err != nil {
			return err
		}
		if detach != nil {
			if err := s.detach(ctx, tx, t, detach, k, now); err != nil {
				return err
			}
		}
		// A contact change's code proves the new contact, not the flow's own
		// challenge: a challenge step stops the flow there (run it again to pass it).
		_, err := s.accounts.Write(ctx, tx, t, bound, next, account.Run{Flow: flow}, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.accounts.NotifyContactChange(ctx, t, bound, next)
	return next, nil
}

// askedWithRetiredKey reports whether the token that asked for c was
// signed by a key that is no live signing key of tenant now: retired, or
// unknown. It reads the database, not this replica's loaded keys, which keep
// a retired key for up to a minute; nor does it go by the token's issue time,
// which whoever holds a leaked key chooses. A change written before
// challenges kept their token's kid goes by that time: refused when asked up
// to the last retirement.
func (s *Service) askedWithRetiredKey(ctx context.Context, tenant string, c *store.Challenge) (bool, error) {
	keys, err := s.store.SigningKeys(ctx, tenant)
	if err != nil {
		return false, err
	}
	if c.TokenKID != nil {
		return !challenge.LiveKey(keys, *c.TokenKID), nil
	}
	// Kept before challenges kept their token's kid: by its issue time.
	var last *time.Time
	for _, k := range keys {
		if k.RetiredAt != nil && (last == nil || k.RetiredAt.After(*last)) {
			last = k.RetiredAt
		}
	}
	return challenge.AskedBefore(c, last), nil
}

// detach takes k off c, where it sat unverified, through tx.
func (s *Service) detach(ctx context.Context, tx store.Store, t *tenant.Tenant, c *store.Customer, k account.Contact, now time.Time) error {
	next := account.Detach(c, k)
	next.UpdatedAt = now
	if err := tx.UpdateCustomer(ctx, next); err != nil {
		return err
	}
	return s.accounts.Record(ctx, tx, t, c, next, now)
}

// SignIn signs in an identity a one-step provider proved: the account it is
// linked to; on its first sign-in, the account its verified email proves
// (an unverified email never links), or a new account.
func (s *Service) SignIn(ctx context.Context, t *tenant.Tenant, id providers.Identity) (*store.Customer, error) {
	id, err := s.storable(t, id)
	if err != nil {
		return nil, err
	}
	for range 5 {
		c, err := s.signIn(ctx, t, id)
		if errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrConflict) {
			continue // a concurrent sign-in or create: look again
		}
		return c, err
	}
	return nil, fmt.Errorf("sign in: %w", store.ErrUnavailable)
}

func (s *Service) signIn(ctx context.Context, t *tenant.Tenant, id providers.Identity) (*store.Customer, error) {
	now := s.accounts.Now()
	link, err := s.store.Identity(ctx, t.ID, id.Provider, id.Subject) // and its account, in one read
	switch {
	case err == nil:
		if link.Account != nil {
			return s.withClaims(ctx, t, link.Account, id, nil, now, false)
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
	read := map[account.Contact]*store.Customer{} // the holders read, for fillClaims
	if id.Email != "" && id.EmailVerified {
		k := account.EmailContact(id.Email)
		holder, err := s.accounts.Holder(ctx, t, k)
		if err != nil {
			return nil, err
		}
		read[k] = holder
		target, _, err := s.resolve(ctx, t, holder, k)
		if err != nil {
			return nil, err
		}
		if target != nil {
			// A claim (nobody had proved target): tokens issued for it before
			// are not the prover's, as when a code claims it.
			return s.withClaims(ctx, t, target, id, linkTo(target.ID), now, !account.VerifiedOn(target, k))
		}
	}
	c := account.BlankAccount(t, now)
	detaches, err := s.fillClaims(ctx, t, c, id, read) // before the defaults: a claimed language wins over the tenant's
	if err != nil {
		return nil, err
	}
	account.FillDefaults(t, c)
	evs, err := s.accounts.Events(t, nil, c, nil, now)
	if err != nil {
		return nil, err
	}
	a := &store.NewAccount{Customer: c, Identity: linkTo(c.ID), Events: evs}
	if len(detaches) == 0 {
		return c, s.store.CreateAccount(ctx, a)
	}
	return c, s.store.Tx(ctx, func(tx store.Store) error {
		for _, d := range detaches {
			if err := s.detach(ctx, tx, t, d.from, d.k, now); err != nil {
				return err
			}
		}
		return tx.CreateAccount(ctx, a)
	})
}

// storable is what a provider said, as an account can keep it: its email,
// phone number and language normalised (dropped when they are not one, or
// the account rules refuse them: a language as a request's is), any claim
// that is not clean text (a NUL, invalid UTF-8, longer than the contract lets
// the field be) dropped. A subject that is not clean text is refused.
func (s *Service) storable(t *tenant.Tenant, id providers.Identity) (providers.Identity, error) {
	clean := func(v, field string) bool {
		most, ok := s.lengths[field]
		if !ok {
			most = maxSubject
		}
		return utf8.ValidString(v) && !strings.ContainsRune(v, 0) && utf8.RuneCountInString(v) <= most
	}
	if id.Subject == "" || !clean(id.Subject, "") {
		return id, ErrBadSubject
	}
	if tag, ok := account.LanguageTag(id.Language); ok {
		id.Language = tag
	} else {
		id.Language = ""
	}
	for field, v := range map[string]*string{"firstName": &id.FirstName, "lastName": &id.LastName, "language": &id.Language} {
		if !clean(*v, field) {
			*v = ""
		}
	}
	if email, err := account.NormaliseEmail(id.Email); err == nil && clean(email, "email") {
		id.Email = email
	} else {
		id.Email, id.EmailVerified = "", false
	}
	if phone, err := account.NormalisePhone(id.Phone, t.PhoneRegion); err == nil && id.Phone != "" {
		id.Phone = phone
	} else {
		id.Phone, id.PhoneVerified = "", false
	}
	return id, nil
}

// maxSubject is the longest subject an identity keeps (identities.subject).
const maxSubject = 255

// withClaims links link (when set) to c and fills c's empty fields from
// id, writing what changed with its events.
func (s *Service) withClaims(ctx context.Context, t *tenant.Tenant, c *store.Customer, id providers.Identity, link *store.Identity,
	now time.Time, claims bool) (*store.Customer, error) {
	next := *c
	next.Profile = maps.Clone(c.Profile)
	detaches, err := s.fillClaims(ctx, t, &next, id, nil)
	if err != nil {
		return nil, err
	}
	changed := !equalAccounts(c, &next)
	if !changed && link == nil {
		return c, nil
	}
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if link != nil {
			if err := tx.LinkIdentity(ctx, link); err != nil {
				return err
			}
		}
		if changed {
			for _, d := range detaches {
				if err := s.detach(ctx, tx, t, d.from, d.k, now); err != nil {
					return err
				}
			}
			next.UpdatedAt = now
		}
		// A link alone moves the account's version too: the account must
		// still be the one read (an erasure meanwhile unlinked every identity
		// of it, and would miss this one).
		if err := tx.UpdateCustomer(ctx, &next); err != nil {
			return err
		}
		if changed {
			if err := s.accounts.Record(ctx, tx, t, c, &next, now); err != nil {
				return err
			}
		}
		if claims { // after the account's write, which would put back the revocation it read
			return revokeBeforeClaim(ctx, tx, t.ID, c.ID, now)
		}
		return nil
	})
	if !changed {
		return c, err
	}
	return &next, err
}

// detachment is a contact to take off an account where it sat unverified.
type detachment struct {
	from *store.Customer
	k    account.Contact
}

// fillClaims sets what id proves where c has nothing: a verified email or
// phone number that proves no other account (taken off the account where
// it sat unverified), names and language. What the shopper entered is
// never overwritten. read are the holders this sign-in read already.
func (s *Service) fillClaims(ctx context.Context, t *tenant.Tenant, c *store.Customer, id providers.Identity,
	read map[account.Contact]*store.Customer) ([]detachment, error) {
	var detaches []detachment
	claim := func(k account.Contact, verified, empty bool) error {
		if k.Value == "" || !verified {
			return nil
		}
		if !empty && !account.Holds(c, k) {
			return nil
		}
		holder, known := read[k]
		if !known && account.Holds(c, k) {
			// A live account's identifier is its own: the holder is c (a
			// concurrent change of c fails c's versioned update).
			holder, known = c, true
		}
		if !known {
			var err error
			if holder, err = s.accounts.Holder(ctx, t, k); err != nil {
				return err
			}
		}
		if holder != nil && holder.ID != c.ID {
			target, detach, err := s.resolve(ctx, t, holder, k)
			if err != nil || target != nil {
				return err // another account's proof: not this one's
			}
			detaches = append(detaches, detachment{detach, k})
		}
		account.MarkVerified(c, k)
		return nil
	}
	if err := claim(account.EmailContact(id.Email), id.EmailVerified, c.Email == nil); err != nil {
		return nil, err
	}
	if err := claim(account.PhoneContact(id.Phone), id.PhoneVerified, c.Phone == nil); err != nil {
		return nil, err
	}
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
	fillText("language", id.Language)
	return detaches, nil
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
