package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/customerd/customerd/account/field"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/strictjson"
	"github.com/customerd/customerd/tenant"
)

var (
	// ErrUnknownCaller: the token's customer does not exist (any more).
	ErrUnknownCaller = errors.New("the token's customer does not exist")
	// ErrUnprovenContact: the proven contact does not prove the account the
	// challenge was for (any more).
	ErrUnprovenContact = errors.New("this contact does not prove the account")
	// ErrNoChannel: the tenant has no sender for the account's contact.
	ErrNoChannel = errors.New("no sender can reach this account")
)

// Store is what the account service needs of the database; a transaction
// (Tx) is the whole store.
type Store interface {
	Tx(ctx context.Context, fn func(store.Store) error) error
	Customer(ctx context.Context, tenant, id string) (*store.Customer, error)
	CustomerByEmail(ctx context.Context, tenant, email string) (*store.Customer, error)
	CustomerByPhone(ctx context.Context, tenant, phone string) (*store.Customer, error)
	Linked(ctx context.Context, tenant, customer string) (bool, error)
	CreateAccount(ctx context.Context, a *store.NewAccount) error
}

// Service applies the account rules to stored accounts.
type Service struct {
	store      Store
	challenges *challenge.Service
	now        func() time.Time
	log        *slog.Logger // a contact change notice not delivered
}

// NewService returns a Service.
func NewService(s Store, c *challenge.Service, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, challenges: c, now: now, log: log}
}

// Now is the service's time (store.Clock: as every database stores it).
func (s *Service) Now() time.Time { return s.now() }

// Customer reads an account of t.
func (s *Service) Customer(ctx context.Context, t *tenant.Tenant, id string) (*store.Customer, error) {
	c, err := s.store.Customer(ctx, t.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownCaller
	}
	return c, err
}

