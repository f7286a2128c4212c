// Package challenge is the one challenge model of customerd: a 6-digit code
// sent to an email or a phone, kept only as a keyed hash, valid for a while,
// single use, dead after a few wrong tries, with every limit held in the
// database so that it holds across replicas.
package challenge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/idna"

	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
)

// Limits are a tenant's one-time code rules.
type Limits struct {
	Lifetime          time.Duration
	MaxAttempts       int
	ResendInterval    time.Duration
	MaxFailuresPerDay int
}

var (
	// ErrInvalidCode: the code is wrong, used, expired or dead; which, the caller is not told.
	ErrInvalidCode = errors.New("the code is wrong or no longer valid")
	// ErrLocked: too many wrong codes for this destination today.
	ErrLocked = errors.New("too many wrong codes today")
	// ErrNotDelivered: the sender did not accept the message; no code is usable.
	ErrNotDelivered = errors.New("the code could not be sent")
)

// ThrottledError: a code was sent to this destination less than ResendInterval ago.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("a code was sent to this address less than a minute ago; retry in %ds", int(e.RetryAfter.Seconds()))
}

// Purpose is what completing a challenge does. A challenge serves its
// purpose, for its account and its held change, and nothing else.
type Purpose string

// The purposes of challenges.
const (
	// SignIn proves the destination; the account is whichever it proves.
	SignIn Purpose = "signin"
	// CheckIn proves an existing account, named by an anonymous caller,
	// through a contact of that account.
	CheckIn Purpose = "checkin"
	// Flow proves the account a flow step asked about.
	Flow Purpose = "flow"
	// Contact verifies a token holder's new contact before it is applied.
	Contact Purpose = "contact"
)

// Target is where a code goes, and what completing it will do.
type Target struct {
	Tenant     string
	Purpose    Purpose
	Channel    sender.Channel
	To         string  // normalised email or E.164 number
	CustomerID *string // the account the challenge is for, when known
	Language   string
	// Page, when set, is the address of the tenant's page that a link in the
	// message opens with the challenge id and the code as query parameters.
	Page string
	// Pending is the change the challenge holds (JSON), applied when it is completed.
	Pending string
	// Fills names the fields the held change would fill, for the message;
	// MoreFills counts the free-form properties it would fill besides.
	Fills     []string
	MoreFills int
	// With, when set, writes in the transaction that stores the challenge
	// (the account the challenge is for, when it is new).
	With func(tx store.Store) error
	// Retry: the caller holds a token of the account, so a retried request
	// may get the live challenge it already got back. Anonymous callers
	// never get a live challenge: it could be someone else's.
	Retry bool
	// Withheld: the code goes to nobody (a token holder's contact change to
	// another account's proof, where nobody may learn who has one). It is
	// kept under the address marked withheld, and never completes. Its wrong
	// codes, as every contact change's, count against contact changes to the
	// address, never against the address's own day (changeKey). Issue
	// withholds a code of its own accord too, while its inbox is marked
	// (withholds).
	Withheld bool
	// TokenIssuedAt, for a token holder's request, is the issue time of
	// its token, kept with the challenge: what a token asked for dies with
	// it when the account's sessions are revoked (AskedBefore).
	TokenIssuedAt *time.Time
	// TokenKID is the kid of the key that signed that token, kept with the
	// challenge too: what the token asked for dies with the key when the
	// key is retired, whatever issue time the token claims; a retried
	// request with a live key's token is not handed it back (stale).
	TokenKID *string
	// StaleBefore: the account's sessions were revoked then; a live
	// challenge of the same request asked before it can never complete, so
	// it is not handed back: this request takes its place.
	StaleBefore *time.Time
}

