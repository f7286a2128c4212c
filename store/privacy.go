package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CustomerQuery selects a tenant's live customers, by update time then id.
type CustomerQuery struct {
	TenantID string
	// Email and Phone, when set, keep the customer with this normalised identifier.
	Email, Phone string
	// UpdatedSince keeps customers updated at or after it (zero: all).
	UpdatedSince time.Time
	// AfterUpdated and AfterID are the position of the last customer already
	// read (AfterID "" from the first).
	AfterUpdated time.Time
	AfterID      string
	Limit        int
}

// Customers lists customers.
func (s *db) Customers(ctx context.Context, q CustomerQuery) ([]Customer, error) {
	g := s.r.WithContext(ctx).Where("tenant_id = ? AND deleted_at IS NULL", q.TenantID)
	if q.Email != "" {
		g = g.Where("email = ?", q.Email)
	}
	if q.Phone != "" {
		g = g.Where("phone = ?", q.Phone)
	}
	if !q.UpdatedSince.IsZero() {
		since, _ := ceilPrecision(q.UpdatedSince)
		g = g.Where("updated_at >= ?", since)
	}
	if q.AfterID != "" {
		// No stored time lies strictly between a finer one and the next
		// microsecond: after it is at or after that microsecond.
		if at, exact := ceilPrecision(q.AfterUpdated); exact {
			g = g.Where("updated_at > ? OR (updated_at = ? AND id > ?)", at, at, q.AfterID)
		} else {
			g = g.Where("updated_at >= ?", at)
		}
	}
	var out []Customer
	err := g.Order("updated_at, id").Limit(q.Limit).Find(&out).Error
	return out, classify(err)
}

// ceilPrecision is t in UTC rounded up to Precision, and whether it was on
// it already. A finer time reached the databases apart: pgx cuts it to the
// microsecond below (T+1ns is T on PostgreSQL), SQLite compares it as
// written (T+1ns is after T), so "at or after T+1ns" kept an account
// updated at T on one and not the other.
func ceilPrecision(t time.Time) (time.Time, bool) {
	t = t.UTC()
	down := t.Truncate(Precision)
	if down.Equal(t) {
		return t, true
	}
	return down.Add(Precision), false
}

// RevokeSessions makes every token of a live customer issued before at
// refused: ErrNotFound when there is no such customer. A revocation only
// moves forward: one at an earlier time than the stored one changes
// nothing. A claim revokes its account's tokens of the second before it,
// and written over an operator's revocation made in that same second it
// let the tokens of that second in again.
func (s *db) RevokeSessions(ctx context.Context, tenant, id string, at time.Time) error {
	at = at.UTC()
	res := s.w.WithContext(ctx).Model(&Customer{}).Where("tenant_id = ? AND id = ? AND deleted_at IS NULL", tenant, id).
		Update("sessions_revoked_at", gorm.Expr("CASE WHEN sessions_revoked_at IS NULL OR sessions_revoked_at < ? THEN ? ELSE sessions_revoked_at END", at, at))
	if err := classify(res.Error); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// Record is everything stored about one customer.
type Record struct {
	Customer   *Customer
	Identities []Identity
	// Events are the customer's events, oldest first.
	Events []Event
	// Challenges were sent to the customer or to one of the contacts it proved.
	Challenges []Challenge
}

// CustomerRecord reads everything stored about a live customer, in one
// transaction (the writer's: SQLite's readers cannot begin one, and an
// export is rare): ErrNotFound when there is none.
func (s *db) CustomerRecord(ctx context.Context, tenant, id string) (*Record, error) {
	r := &Record{}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var c Customer
		if err := tx.Where("tenant_id = ? AND id = ? AND deleted_at IS NULL", tenant, id).Take(&c).Error; err != nil {
			return err
		}
		r.Customer = &c
		if err := tx.Where("tenant_id = ? AND customer_id = ?", tenant, id).Order("created_at, provider").Find(&r.Identities).Error; err != nil {
			return err
		}
		if err := tx.Where("tenant_id = ? AND customer_id = ?", tenant, id).Order("seq").Find(&r.Events).Error; err != nil {
			return err
		}
		// Codes sent to an address merely typed on the account are its
		// owner's, not the customer's: only the contacts it proved, as
		// erasure forgets.
		return tx.Where("tenant_id = ? AND (customer_id = ? OR destination IN ?)", tenant, id, verifiedContacts(&c)).
			Order("created_at, id").Find(&r.Challenges).Error
	})
	if err != nil {
		return nil, classify(err)
	}
	return r, nil
}

// verifiedContacts are those of a customer's contacts it proved.
func verifiedContacts(c *Customer) []string {
	out := []string{}
	for _, k := range provenOn(c) {
		out = append(out, k.Value)
	}
	return out
}

// provenOn are c's verified contacts, each by the field that holds it in
// an event.
func provenOn(c *Customer) []Contact {
	var out []Contact
	if c.Email != nil && c.EmailVerified {
		out = append(out, Contact{"email", *c.Email})
	}
	if c.Phone != nil && c.PhoneVerified {
		out = append(out, Contact{"phoneNumber", *c.Phone})
	}
	return out
}