// Holder is the account of t that has k (verified or not), and whether an
// identity is linked to it when that can decide the ownership rule; nil
// when none has k.
func (s *Service) Holder(ctx context.Context, t *tenant.Tenant, k Contact) (*store.Customer, error) {
	var (
		c   *store.Customer
		err error
	)
	if k.Channel == sender.Email {
		c, err = s.store.CustomerByEmail(ctx, t.ID, k.Value)
	} else {
		c, err = s.store.CustomerByPhone(ctx, t.ID, k.Value)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// Linked reports whether an identity is linked to c, read only when the
// ownership rule needs it (nothing verified on c).
func (s *Service) Linked(ctx context.Context, c *store.Customer) (bool, error) {
	if c.EmailVerified || c.PhoneVerified {
		return false, nil
	}
	return s.store.Linked(ctx, c.TenantID, c.ID)
}

// maxAttempts bounds the retries of an update that keeps meeting concurrent writers.
const maxAttempts = 25

// Result is the answer to an upsert: the account (200) or a challenge (202).
type Result struct {
	Customer  *store.Customer
	Challenge *challenge.Issued
}

// Held is the change a challenge holds, applied when it is completed: the
// request's fields and the flow to run again once the contact is proven.
// A token holder's contact change holds the whole request; an anonymous
// caller's only what it may fill (Fillable).
type Held struct {
	Input Input  `json:"input"`
	Flow  string `json:"flow,omitempty"`
}

// Encode is h as stored with its challenge ("" when it holds nothing).
func (h Held) Encode() string {
	if len(h.Input.Set) == 0 && len(h.Input.Extras) == 0 && h.Flow == "" {
		return ""
	}
	b, err := json.Marshal(h)
	if err != nil {
		return ""
	}
	return string(b)
}

// DecodeHeld reads what Encode wrote; an unreadable change holds nothing.
func DecodeHeld(s string) Held {
	var h Held
	if s != "" {
		_ = json.Unmarshal([]byte(s), &h)
	}
	return h
}

func flowName(f *flows.Flow) string {
	if f == nil {
		return ""
	}
	return f.Name
}

// Fillable is what an anonymous caller's change may hold for an existing
// account: never an identifier, a consent or a flag the shopper alone sets.
func Fillable(in Input) Input {
	out := Input{Set: make(map[string]any, len(in.Set)), Extras: in.Extras}
	for k, v := range in.Set {
		if v != nil && k != "email" && k != "phoneNumber" && k != "isProspect" && !slices.Contains(consents, k) {
			out.Set[k] = v
		}
	}
	return out
}

// FillOnly is the part of in that fills fields c has no value for: it
// never overwrites.
func FillOnly(c *store.Customer, in Input) Input {
	out := Input{Set: map[string]any{}, Extras: map[string]json.RawMessage{}}
	for k, v := range in.Set {
		if !c.Has(k) {
			out.Set[k] = v
		}
	}
	stored := field.Spellings(c.Profile)
	for k, v := range in.Extras {
		if _, ok := stored[strictjson.FoldName(k)]; !ok { // in any case: Apply would replace it
			out.Extras[k] = v
		}
	}
	return out
}

// Names lists the fields in sets, in order.
func (in Input) Names() []string {
	names := append(slices.Collect(maps.Keys(in.Set)), slices.Collect(maps.Keys(in.Extras))...)
	slices.Sort(names)
	return names
}

// Update applies in to the caller's own account and runs flow (nil: none);
// issuedAt is the caller's token's issue time, and kid the key that signed
// it. Once anybody ever proved the account, a new email or phone number is
// not applied: it is held by a challenge sent to the new contact
// (verify-before-apply), which lives no longer than the token.
func (s *Service) Update(ctx context.Context, t *tenant.Tenant, caller string, issuedAt time.Time, kid string, in Input,
	flow *flows.Flow) (Result, error) {
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
		now := s.Now()
		next, err := Apply(t, c, in, now)
		if err != nil {
			return Result{}, err
		}
		if err := s.keepsProof(ctx, c, next); err != nil {
			return Result{}, err
		}
		if res, held, err := s.changesContact(ctx, t, c, next, in, flow, issuedAt, kid); held || err != nil {
			return res, err
		}
		st := &flows.State{Customer: next, Now: now}
		if err := flow.Run(ctx, st); err != nil {
			return Result{}, err
		}
		write := func(tx store.Store) error { return s.write(ctx, tx, t, c, next, st.Events, now) }
		var res Result
		if st.Ask != nil {
			// The change, its events and the flow's challenge commit together:
			// a challenge that cannot be sent (no contact proves the account,
			// a code sent a moment ago, the day's wrong codes spent) leaves
			// nothing written behind its error.
			res.Challenge, err = s.challengeOwner(ctx, t, next, st.Ask, Held{Flow: flowName(flow)}, write)
		} else {
			err = s.store.Tx(ctx, write)
			res.Customer = next
		}
		switch {
		case err == nil:
			// A verified contact removed is told (a change is held behind a
			// code to the new contact, and told when it is completed).
			s.NotifyContactChange(ctx, t, c, next)
			return res, nil
		case errors.Is(err, store.ErrStale):
			continue // someone else wrote in between: apply the change to what is there now
		case errors.Is(err, store.ErrConflict):
			return Result{}, conflict(in)
		default:
			return Result{}, err
		}
	}
	return Result{}, fmt.Errorf("update %s: %w", caller, store.ErrUnavailable)
}

// keepsProof refuses next when it clears the last verified contact of c
// and no identity is linked to it: the account would become one nobody
// ever proved, whose contacts change without a code and which the first
// prover of its identifier claims, while the token of the one who cleared
// it still opens it (an attacker clearing their own number, then putting a
// victim's email on the account, got the victim signed into it).
func (s *Service) keepsProof(ctx context.Context, c, next *store.Customer) error {
	if !Proven(c, false) || Proven(next, false) {
		return nil
	}
	linked, err := s.Linked(ctx, next)
	if err != nil || linked {
		return err
	}
	verr := &ValidationError{}
	if c.EmailVerified && next.Email == nil {
		verr.add("email", "is the account's only verified contact: confirm another one before removing it")
	}
	if c.PhoneVerified && next.Phone == nil {
		verr.add("phoneNumber", "is the account's only verified contact: confirm another one before removing it")
	}
	if len(verr.Fields) == 0 {
		return nil // changed, not removed: the change is held behind a code to the new contact
	}
	return verr
}

// changesContact holds next's new contact behind a challenge to it when
// anybody ever proved c (held is true then). Otherwise the change goes on,
// unverified: an unverified contact proves nothing, so it can neither
// capture nor block another account's sign-in.
func (s *Service) changesContact(ctx context.Context, t *tenant.Tenant, c, next *store.Customer, in Input, flow *flows.Flow,
	issuedAt time.Time, kid string) (Result, bool, error) {
	changed := newContacts(c, next)
	if len(changed) == 0 {
		return Result{}, false, nil
	}
	linked, err := s.Linked(ctx, c)
	if err != nil {
		return Result{}, true, err
	}
	if !Proven(c, linked) {
		return Result{}, false, nil
	}
	if len(changed) > 1 {
		return Result{}, true, &ValidationError{Fields: map[string][]string{
			"phoneNumber": {"change one contact at a time: confirm the new email first"}}}
	}
	k := changed[0]
	other, err := s.Holder(ctx, t, k)
	if err != nil {
		return Result{}, true, err
	}
	snd := t.Senders[k.Channel]
	if snd == nil {
		return Result{}, true, ErrNoChannel
	}
	withheld := false
	if other != nil && other.ID != c.ID && VerifiedOn(other, k) {
		// Another account's proof: no code to someone else's contact. Where
		// the tenant's policy is that nobody learns who has an account, the
		// answer is the same challenge as for a free address, and its code
		// goes nowhere (nobody can complete it; were it completed, the
		// contact would still be refused as another account's).
		if t.CheckInPolicy != "partial" && t.CheckInPolicy != "full" {
			return Result{}, true, conflict(in)
		}
		withheld = true // Issue sends it through snd's guard, to nobody
	}
	// The account's other contact stays as it is when the change applies
	// (signin's changeContact): it is not held, so that the change names no
	// address but the one its code goes to (the other may be someone
	// else's, sitting unverified here, whose erasure would miss it).
	held := Held{Input: in.Without(OtherContactField(k)), Flow: flowName(flow)}
	iss, err := s.challenges.Issue(ctx, t.OTP, challenge.Target{Tenant: t.ID, Purpose: challenge.Contact, Channel: k.Channel,
		To: k.Value, CustomerID: &c.ID, Language: languageOf(t, next), Pending: held.Encode(),
		Retry: true, Withheld: withheld, TokenIssuedAt: &issuedAt, TokenKID: &kid,
		StaleBefore: c.SessionsRevokedAt}, snd)
	return Result{Challenge: iss}, true, err
}

// newContacts are the emails and phone numbers next adds to c or puts in
// place of c's.
func newContacts(c, next *store.Customer) []Contact {
	var out []Contact
	if next.Email != nil && !sameText(c.Email, next.Email) {
		out = append(out, EmailContact(*next.Email))
	}
	if next.Phone != nil && !sameText(c.Phone, next.Phone) {
		out = append(out, PhoneContact(*next.Phone))
	}
	return out
}

func conflict(in Input) error {
	verr := &ValidationError{}
	for _, name := range []string{"email", "phoneNumber"} {
		if in.Has(name) {
			verr.add(name, "cannot be used for this account")
		}
	}
	return verr.orNil()
}

// Run is a flow to run on a completed challenge's account.
type Run struct {
	Flow *flows.Flow // nil: none
	// Passed: the challenge completed is the flow's own (flows.State.Passed).
	Passed bool
}

// Write runs r's flow on next, the change of before, and writes it with its
// events through tx, a transaction; the flow's challenge, if it asks for
// one, is for the caller to send once tx commits.
func (s *Service) Write(ctx context.Context, tx store.Store, t *tenant.Tenant, before, next *store.Customer, r Run, now time.Time) (*flows.Ask, error) {
	st := &flows.State{Customer: next, Now: now, Passed: r.Passed}
	if err := r.Flow.Run(ctx, st); err != nil {
		return nil, err
	}
	return st.Ask, s.write(ctx, tx, t, before, next, st.Events, now)
}

// write writes next, the change of before, with its events and the types
// a flow emitted (extra) through tx.
func (s *Service) write(ctx context.Context, tx store.Store, t *tenant.Tenant, before, next *store.Customer, extra []string, now time.Time) error {
	if err := tx.UpdateCustomer(ctx, next); err != nil {
		return err
	}
	evs, err := s.Events(t, before, next, extra, now)
	if err != nil {
		return err
	}
	return addEvents(ctx, tx, evs)
}

// Create makes a new account from in for an anonymous caller and runs flow
// (nil: none) in the same transaction. When an account already has the
// identifier, nothing of it is changed: a code goes to the identifier the
// caller sent, holding what the request may fill. Where the tenant's
// check-in policy asks for it, new and existing identifiers get the same
// answer.
func (s *Service) Create(ctx context.Context, t *tenant.Tenant, in Input, flow *flows.Flow) (Result, error) {
	now := s.Now()
	for range 5 {
		next, err := Apply(t, nil, in, now)
		if err != nil {
			return Result{}, err
		}
		id := identifierOf(t, next)
		existing, err := s.Holder(ctx, t, id)
		if err != nil {
			return Result{}, err
		}
		if existing != nil {
			return s.named(ctx, t, existing, next, in, flow, now)
		}
		// The flow judges the request as sent, as named does for an
		// existing account: leaving off the other contact first made a flow
		// that requires it refuse a new account only (412 against 202).
		st := &flows.State{Customer: next, Anonymous: true, Now: now}
		if err := flow.Run(ctx, st); err != nil {
			return Result{}, err
		}
		if err := s.dropTaken(ctx, t, next); err != nil {
			return Result{}, err
		}
		evs, err := s.Events(t, nil, next, st.Events, now)
		if err != nil {
			return Result{}, err
		}
		account := &store.NewAccount{Customer: next, Events: evs}
		ask := st.Ask
		if ask == nil && !st.Reveal {
			ask = policyAsk(t)
		}
		var res Result
		if ask != nil {
			// The account, its events and the challenge commit together, as for an
			// existing account's challenge.
			target := challenge.Target{Tenant: t.ID, Purpose: challenge.Flow, Channel: id.Channel, To: id.Value,
				CustomerID: &next.ID, Language: languageOf(t, next), Pending: Held{Flow: flowName(flow)}.Encode(),
				With: func(tx store.Store) error { return tx.CreateAccount(ctx, account) }}
			res.Challenge, err = s.issue(ctx, t, target, ask)
		} else {
			err = s.store.CreateAccount(ctx, account)
			res.Customer = next
		}
		if errors.Is(err, store.ErrConflict) {
			continue // another request took an identifier meanwhile: look again
		}
		return res, err
	}
	return Result{}, fmt.Errorf("create: %w", store.ErrUnavailable)
}

// policyAsk is the challenge the tenant's check-in policy sends every
// anonymous caller, so that new and existing accounts are answered alike;
// nil under "none", which answers a new account at once.
func policyAsk(t *tenant.Tenant) *flows.Ask {
	switch t.CheckInPolicy {
	case flows.CheckInPartial:
		return &flows.Ask{Link: true}
	case flows.CheckInFull:
		return &flows.Ask{}
	}
	return nil
}

// revealed is what check-in "none" shows an anonymous caller of the
// existing account its identifier names: that it exists (its id and
// times), the identifier sent and whether it is proven, and whether the
// account is still a prospect. The tenant accepts telling that an address
// is known, not what its account holds: the whole account showed anyone
// who knows an email its owner's phone number, postal address, birth date
// and consents.
func revealed(t *tenant.Tenant, c *store.Customer) *store.Customer {
	out := &store.Customer{ID: c.ID, TenantID: c.TenantID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Profile: store.Profile{}}
	if t.Identifier == "phoneNumber" {
		out.Phone, out.PhoneVerified = c.Phone, c.PhoneVerified
	} else {
		out.Email, out.EmailVerified = c.Email, c.EmailVerified
	}
	if p, ok := c.Profile["isProspect"]; ok {
		out.Profile["isProspect"] = p
	}
	return out
}

// identifierOf is the contact that identifies next in t (Apply requires it
// on a new account).
func identifierOf(t *tenant.Tenant, next *store.Customer) Contact {
	if t.Identifier == "phoneNumber" {
		return PhoneContact(*next.Phone)
	}
	return EmailContact(*next.Email)
}

// dropTaken leaves off a new account the contact, other than its
// identifier, that another account already has (under check-in partial
// or full, always): the new account's owner proves and adds it later, and
// neither the answer nor the account shows anything of the other one.
func (s *Service) dropTaken(ctx context.Context, t *tenant.Tenant, next *store.Customer) error {
	other := PhoneContact("")
	if t.Identifier == "phoneNumber" {
		other = EmailContact("")
	}
	if other.Channel == sender.Email && next.Email != nil {
		other.Value = *next.Email
	} else if other.Channel == sender.SMS && next.Phone != nil {
		other.Value = *next.Phone
	}
	if other.Value == "" {
		return nil
	}
	holder, err := s.Holder(ctx, t, other)
	if err != nil || holder == nil {
		return err
	}
	// A shopper's own contact is kept: leaving it off wherever nobody may
	// learn who has an account (check-in partial or full) lost the phone of
	// every new shopper, and a flow requiring it could never finish. So a
	// caller who proves their own identifier can learn, from their new
	// account, whether another one holds the contact they typed (README,
	// What stays possible).
	*next = *Detach(next, other)
	return nil
}

// named answers an anonymous caller who named an existing account: the
// flow judges the request as it would a new account's, so the answer does
// not tell that the account exists; then a code goes to the identifier the
// caller sent (never another contact), holding what the request may fill.
func (s *Service) named(ctx context.Context, t *tenant.Tenant, existing, asNew *store.Customer, in Input, flow *flows.Flow, now time.Time) (Result, error) {
	st := &flows.State{Customer: asNew, Anonymous: true, Existing: true, Now: now}
	if err := flow.Run(ctx, st); err != nil {
		return Result{}, err
	}
	if st.Reveal {
		return Result{Customer: revealed(t, existing)}, nil // check-in "none": the tenant accepts telling
	}
	ask := st.Ask
	if ask == nil {
		if ask = policyAsk(t); ask == nil {
			ask = &flows.Ask{}
		}
	}
	k := identifierOf(t, asNew)
	// Read whether an identity is linked even where a verified contact
	// decides the rule: a new address, an account nobody proved and a
	// shopper's account cost the same round trips.
	linked, err := s.store.Linked(ctx, existing.TenantID, existing.ID)
	if err != nil {
		return Result{}, err
	}
	held := Held{Input: Fillable(in), Flow: flowName(flow)}
	// The message names the account fields the change would fill, and only
	// counts its free-form properties: their names are the sender's own
	// text, and would sit beside a genuine code in the owner's message.
	fill := FillOnly(existing, held.Input)
	target := challenge.Target{Tenant: t.ID, Purpose: challenge.CheckIn, Channel: k.Channel, To: k.Value,
		CustomerID: &existing.ID, Language: languageOf(t, existing), Pending: held.Encode(),
		Fills: slices.Sorted(maps.Keys(fill.Set)), MoreFills: len(fill.Extras)}
	if Decide(t, existing, k, linked) == Detaches {
		// The identifier sent is nobody's proof of that account: the code
		// proves it for whoever completes it, who gets an account of their own.
		target.Purpose, target.CustomerID, target.Fills, target.MoreFills = challenge.SignIn, nil, nil, 0
	}
	iss, err := s.issue(ctx, t, target, ask)
	return Result{Challenge: iss}, err
}

// issue sends target's challenge as ask wants it (a code, or a link to the
// tenant's check-in page).
func (s *Service) issue(ctx context.Context, t *tenant.Tenant, target challenge.Target, ask *flows.Ask) (*challenge.Issued, error) {
	if ask.Link {
		target.Page = t.CheckInPage
	}
	snd := t.Senders[target.Channel]
	if snd == nil {
		return nil, ErrNoChannel
	}
	// A destination the sender refuses is refused before target.With
	// writes anything (a new account would stay behind a 400).
	if sc, ok := snd.(sender.Screener); ok {
		if err := sc.Allows(target.To); err != nil {
			return nil, err
		}
	}
	return s.challenges.Issue(ctx, t.OTP, target, snd)
}

// challengeOwner sends a code (or a check-in link) to a contact of the
// caller's account c that proves it; the challenge holds h until it is
// completed, and commits with what with writes. An account that only a
// linked identity proves has no contact to send it to: a 412 naming the
// contact to confirm first.
func (s *Service) challengeOwner(ctx context.Context, t *tenant.Tenant, c *store.Customer, ask *flows.Ask, h Held,
	with func(store.Store) error) (*challenge.Issued, error) {
	linked, err := s.Linked(ctx, c)
	if err != nil {
		return nil, err
	}
	k, ok := ProvingContact(t, c, linked)
	switch {
	case ok:
	case c.EmailVerified || c.PhoneVerified:
		return nil, ErrNoChannel // a verified contact, on a channel the tenant sends nothing on
	default:
		return nil, &ValidationError{Fields: map[string][]string{t.Identifier: {
			"no verified email or phone number on this account to send the flow's code to: confirm one first"}}}
	}
	return s.issue(ctx, t, challenge.Target{Tenant: t.ID, Purpose: challenge.Flow, Channel: k.Channel, To: k.Value,
		CustomerID: &c.ID, Language: languageOf(t, c), Pending: h.Encode(), Retry: true, With: with}, ask)
}

// Events are the events of a change from before (nil: created) to after,
// built outside the transaction that writes them, which holds the writer.
func (s *Service) Events(t *tenant.Tenant, before, after *store.Customer, extra []string, now time.Time) ([]*store.Event, error) {
	types := []string{flows.Upserted}
	if before != nil && (!sameText(before.Email, after.Email) || !sameText(before.Phone, after.Phone)) {
		types = append(types, flows.ContactChange)
	}
	for _, typ := range extra {
		// A flow's emit adds its types, but never a contact change that did
		// not happen: that event is written above, exactly when one did.
		if typ != flows.ContactChange && !slices.Contains(types, typ) {
			types = append(types, typ)
		}
	}
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

// Record writes the events of a change through tx.
func (s *Service) Record(ctx context.Context, tx store.Store, t *tenant.Tenant, before, after *store.Customer, now time.Time) error {
	evs, err := s.Events(t, before, after, nil, now)
	if err != nil {
		return err
	}
	return addEvents(ctx, tx, evs)
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
	body := Event{ID: newID(), Type: typ, TenantID: c.TenantID, CustomerID: c.ID,
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

// languageOf is the language messages to c are written in.
func languageOf(t *tenant.Tenant, c *store.Customer) string {
	if l, ok := c.Profile["language"].(string); ok {
		return l
	}
	return t.DefaultLanguage
}

// NewAccount is an empty account of t with the tenant's defaults.
func NewAccount(t *tenant.Tenant, now time.Time) *store.Customer {
	c := BlankAccount(t, now)
	FillDefaults(t, c)
	return c
}

// BlankAccount is an empty account of t, without even the defaults.
func BlankAccount(t *tenant.Tenant, now time.Time) *store.Customer {
	return &store.Customer{ID: newID(), TenantID: t.ID, Profile: store.Profile{}, CreatedAt: now, UpdatedAt: now}
}

// FillDefaults sets a new account's defaults where it has no value.
func FillDefaults(t *tenant.Tenant, c *store.Customer) { fill(t, c, true) }