// AskedBefore reports whether c was asked by a token that a revocation of
// the account's sessions at revoked (nil: none) refuses: one issued in the
// revocation's second or before (a token's time is in whole seconds, as
// the server checks a bearer token), whenever c itself was written (a
// request let in just before the revocation may write it just after). A
// challenge kept without its token's time counts from its writing.
func AskedBefore(c *store.Challenge, revoked *time.Time) bool {
	switch {
	case revoked == nil:
		return false
	case c.TokenIssuedAt != nil:
		return !c.TokenIssuedAt.After(revoked.Truncate(time.Second))
	}
	return !c.CreatedAt.After(*revoked)
}

// withheldPrefix starts the destination a withheld challenge is kept under.
const withheldPrefix = "withheld:"

// keyOf is the destination target's challenge is kept and counted under.
func keyOf(t Target) string {
	if t.Withheld {
		return withheldPrefix + t.To
	}
	return t.To
}

// Withheld reports whether destination is a withheld challenge's, and the
// address it stands for.
func Withheld(destination string) (to string, ok bool) {
	return strings.CutPrefix(destination, withheldPrefix)
}

// Issued is what a caller may see of a challenge.
type Issued struct {
	ID           string
	Channel      sender.Channel
	Destination  string // masked
	ExpiresAt    time.Time
	AttemptsLeft int
}

// Store is what challenges need of the database; a transaction (Tx) is the
// whole store.
type Store interface {
	Tx(ctx context.Context, fn func(store.Store) error) error
	Counted(ctx context.Context, tenant, key, day string) (int, error)
	ExpireChallenge(ctx context.Context, tenant, id string) error
	RehashChallenge(ctx context.Context, tenant, id, codeHash string) error
	Unthrottle(ctx context.Context, tenant, key string, at time.Time) error
	PeekChallenge(ctx context.Context, tenant, destination, except string, now time.Time) (*store.Challenge, error)
	Verify(ctx context.Context, v store.Verification) (*store.Verdict, error)
	Consumer
}

// Consumer uses challenges up: the store, or a transaction of it.
type Consumer interface {
	ConsumeChallenge(ctx context.Context, tenant string, u store.ChallengeUse) (bool, error)
}

// Service issues and completes challenges.
type Service struct {
	store Store
	key   []byte
	now   func() time.Time
	log   *slog.Logger
}

// New returns a Service; key (at least 32 bytes) keys the code hashes. log
// (nil: none) gets a line for each code its relay or gateway refused that
// is answered as a withheld one: the only trace of it.
func New(s Store, key []byte, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: s, key: key, now: now, log: log}
}