// Erasure is what erasing one customer needs besides its id.
type Erasure struct {
	TenantID, CustomerID string
	At                   time.Time
	// Scrub rewrites the payload of one of the customer's stored events
	// without its personal data.
	Scrub func(payload string) (string, error)
	// Unname rewrites the payload of another account's stored event without
	// contacts, the customer's verified ones, which sat on that account
	// before the customer proved them (unchanged when it names none).
	Unname func(payload string, contacts []string) (string, error)
	// Event is written to the outbox with the erasure (Customer:Deleted).
	Event *Event
	// Keys are the counter and throttle keys that name a destination.
	Keys func(destination string) []string
	// KeptUnder are the destinations challenges to a destination are kept
	// under (a withheld one's too); the destination alone when nil.
	KeptUnder func(destination string) []string
	// Proved are the contacts one of the customer's stored events shows
	// verified on it (nil: none), so that those it changed since are
	// unnamed elsewhere as its present ones are.
	Proved func(payload string) []Contact
}

// Contact is an email or a phone number, by the field that holds it in an
// event ("email" or "phoneNumber").
type Contact struct{ Field, Value string }

// EraseCustomer removes a live customer's personal data in one transaction:
// the account becomes a tombstone (its id, tenant and creation time; deleted
// and every session revoked at e.At), its identities are unlinked, the
// challenges bound to it or to its verified contacts and the counters and
// throttles of its verified contacts are deleted, the idempotent answers that show it or its
// verified contacts are forgotten,
// its events are scrubbed, its verified contacts are taken out of the events
// of the accounts they left, and e.Event is added. Contacts its events show
// it proved and changed since, which no other live account holds now, go
// from the other accounts' events and idempotent answers too. ErrNotFound
// when there is no such live customer.
func (s *db) EraseCustomer(ctx context.Context, e Erasure) error {
	at := e.At.UTC()
	err := s.transaction(ctx, func(tx *gorm.DB) (err error) {
		if !s.postgres() {
			// A row larger than a page (a profile of some KiB, an event or
			// a stored answer showing it) sits partly in overflow pages,
			// which deleting or rewriting it frees whole: FAST zeroes free
			// space inside a page only, and a freed page kept the erased
			// data on the freelist. ON zeroes freed pages too, for this
			// erasure only (the writer has one connection; a pragma is not
			// undone by a rollback, hence the deferred reset, which a
			// caller hanging up meanwhile does not stop).
			if err := tx.Exec("PRAGMA secure_delete = ON").Error; err != nil {
				return err
			}
			reset := tx.WithContext(context.WithoutCancel(ctx))
			defer func() { err = errors.Join(err, reset.Exec("PRAGMA secure_delete = "+secureDeleteFast).Error) }()
		}
		var c Customer
		q := s.locked(tx.Where("tenant_id = ? AND id = ? AND deleted_at IS NULL", e.TenantID, e.CustomerID), clause.LockingStrengthUpdate)
		if err := q.Take(&c).Error; err != nil {
			return err
		}
		err = tx.Model(&Customer{}).Where("tenant_id = ? AND id = ?", e.TenantID, e.CustomerID).Updates(map[string]any{
			"email": nil, "phone": nil, "email_verified": false, "phone_verified": false, "profile": Profile{},
			"deleted_at": at, "sessions_revoked_at": at, "updated_at": at, "version": gorm.Expr("version + 1")}).Error
		if err != nil {
			return err
		}
		if err := tx.Where("tenant_id = ? AND customer_id = ?", e.TenantID, e.CustomerID).Delete(&Identity{}).Error; err != nil {
			return err
		}
		var evs []Event
		if err := tx.Select("seq, payload").Where("tenant_id = ? AND customer_id = ?", e.TenantID, e.CustomerID).
			Find(&evs).Error; err != nil {
			return err
		}
		proved, err := s.provedContacts(tx, e, &c, evs)
		if err != nil {
			return err
		}
		// Only the contacts the account proved: the codes, failures and
		// resend waits of an address merely typed on it are that address's
		// (an attacker who put a victim's number on an account of their own,
		// spent its day of wrong codes and erased the account started a new
		// day at once; and the victim's own codes to it went too).
		dests := verifiedContacts(&c)
		kept := dests
		if e.KeptUnder != nil {
			kept = nil
			for _, d := range dests {
				kept = append(kept, e.KeptUnder(d)...)
			}
		}
		if err := tx.Where("tenant_id = ? AND (customer_id = ? OR destination IN ?)", e.TenantID, e.CustomerID, kept).
			Delete(&Challenge{}).Error; err != nil {
			return err
		}
		var keys []string
		for _, d := range dests {
			keys = append(keys, e.Keys(d)...)
		}
		if len(keys) > 0 {
			for _, table := range []string{"counters", "throttles"} {
				if err := tx.Exec("DELETE FROM "+table+` WHERE tenant_id = ? AND key IN ?`, e.TenantID, keys).Error; err != nil {
					return err
				}
			}
		}
		// A stored answer that shows the account holds its id; one that
		// shows another account holds the account's verified contacts where
		// they sat unverified on it before (an anonymous create of that
		// account), as a JSON string of its own, as written or as JSON
		// escapes it: quoted, so that an address that only contains one
		// (mary.jane@ holds jane@) keeps its answers.
		holds := "instr(body, CAST(? AS blob)) > 0"
		if s.postgres() {
			holds = "position(convert_to(?, 'UTF8') in body) > 0"
		}
		shown := []any{e.CustomerID}
		for _, k := range proved {
			d := k.Value
			shown = append(shown, `"`+d+`"`)
			if j, err := json.Marshal(d); err == nil && string(j) != `"`+d+`"` {
				shown = append(shown, string(j))
			}
		}
		either := strings.TrimSuffix(strings.Repeat(holds+" OR ", len(shown)), " OR ")
		if err := tx.Exec("DELETE FROM idempotency_keys WHERE tenant_id = ? AND ("+either+")", append([]any{e.TenantID}, shown...)...).Error; err != nil {
			return err
		}
		for _, ev := range evs {
			clean, err := e.Scrub(ev.Payload)
			if err != nil {
				return err
			}
			if err := tx.Model(&Event{}).Where("seq = ?", ev.Seq).Update("payload", clean).Error; err != nil {
				return err
			}
		}
		if e.Unname != nil {
			if err := s.unnameElsewhere(tx, e, proved); err != nil {
				return err
			}
		}
		if e.Event == nil {
			return nil
		}
		return tx.Exec("INSERT INTO events ("+eventColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			eventValues(e.Event)...).Error
	})
	return classify(err)
}

