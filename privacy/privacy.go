// Package privacy is what customerd does with everything it holds about one
// customer: export it as one document (the right of access) and erase it (the
// right to erasure, asked by the shopper or an administrator).
package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

// Store is the persistence privacy needs.
type Store interface {
	CustomerRecord(ctx context.Context, tenant, id string) (*store.Record, error)
	EraseCustomer(ctx context.Context, e store.Erasure) error
}

// Service exports and erases customers.
type Service struct {
	store Store
	now   func() time.Time
}

// New returns a Service; now nil is the wall clock.
func New(s Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, now: now}
}

// Export reads everything stored about a live customer of tenant:
// store.ErrNotFound when there is none.
func (s *Service) Export(ctx context.Context, tenant, id string) (*store.Record, error) {
	return s.store.CustomerRecord(ctx, tenant, id)
}

// Erase removes a live customer's personal data (see store.EraseCustomer)
// and writes a Customer:Deleted event for the tenant's webhooks in the same
// transaction: store.ErrNotFound when there is no such customer.
func (s *Service) Erase(ctx context.Context, t *tenant.Tenant, id string) error {
	now := s.now().UTC()
	ev, err := deleted(t, id, now)
	if err != nil {
		return err
	}
	return s.store.EraseCustomer(ctx, store.Erasure{TenantID: t.ID, CustomerID: id, At: now, Scrub: scrub, Unname: unname, Event: ev, Keys: challenge.Keys, KeptUnder: challenge.KeptUnder, Proved: proved})
}

// deleted is the Customer:Deleted event of customer id: its id and the time,
// nothing else.
func deleted(t *tenant.Tenant, id string, now time.Time) (*store.Event, error) {
	body := account.Event{ID: uuid.NewString(), Type: flows.Deleted, TenantID: t.ID, CustomerID: id,
		OccurredAt: now.Format(time.RFC3339Nano), Data: map[string]any{"id": id, "deletedAt": now.Format(time.RFC3339Nano)}}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	e := &store.Event{ID: body.ID, TenantID: t.ID, CustomerID: id, Type: flows.Deleted, Payload: string(b), CreatedAt: now}
	if t.Subscribed != nil && !t.Subscribed(flows.Deleted) {
		e.DeliveredAt = &now // kept in the log, with nothing to deliver
	}
	return e, nil
}

// scrub is a stored event's payload without the account it carried: the
// event keeps its id, type, time and customer id (so that deliveries stay in
// order and receivers can de-duplicate), its data only the customer id.
func scrub(payload string) (string, error) {
	var e account.Event
	if err := json.Unmarshal([]byte(payload), &e); err != nil {
		return "", fmt.Errorf("scrub event: %w", err)
	}
	e.Data, e.Previous = map[string]any{"id": e.CustomerID}, nil
	b, err := json.Marshal(e)
	return string(b), err
}

// proved are the contacts one of the customer's stored events shows
// verified on the account: an email with emailVerified, a phone number
// with phoneNumberVerified (an event that cannot be read shows none; scrub
// refuses it).
func proved(payload string) []store.Contact {
	var e account.Event
	if json.Unmarshal([]byte(payload), &e) != nil {
		return nil
	}
	var out []store.Contact
	for _, k := range []struct{ field, flag string }{{"email", "emailVerified"}, {"phoneNumber", "phoneNumberVerified"}} {
		if v, ok := e.Data[k.field].(string); ok && e.Data[k.flag] == true {
			out = append(out, store.Contact{Field: k.field, Value: v})
		}
	}
	return out
}

// unname is another account's stored event without contacts (the erased
// customer's, which sat on that account before the customer proved them):
// every value in its data and previous contact that is one of them goes,
// the rest stays as it was (numbers as written).
func unname(payload string, contacts []string) (string, error) {
	d := json.NewDecoder(strings.NewReader(payload))
	d.UseNumber()
	var e account.Event
	if err := d.Decode(&e); err != nil {
		return "", fmt.Errorf("scrub event: %w", err)
	}
	_, data := without(e.Data, contacts)
	_, previous := without(e.Previous, contacts)
	if !data && !previous {
		return payload, nil
	}
	b, err := json.Marshal(e)
	return string(b), err
}

// without is v, a decoded JSON value, with every string that is one of
// contacts deleted, at any depth (in place for an object), and whether
// one was.
func without(v any, contacts []string) (any, bool) {
	gone := false
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && slices.Contains(contacts, s) {
				delete(v, k)
				gone = true
			} else if y, ok := without(x, contacts); ok {
				v[k], gone = y, true
			}
		}
	case []any:
		kept := v[:0:0]
		for _, x := range v {
			if s, ok := x.(string); ok && slices.Contains(contacts, s) {
				gone = true
			} else {
				y, ok := without(x, contacts)
				kept, gone = append(kept, y), gone || ok
			}
		}
		if gone {
			return kept, true
		}
	}
	return v, gone
}