// Issue sends a new code to target through snd. A destination that got a
// code less than ResendInterval ago gets no new one: the answer is
// ThrottledError, or, for a token holder retrying a request whose
// challenge is live (same purpose, account and held change), that challenge,
// with what target.With writes (the retried request's change); one that
// can never complete (stale) is replaced by a new one. A challenge is never
// handed to another caller. When no challenge answers, nothing of
// target.With is written either. A code to another spelling of an inbox
// that got one of its kind less than ResendInterval ago is withheld
// (withholds): answered as a sent one is, through snd's guard and at its
// pace, it goes to nobody and never completes.
func (s *Service) Issue(ctx context.Context, lim Limits, target Target, snd sender.Sender) (*Issued, error) {
	now := s.now().UTC()
	key := keyOf(target)
	counted := []string{target.To}
	if target.Purpose == Contact {
		// A contact change's wrong codes count against contact changes to
		// the address, withheld or sent alike (Attempt charges them so), never
		// against the address's sign-ins: the owner of an address is not
		// locked out of signing in by changes nobody asked them about, and a
		// sign-in after a day of them answers alike whoever holds the
		// address. A contact change counts both days.
		counted = append(counted, changeKey(target.To))
	}
	failed := 0
	for _, k := range counted {
		n, err := s.store.Counted(ctx, target.Tenant, failKey(k), day(now))
		if err != nil {
			return nil, err
		}
		failed += n
	}
	if failed >= lim.MaxFailuresPerDay {
		return nil, ErrLocked
	}
	code, err := newCode()
	if err != nil {
		return nil, err
	}
	c := &store.Challenge{
		// Time-ordered (UUIDv7): a new challenge goes to the end of its index.
		ID: uuid.Must(uuid.NewV7()).String(), TenantID: target.Tenant, Channel: string(target.Channel), Destination: key,
		CustomerID: target.CustomerID, MaxAttempts: lim.MaxAttempts, ExpiresAt: now.Add(lim.Lifetime), CreatedAt: now,
		Pending: target.Pending, Purpose: string(target.Purpose), TokenIssuedAt: target.TokenIssuedAt,
		TokenKID: target.TokenKID,
	}
	hash := s.hash(c.TenantID, c.ID, code)
	// The throttles and the challenge commit together: a concurrent caller that is
	// throttled finds this challenge live.
	var (
		reused   *store.Challenge
		withheld bool
		// exposed: whether this code is withheld depended on who has an
		// account (a contact change's, or one to an inbox marked live), so
		// a sent one must not answer otherwise than a withheld one would.
		exposed bool
	)
	err = s.store.Tx(ctx, func(tx store.Store) error {
		reused, withheld, exposed, c.CodeHash = nil, false, target.Purpose == Contact, hash // a retried transaction decides again
		if target.With != nil {
			if err := target.With(tx); err != nil {
				return err
			}
		}
		wait, err := tx.Throttle(ctx, target.Tenant, sendKey(target), now, lim.ResendInterval)
		if err != nil {
			return err
		}
		if wait == 0 {
			marked := false
			if withheld, marked, err = withholds(ctx, tx, target, now, lim.ResendInterval); err != nil {
				return err
			}
			exposed = exposed || marked
			if withheld {
				// Kept and counted as a sent code is, its wrong codes charged
				// to the address's day alike; no code completes it.
				c.CodeHash = noCode
			}
			return tx.CreateChallenge(ctx, c)
		}
		live, err := tx.LiveChallenge(ctx, target.Tenant, key, string(target.Purpose), now)
		if err == nil && target.Retry && sameRequest(live, c) {
			dead, err := stale(ctx, tx, live, target)
			if err != nil {
				return err
			}
			if !dead {
				reused = live
				return nil
			}
			// It can never finish, and the caller (a token issued after the
			// revocation, or signed by a live key) would be stuck with it.
			if err := tx.ExpireChallenge(ctx, live.TenantID, live.ID); err != nil {
				return err
			}
			return tx.CreateChallenge(ctx, c)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return &ThrottledError{RetryAfter: max(wait, time.Second)}
	})
	if err != nil {
		return nil, err
	}
	if reused != nil {
		return issued(reused), nil
	}
	if withheld || target.Withheld {
		snd = sender.Withheld(snd)
	}
	msg := sender.Message{Tenant: target.Tenant, Channel: target.Channel, To: target.To, Code: code,
		ExpiresAt: c.ExpiresAt, Language: target.Language, Fills: target.Fills, MoreFills: target.MoreFills}
	if target.Page != "" {
		msg.Link = link(target.Page, c.ID, code)
	}
	// The send outlives the caller: a caller hanging up once the gateway
	// has the message must not get the resend slot back (each sender bounds
	// its own time).
	began := time.Now()
	if err := snd.Send(context.WithoutCancel(ctx), msg); err != nil {
		if exposed && sender.RefusedRecipient(err) {
			// A refused recipient answered 503 where a withheld code to the
			// same address answers 202: a token holder adding a number that
			// texted STOP learned whether another account had proved it. The
			// code reached nobody either way, so it is kept as a withheld one
			// is (no right code, the resend slots spent) and answered as one.
			s.log.LogAttrs(ctx, slog.LevelInfo, "code not delivered: the relay or gateway refused its recipient; answered as a withheld code",
				slog.String("tenant", c.TenantID), slog.String("channel", c.Channel), slog.String("purpose", c.Purpose), slog.String("error", err.Error()))
			if err = s.refused(ctx, c, snd, began); err == nil {
				return issued(c), nil
			}
		}
		// Neither a usable code nor a spent resend slot is left behind.
		cleanup := context.WithoutCancel(ctx)
		_ = s.store.ExpireChallenge(cleanup, c.TenantID, c.ID)
		_ = s.store.Unthrottle(cleanup, c.TenantID, sendKey(target), now)
		_ = s.store.Unthrottle(cleanup, c.TenantID, mailboxKey(target), now) // when this code marked it
		return nil, fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	return issued(c), nil
}

// refused keeps c, whose recipient the relay or gateway refused, as a
// withheld code is kept (no code completes it), and answers as a withheld
// code through snd would, and when (sender.AsWithheld): nil, or snd's
// failure while it is down.
func (s *Service) refused(ctx context.Context, c *store.Challenge, snd sender.Sender, began time.Time) error {
	ctx = context.WithoutCancel(ctx)
	if err := s.store.RehashChallenge(ctx, c.TenantID, c.ID, noCode); err != nil {
		return err
	}
	return sender.AsWithheld(ctx, snd, began)
}

// sameRequest reports whether live was issued for the same request as c:
// the same purpose, account and held change.
func sameRequest(live, c *store.Challenge) bool {
	sameAccount := (live.CustomerID == nil && c.CustomerID == nil) ||
		(live.CustomerID != nil && c.CustomerID != nil && *live.CustomerID == *c.CustomerID)
	return live.Purpose == c.Purpose && sameAccount && live.Pending == c.Pending && live.Channel == c.Channel
}

// stale reports whether live, a challenge of the same request as target,
// can never complete while target's token could: asked by a token that the
// revocation of the account's sessions refuses (AskedBefore), or signed by
// another key than target's token that is no live signing key of the tenant
// now (retired, or unknown), as completion reads them. A change asked with
// another key that is still live is handed back: after a plain rotation
// tokens of both keys stand, and replacing it for each in turn would send a
// code at every request. So is one kept without its token's kid.
func stale(ctx context.Context, tx store.Store, live *store.Challenge, target Target) (bool, error) {
	if AskedBefore(live, target.StaleBefore) {
		return true, nil
	}
	if live.TokenKID == nil || target.TokenKID == nil || *live.TokenKID == *target.TokenKID {
		return false, nil
	}
	keys, err := tx.SigningKeys(ctx, live.TenantID)
	if err != nil {
		return false, err
	}
	return !LiveKey(keys, *live.TokenKID), nil
}

// LiveKey reports whether kid is one of keys not retired: a change asked
// with a token of any other key (retired, or unknown) no longer stands.
func LiveKey(keys []store.SigningKey, kid string) bool {
	for _, k := range keys {
		if k.KID == kid {
			return k.RetiredAt == nil
		}
	}
	return false
}

// Code names the challenge a code is sent back for: by its id, or as the
// newest live challenge to a destination that an anonymous caller may
// complete (not a token holder's contact change).
type Code struct {
	ChallengeID string
	Destination string
	Code        string
}

// Proof is a challenge whose code was right, not yet used up: the caller
// uses it in the transaction that acts on it (Use), so that a failed
// action leaves the code usable.
type Proof struct {
	*store.ChallengeRead
	use store.ChallengeUse
}

// Attempt spends one attempt on the challenge code names and checks the
// code. The attempt, and a wrong code's charge to the destination's day,
// are counted in the same statement that checks they are allowed, so the
// limits hold across replicas whatever the concurrency; a right code is
// never charged. first are, by channel, the account a plain first sign-in
// creates (store.Verification.First): when the code completes one, the
// account is created in that same statement with the challenge used up,
// and returned with it. Otherwise a right code gives a Proof to act on.
func (s *Service) Attempt(ctx context.Context, lim Limits, tenant string, code Code, first map[string]*store.NewAccount) (*Proof, *store.NewAccount, error) {
	a := store.Attempt{Tenant: tenant, Now: s.now().UTC(), CounterPrefix: failPrefix, ChangeMark: withheldPrefix, Limit: lim.MaxFailuresPerDay}
	a.Day = day(a.Now)
	switch {
	case code.ChallengeID != "":
		id, err := uuid.Parse(code.ChallengeID)
		if err != nil {
			return nil, nil, ErrInvalidCode
		}
		// The id as it is kept (lower-case, hyphenated): a client's UUID
		// type may write it upper-case (Swift's does), braced or as a URN,
		// and each spelling is the same challenge, its attempts the same.
		a.ID = id.String()
	case code.Destination != "":
		// The code's hash is keyed by the challenge's id: read it first.
		c, err := s.store.PeekChallenge(ctx, tenant, code.Destination, string(Contact), a.Now)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, ErrInvalidCode
		} else if err != nil {
			return nil, nil, err
		}
		a.ID = c.ID
	default:
		return nil, nil, ErrInvalidCode
	}
	v, err := s.store.Verify(ctx, store.Verification{Attempt: a, CodeHash: s.hash(tenant, a.ID, strings.TrimSpace(code.Code)), First: first})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, ErrInvalidCode
	case err != nil:
		return nil, nil, err
	case v.Locked:
		return nil, nil, ErrLocked
	case !v.Right:
		return nil, nil, ErrInvalidCode
	}
	return &Proof{ChallengeRead: v.ChallengeRead, use: store.ChallengeUse{ID: v.ID}}, v.Created, nil
}

