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
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

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
	return fmt.Sprintf("a code was sent less than a minute ago; retry in %ds", int(e.RetryAfter.Seconds()))
}

// Target is where a code goes.
type Target struct {
	Tenant     string
	Channel    sender.Channel
	To         string  // normalised email or E.164 number
	CustomerID *string // the account the challenge proves, when known
	Language   string
	// Page, when set, is the address of the tenant's page that a link in the
	// message opens with the challenge id and the code as query parameters.
	Page string
	// Pending is the change the challenge holds (JSON), applied when it is completed.
	Pending string
	// With, when set, writes in the transaction that stores the challenge
	// (the account the challenge is for, when it is new).
	With func(tx store.Store) error
}

// Issued is what a caller may see of a challenge.
type Issued struct {
	ID           string
	Channel      sender.Channel
	Destination  string // masked
	ExpiresAt    time.Time
	AttemptsLeft int
}

// Service issues and completes challenges.
type Service struct {
	store store.Store
	key   []byte
	now   func() time.Time
}

// New returns a Service; key (at least 32 bytes) keys the code hashes.
func New(s store.Store, key []byte, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, key: key, now: now}
}

// Issue sends a new code to target through snd. With reuse set, a
// destination that got a code less than ResendInterval ago is answered with
// that live challenge instead of ThrottledError (no second code is sent).
func (s *Service) Issue(ctx context.Context, lim Limits, target Target, snd sender.Sender, reuse bool) (*Issued, error) {
	now := s.now().UTC()
	if n, err := s.store.Counted(ctx, target.Tenant, failKey(target.To), day(now)); err != nil {
		return nil, err
	} else if n >= lim.MaxFailuresPerDay {
		return nil, ErrLocked
	}
	code, err := newCode()
	if err != nil {
		return nil, err
	}
	c := &store.Challenge{
		ID: uuid.NewString(), TenantID: target.Tenant, Channel: string(target.Channel), Destination: target.To,
		CustomerID: target.CustomerID, MaxAttempts: lim.MaxAttempts, ExpiresAt: now.Add(lim.Lifetime), CreatedAt: now,
		Pending: target.Pending,
	}
	c.CodeHash = s.hash(c.TenantID, c.ID, code)
	var wait time.Duration
	// The throttle and the challenge commit together: a concurrent caller that is
	// throttled finds this challenge live.
	err = s.store.Tx(ctx, func(tx store.Store) error {
		if target.With != nil {
			if err := target.With(tx); err != nil {
				return err
			}
		}
		var err error
		if wait, err = tx.Throttle(ctx, target.Tenant, sendKey(target.To), now, lim.ResendInterval); err != nil || wait > 0 {
			return err
		}
		return tx.CreateChallenge(ctx, c)
	})
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		if reuse {
			if live, err := s.store.LiveChallenge(ctx, target.Tenant, target.To, now); err == nil {
				return issued(live), nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		return nil, &ThrottledError{RetryAfter: wait}
	}
	msg := sender.Message{Tenant: target.Tenant, Channel: target.Channel, To: target.To, Code: code,
		ExpiresAt: c.ExpiresAt, Language: target.Language}
	if target.Page != "" {
		msg.Link = link(target.Page, c.ID, code)
	}
	if err := snd.Send(ctx, msg); err != nil {
		// Neither a usable code nor a spent resend slot is left behind.
		cleanup := context.WithoutCancel(ctx)
		_ = s.store.ExpireChallenge(cleanup, c.TenantID, c.ID)
		_ = s.store.Unthrottle(cleanup, c.TenantID, sendKey(target.To), now)
		return nil, fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	return issued(c), nil
}

// Complete checks code against challenge id of tenant and, when it matches,
// consumes the challenge and returns it.
func (s *Service) Complete(ctx context.Context, lim Limits, tenant, id, code string) (*store.Challenge, error) {
	c, err := s.Check(ctx, lim, tenant, id, code)
	if err != nil {
		return nil, err
	}
	return c.Challenge, s.Consume(ctx, s.store, c.Challenge)
}

// Check verifies code against challenge id of tenant without using the
// challenge up: the caller consumes it with Consume in the transaction that
// acts on it, so that a failed action leaves the code usable. A wrong code
// counts against the challenge and against its destination's day.
//
// The challenge comes with the account that holds its destination, read
// with it, which the sign-in may use instead of looking again.
func (s *Service) Check(ctx context.Context, lim Limits, tenant, id, code string) (*store.ChallengeRead, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrInvalidCode
	}
	now := s.now().UTC()
	today := day(now)
	c, err := s.store.Challenge(ctx, tenant, id, failPrefix, today)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidCode
	} else if err != nil {
		return nil, err
	}
	if c.ConsumedAt != nil || c.Attempts >= c.MaxAttempts || !now.Before(c.ExpiresAt) {
		return nil, ErrInvalidCode
	}
	if c.Counted >= lim.MaxFailuresPerDay {
		return nil, ErrLocked
	}
	if !hmac.Equal([]byte(s.hash(tenant, id, strings.TrimSpace(code))), []byte(c.CodeHash)) {
		err := s.store.Tx(ctx, func(tx store.Store) error {
			if _, err := tx.FailChallenge(ctx, tenant, id); err != nil {
				return err
			}
			_, err := tx.Count(ctx, tenant, failKey(c.Destination), today)
			return err
		})
		if err != nil {
			return nil, err
		}
		return nil, ErrInvalidCode
	}
	return c, nil
}

// Use is the consumption of a checked challenge, for a write that uses it
// up itself (store.NewAccount); Spent turns what that write answers when the
// challenge is no longer live into ErrInvalidCode.
func (s *Service) Use(c *store.Challenge) *store.ChallengeUse {
	return &store.ChallengeUse{ID: c.ID, At: s.now().UTC()}
}

// Spent is err, or ErrInvalidCode when err says a challenge was no longer live.
func Spent(err error) error {
	if errors.Is(err, store.ErrSpent) {
		return ErrInvalidCode
	}
	return err
}

// Consume uses up a checked challenge through st (a transaction, or the
// store); ErrInvalidCode when it expired meanwhile or a concurrent request
// used it first.
func (s *Service) Consume(ctx context.Context, st store.Store, c *store.Challenge) error {
	now := s.now().UTC()
	ok, err := st.ConsumeChallenge(ctx, c.TenantID, c.ID, now)
	if err != nil {
		return err
	}
	if !ok {
		return ErrInvalidCode
	}
	c.ConsumedAt = &now
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
	return &Issued{ID: c.ID, Channel: sender.Channel(c.Channel), Destination: Mask(c.Destination),
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

func sendKey(to string) string { return "send:" + to }

// failPrefix+destination counts a destination's wrong codes of a day.
const failPrefix = "fail:"

func failKey(to string) string { return failPrefix + to }
func day(t time.Time) string   { return t.UTC().Format(time.DateOnly) }

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
