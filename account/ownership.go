package account

import (
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

// The ownership rule, in one place (README, "Security model").
//
// A contact (an email or a phone number) proves an account only where it is
// verified on that account. The one exception: an account nobody has ever
// proven (created anonymously, no verified contact, no linked identity) is
// claimed by the first person who proves its identifier. A contact that
// sits unverified on an account is nobody's proof: whoever proves it gets
// an account of their own, and the contact leaves the other account, so an
// unverified contact can neither capture nor block anyone's sign-in.
// Identities link to an existing account only through a verified email,
// under the same rule; a token holder adds or changes a contact only by
// proving the new one first, once anybody ever proved the account.

// Contact is an email or a phone number, normalised.
type Contact struct {
	Channel sender.Channel
	Value   string
}

// EmailContact and PhoneContact build contacts.
func EmailContact(email string) Contact { return Contact{sender.Email, email} }

// PhoneContact is an E.164 phone number as a contact.
func PhoneContact(phone string) Contact { return Contact{sender.SMS, phone} }

// Proven reports whether anybody ever proved c: a verified contact, or an
// identity linked to it (linked).
func Proven(c *store.Customer, linked bool) bool {
	return c.EmailVerified || c.PhoneVerified || linked
}

// Holds reports whether k is c's email or phone number, verified or not.
func Holds(c *store.Customer, k Contact) bool {
	switch k.Channel {
	case sender.Email:
		return c.Email != nil && *c.Email == k.Value
	case sender.SMS:
		return c.Phone != nil && *c.Phone == k.Value
	}
	return false
}

// VerifiedOn reports whether k is verified on c.
func VerifiedOn(c *store.Customer, k Contact) bool {
	if !Holds(c, k) {
		return false
	}
	if k.Channel == sender.Email {
		return c.EmailVerified
	}
	return c.PhoneVerified
}

// IsIdentifier reports whether k is of the kind that identifies t's accounts.
func IsIdentifier(t *tenant.Tenant, k Contact) bool {
	return (t.Identifier == "email") == (k.Channel == sender.Email)
}

// Decision is what proving a contact does to the account that holds it.
type Decision int

const (
	// SignsIn: the contact is verified on the holder, which it proves.
	SignsIn Decision = iota
	// Claims: nobody ever proved the holder and the contact is its
	// identifier: the prover claims it.
	Claims
	// Detaches: the contact is nobody's proof there: it leaves the holder,
	// and the prover gets an account of their own.
	Detaches
)

// Decide applies the rule to holder, the account that has k; linked says
// whether an identity is linked to it.
func Decide(t *tenant.Tenant, holder *store.Customer, k Contact, linked bool) Decision {
	switch {
	case VerifiedOn(holder, k):
		return SignsIn
	case !Proven(holder, linked) && IsIdentifier(t, k):
		return Claims
	}
	return Detaches
}

// ProvingContact is the contact a code must go to for the person who
// completes it to prove c: a verified one, or the identifier of an account
// nobody ever proved. ok is false when c has none.
func ProvingContact(t *tenant.Tenant, c *store.Customer, linked bool) (k Contact, ok bool) {
	switch {
	case c.Email != nil && c.EmailVerified && t.Senders[sender.Email] != nil:
		return EmailContact(*c.Email), true
	case c.Phone != nil && c.PhoneVerified && t.Senders[sender.SMS] != nil:
		return PhoneContact(*c.Phone), true
	case Proven(c, linked):
		return Contact{}, false
	case t.Identifier == "email" && c.Email != nil && t.Senders[sender.Email] != nil:
		return EmailContact(*c.Email), true
	case t.Identifier == "phoneNumber" && c.Phone != nil && t.Senders[sender.SMS] != nil:
		return PhoneContact(*c.Phone), true
	}
	return Contact{}, false
}

// OtherContactField is the account field of the other kind of contact
// than k: "phoneNumber" for an email, "email" for a phone number.
func OtherContactField(k Contact) string {
	if k.Channel == sender.SMS {
		return "email"
	}
	return "phoneNumber"
}

// Detach removes k, unverified, from c (the holder a Detaches decision
// named): the change to write.
func Detach(c *store.Customer, k Contact) *store.Customer {
	next := *c
	switch k.Channel {
	case sender.Email:
		next.Email, next.EmailVerified = nil, false
	case sender.SMS:
		next.Phone, next.PhoneVerified = nil, false
	}
	return &next
}

// MarkVerified records on c that k was proven, setting it when c has no
// contact of that kind.
func MarkVerified(c *store.Customer, k Contact) {
	v := k.Value
	switch k.Channel {
	case sender.Email:
		if c.Email == nil {
			c.Email = &v
		}
		if *c.Email == v {
			c.EmailVerified = true
		}
	case sender.SMS:
		if c.Phone == nil {
			c.Phone = &v
		}
		if *c.Phone == v {
			c.PhoneVerified = true
		}
	}
}
