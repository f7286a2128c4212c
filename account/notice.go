package account

import (
	"context"
	"log/slog"

	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

// NotifyContactChange tells the account's verified contacts of a committed
// change of its contacts from before to after, so that a token holder
// changing them (a stolen token) is not unseen: a verified contact replaced
// or removed is told so (the new one masked); a contact proven on a channel
// where the account had none verified is told to its other verified
// contact. An unverified contact, which may be someone else's, is told
// nothing. Best effort: the change stands either way, and a notice not
// delivered is logged.
func (s *Service) NotifyContactChange(ctx context.Context, t *tenant.Tenant, before, after *store.Customer) {
	for _, m := range notices(before, after) {
		snd := t.Senders[m.Channel]
		if snd == nil {
			continue
		}
		m.Tenant, m.Language = t.ID, languageOf(t, after)
		if err := snd.Send(context.WithoutCancel(ctx), m); err != nil {
			// A sender's error never names the destination.
			s.log.LogAttrs(ctx, slog.LevelWarn, "contact change notice not delivered", slog.String("tenant", t.ID),
				slog.String("channel", string(m.Channel)), slog.String("error", err.Error()))
		}
	}
}

// notices are the notices a change from before to after owes the account's
// verified contacts (without tenant and language).
func notices(before, after *store.Customer) []sender.Message {
	type side struct {
		ch                    sender.Channel
		old, now              *string
		verified, nowVerified bool
	}
	sides := []side{
		{sender.Email, before.Email, after.Email, before.EmailVerified && before.Email != nil, after.EmailVerified && after.Email != nil},
		{sender.SMS, before.Phone, after.Phone, before.PhoneVerified && before.Phone != nil, after.PhoneVerified && after.Phone != nil},
	}
	var out []sender.Message
	for i, c := range sides {
		switch {
		case c.verified && c.now == nil:
			out = append(out, sender.Message{Channel: c.ch, To: *c.old, Change: sender.Removed, NewContact: sender.NoContact})
		case c.verified && *c.now != *c.old:
			out = append(out, sender.Message{Channel: c.ch, To: *c.old, Change: sender.Replaced, NewContact: challenge.Mask(*c.now)})
		case !c.verified && c.nowVerified:
			// A way in of a kind the account had none of: the old contact of
			// that kind was nobody's proof, so the other one hears of it.
			if o := sides[1-i]; o.verified && o.nowVerified && *o.old == *o.now {
				out = append(out, sender.Message{Channel: o.ch, To: *o.old, Change: sender.Added, NewContact: challenge.Mask(*c.now)})
			}
		}
	}
	return out
}