// Use is the consumption of a proof, for a write that uses it up itself
// (store.NewAccount); Spent turns what that write answers when the
// challenge is no longer live into ErrInvalidCode.
func (s *Service) Use(p *Proof) *store.ChallengeUse {
	u := p.use
	u.At = s.now().UTC()
	return &u
}

// Spent is err, or ErrInvalidCode when err says a challenge was no longer live.
func Spent(err error) error {
	if errors.Is(err, store.ErrSpent) {
		return ErrInvalidCode
	}
	return err
}

// Consume uses up a proof through st (a transaction, or the store);
// ErrInvalidCode when it expired meanwhile or a concurrent request used it
// first.
func (s *Service) Consume(ctx context.Context, st Consumer, p *Proof) error {
	ok, err := st.ConsumeChallenge(ctx, p.TenantID, *s.Use(p))
	if err != nil {
		return err
	}
	if !ok {
		return ErrInvalidCode
	}
	return nil
}

// link is page with the challenge id and the code added to its query.
func link(page, id, code string) string {
	u, err := url.Parse(page)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("challengeId", id)
	q.Set("code", code)
	u.RawQuery = q.Encode()
	return u.String()
}

func issued(c *store.Challenge) *Issued {
	left := c.MaxAttempts - c.Attempts
	to, _ := Withheld(c.Destination)
	return &Issued{ID: c.ID, Channel: sender.Channel(c.Channel), Destination: Mask(to),
		ExpiresAt: c.ExpiresAt, AttemptsLeft: max(left, 0)}
}

