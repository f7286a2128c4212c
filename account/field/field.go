// Package field names what an account's profile holds: the fields a request
// sets and their JSON types, the fields the server keeps or the token
// reports, and the one spelling of a name in any case. The account rules read
// requests by it; flows check by it what their set steps may write into the
// same profile.
package field

import (
	"iter"
	"maps"
	"strings"

	"github.com/customerd/customerd/strictjson"
)

// Kind is the JSON type of a field a request sets.
type Kind int

const (
	Text Kind = iota // a string
	Flag             // true or false
)

// Holds reports whether v, a value as encoding/json or YAML decodes it, is
// of kind k.
func (k Kind) Holds(v any) bool {
	switch v.(type) {
	case string:
		return k == Text
	case bool:
		return k == Flag
	}
	return false
}

// String is what a value of kind k is, as an error message says it.
func (k Kind) String() string {
	if k == Flag {
		return "true or false"
	}
	return "a string"
}

// fields are the account fields a request may set, by kind; the JSON names
// follow the platform's. Their lengths are the contract's (maxLength).
var fields = map[string]Kind{
	"email": Text, "phoneNumber": Text, "firstName": Text, "lastName": Text, "title": Text, "sex": Text,
	"birthDate": Text, "nationality": Text, "address": Text, "streetNumber": Text, "postcode": Text, "city": Text,
	"region": Text, "country": Text, "language": Text, "storeId": Text, "advisor": Text,
	"isProspect": Flag, "consents_email": Flag, "consents_sms": Flag, "consents_post": Flag, "consents_emailReceipt": Flag,
}

// readOnly fields are set by the server, reported from the token (provider,
// authenticatedAt, expiresAt) or written by activation (activatedAt); a
// request that sends them changes nothing.
var readOnly = map[string]bool{
	"id": true, "createdAt": true, "updatedAt": true, "emailVerified": true, "phoneNumberVerified": true,
	"provider": true, "authenticatedAt": true, "expiresAt": true, "activatedAt": true,
}

// canonical are the account fields, read-only fields and alias by their
// folded names (strictjson.FoldName).
var canonical = func() map[string]string {
	m := map[string]string{strictjson.FoldName("zipCode"): "zipCode"} // FoldName keeps capitals: "ZIPCODE"
	for _, names := range []iter.Seq[string]{maps.Keys(fields), maps.Keys(readOnly)} {
		for n := range names {
			m[strictjson.FoldName(n)] = n
		}
	}
	return m
}()

// Of is the kind of name when a request may set it.
func Of(name string) (Kind, bool) {
	k, ok := fields[name]
	return k, ok
}

// ReadOnly reports whether name is a field no request writes.
func ReadOnly(name string) bool { return readOnly[name] }

// Exact is the field, read-only field or alias that name is in any case.
func Exact(name string) (string, bool) {
	exact, ok := canonical[strictjson.FoldName(name)]
	return exact, ok
}

// Spellings are the names of profile p by their folded names: p holds one
// spelling of a name only, since a receiver that matches names without case
// (encoding/json does) reads any of two as the other, and a body holding both
// is refused (its members repeat). A profile stored before may hold several:
// Spellings has one of them, enough to tell whether p holds the name.
func Spellings(p map[string]any) map[string]string {
	m := make(map[string]string, len(p))
	for name := range p {
		m[strictjson.FoldName(name)] = name
	}
	return m
}

// DropOtherSpellings deletes from profile p every spelling of name but name
// itself: all of them, since a profile stored before one spelling was kept
// may hold several (Foo beside foo).
// strings.EqualFold is FoldName's equality (one simple case-folding orbit
// per rune), without folding every stored name anew for each name sent.
func DropOtherSpellings(p map[string]any, name string) {
	for other := range p {
		if other != name && strings.EqualFold(other, name) {
			delete(p, other)
		}
	}
}