// provedContacts are c's verified contacts, and those its events evs show
// verified on it that it changed since, which no other live account of
// its tenant holds now (a number given up may be someone else's today:
// their events and answers stay theirs).
func (s *db) provedContacts(tx *gorm.DB, e Erasure, c *Customer, evs []Event) ([]Contact, error) {
	out := provenOn(c)
	if e.Proved == nil {
		return out, nil
	}
	// Each former contact once, however many events show it.
	var former []Contact
	for _, ev := range evs {
		for _, k := range e.Proved(ev.Payload) {
			if k.Value != "" && !slices.Contains(out, k) && !slices.Contains(former, k) {
				former = append(former, k)
			}
		}
	}
	for _, k := range former {
		column := "email"
		if k.Field == "phoneNumber" {
			column = "phone"
		}
		var held int64
		err := tx.Model(&Customer{}).Where("tenant_id = ? AND "+column+" = ? AND deleted_at IS NULL AND id <> ?",
			e.TenantID, k.Value, e.CustomerID).Count(&held).Error
		if err != nil {
			return nil, err
		}
		if held == 0 {
			out = append(out, k)
		}
	}
	return out, nil
}

// unnameElsewhere takes the erased customer's proved contacts out of the
// events of the other accounts of its tenant that held them before it
// proved them (the ownership rule took them off there), through tx: those
// accounts' events named them, and their Customer:ContactChanged names them
// as "previous", which events_previous_email and events_previous_phone find
// by index (the janitor keeps a contact change while an earlier event of
// its account stays: purgeDeliveredRange).
func (s *db) unnameElsewhere(tx *gorm.DB, e Erasure, proved []Contact) error {
	var contacts, holders []string
	for _, k := range proved {
		contacts = append(contacts, k.Value)
		var ids []string
		err := tx.Raw(leftBy(s.postgres(), k.Field), e.TenantID, k.Value, e.CustomerID).Scan(&ids).Error
		if err != nil {
			return err
		}
		holders = append(holders, ids...)
	}
	if len(holders) == 0 {
		return nil
	}
	var evs []Event
	if err := tx.Select("seq, payload").Where("tenant_id = ? AND customer_id IN ?", e.TenantID, holders).Find(&evs).Error; err != nil {
		return err
	}
	for _, ev := range evs {
		clean, err := e.Unname(ev.Payload, contacts)
		if err != nil {
			return err
		}
		if clean == ev.Payload {
			continue
		}
		if err := tx.Model(&Event{}).Where("seq = ?", ev.Seq).Update("payload", clean).Error; err != nil {
			return err
		}
	}
	return nil
}

// leftBy is the query of the accounts of a tenant (the first argument),
// but one (the third), whose Customer:ContactChanged names a contact (the
// second) as its previous field ("email" or "phoneNumber"): the expression
// of events_previous_email or events_previous_phone, and the condition of
// the index, so that it reads that index and no other event.
func leftBy(postgres bool, field string) string {
	previous := "json_extract(payload, '$.previous." + field + "')"
	if postgres {
		previous = "((payload::jsonb) -> 'previous' ->> '" + field + "')"
	}
	return "SELECT DISTINCT customer_id FROM events WHERE tenant_id = ? AND type = 'Customer:ContactChanged' AND " +
		previous + " = ? AND customer_id <> ?"
}