// hash keys the code with the service secret, the tenant and the challenge,
// so that a leaked table cannot be brute-forced offline without the secret.
func (s *Service) hash(tenant, id, code string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tenant + "\x00" + id + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}

func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// sendKey is the resend throttle of a destination. A token holder's
// contact change has its own, so that nobody can keep a stranger from
// getting a sign-in code by asking to add the stranger's address.
func sendKey(t Target) string {
	if t.Purpose == Contact {
		return "send:contact:" + t.To
	}
	return "send:" + t.To
}

// withholds marks the inbox of target's address as having got a code of
// its kind (a throttle of its own beside the address's), and reports
// whether this code must go to nobody: another spelling of the inbox got
// one less than interval ago, and this address is no account's verified
// one. An account's own spelling gets its code whatever the others got, at
// its own interval only: with one interval shared by the spellings
// (ba8e170, reverted by 8748068), a stranger's code a minute to owner+x@
// kept the owner from any code they could sign in with. The mark is left as
// it is when it is live, for the owner's code as for a withheld one: the
// same statements either way, so neither answer takes longer. marked: the
// mark was live, so whether the code is withheld depended on the account.
func withholds(ctx context.Context, tx store.Store, target Target, now time.Time, interval time.Duration) (withheld, marked bool, err error) {
	if target.Channel != sender.Email {
		return false, false, nil // a number has one spelling
	}
	wait, err := tx.Throttle(ctx, target.Tenant, mailboxKey(target), now, interval)
	if err != nil || wait == 0 {
		return false, false, err
	}
	if target.Purpose == Contact {
		// A contact change never goes to an account's verified address:
		// its own is no change, another's is Withheld already.
		return true, true, nil
	}
	// account.VerifiedOn, read in this transaction: the account's
	// verified email is its address.
	verified, err := tx.EmailVerified(ctx, target.Tenant, target.To)
	return !verified, true, err
}

// noCode is the hash a withheld code's challenge is kept with: a code's is
// 64 hex digits, so no code is right for it.
const noCode = "withheld"

// mailboxKey is the throttle of the inbox target's address reaches, of
// target's kind (a sign-in's or a contact change's, as sendKey's).
func mailboxKey(t Target) string {
	if t.Purpose == Contact {
		return "mailbox:contact:" + mailbox(t.To)
	}
	return "mailbox:signin:" + mailbox(t.To)
}

// mailbox is the inbox an address's mail lands in, as far as it is known
// from the address: without its subaddress (jane+tag@), its domain as DNS
// finds it (a domain that is not ASCII by its A-label: bücher.de is
// xn--bcher-kva.de, which an address keeps as written), and at Gmail
// without the dots of its local part, under gmail.com. A bomber's spellings
// of one inbox are each an address, with a resend interval of its own; the
// inbox is one. A phone number is its own.
func mailbox(to string) string {
	at := strings.LastIndexByte(to, '@')
	if at < 0 {
		return to
	}
	local, domain := to[:at], to[at+1:]
	if ascii, err := idna.Punycode.ToASCII(domain); err == nil {
		domain = ascii // the address's domain is mapped already (account.NormaliseEmail)
	}
	if plus := strings.IndexByte(local, '+'); plus > 0 {
		local = local[:plus]
	}
	if domain == "gmail.com" || domain == "googlemail.com" {
		local, domain = strings.ReplaceAll(local, ".", ""), "gmail.com"
	}
	return local + "@" + domain
}

// failPrefix+destination counts a destination's wrong codes of a day.
const failPrefix = "fail:"

func failKey(to string) string { return failPrefix + to }

// changeKey is the destination whose counter the wrong codes of contact
// changes to the address to are charged to (store.Attempt.ChangeMark): the
// one a withheld change is kept under.
func changeKey(to string) string { return keyOf(Target{To: to, Withheld: true}) }

// KeptUnder are the destinations challenges to destination are kept
// under, a withheld one's included, for an erasure to forget.
func KeptUnder(destination string) []string {
	return []string{destination, changeKey(destination)}
}

// Keys are the counter and throttle keys that name destination, for an
// erasure to forget.
func Keys(destination string) []string {
	signIn, change := Target{To: destination}, Target{To: destination, Purpose: Contact}
	return []string{failKey(destination), failKey(changeKey(destination)),
		sendKey(signIn), sendKey(change), mailboxKey(signIn), mailboxKey(change)}
}
func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Mask hides most of an email or phone number: j***@e***.com, +33******78.
func Mask(to string) string {
	if at := strings.LastIndexByte(to, '@'); at > 0 {
		local, domain := to[:at], to[at+1:]
		tld := ""
		if dot := strings.LastIndexByte(domain, '.'); dot > 0 {
			domain, tld = domain[:dot], domain[dot:]
		}
		return first(local) + "***@" + first(domain) + "***" + tld
	}
	if len(to) <= 5 {
		return strings.Repeat("*", len(to))
	}
	return to[:3] + strings.Repeat("*", len(to)-5) + to[len(to)-2:]
}

func first(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}
