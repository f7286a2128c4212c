package account

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"github.com/customerd/customerd/account/field"
	"github.com/customerd/customerd/account/postcode"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/strictjson"
	"github.com/customerd/customerd/tenant"
)

// NormaliseEmail trims an email, checks its syntax and returns the one
// spelling of its mailbox that is the account's key. Two addresses are one
// only where every mail system makes them one: a domain that is not ASCII
// is mapped as IDNA maps it to find where mail goes (victim@gmaİl.com is
// another domain's, not victim@gmail.com); the local part, which only the
// server holding the mailbox interprets, is composed (Unicode NFC: "é"
// written with "e" and a combining accent is "é") and its ASCII letters
// lower-cased, as every server does, and nothing else: Exim folds no other
// case, so Élodie@ and élodie@ may be two people's.
func NormaliseEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		local, localOK := mailLocal(s[:at])
		domain, ok := mailDomain(s[at+1:])
		if !localOK || !ok {
			return "", errors.New("must be a valid email address")
		}
		s = local + "@" + domain
	}
	if len(s) > 254 {
		return "", errors.New("must be at most 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", errors.New("must be a valid email address")
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.ContainsAny(s, " \t\"()<>[]\\,;:") || strings.IndexFunc(s, invisible) >= 0 {
		return "", errors.New("must be a valid email address")
	}
	return s, nil
}

// mailDomain is domain as mail finds it: lower-cased, or, when it is not
// ASCII, mapped as IDNA maps it. An invisible character is refused before
// the mapping, which drops some.
func mailDomain(domain string) (string, bool) {
	if isASCII(domain) {
		return strings.ToLower(domain), true
	}
	if strings.IndexFunc(domain, invisible) >= 0 {
		return "", false
	}
	mapped, err := mailDomains.ToUnicode(domain)
	return mapped, err == nil
}

// mailDomains maps a domain as mail's resolvers do (UTS 46, non-transitional:
// "ß" stays), without refusing what a host name may not hold but a domain
// may ("_").
var mailDomains = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// mailLocal is local as every mail system finds it: composed, its ASCII
// letters lower-cased. A character that composing replaces by another
// (the Kelvin sign by "K", the Angstrom sign by "Å", the Greek varia by
// "`") is refused: a server that composes nothing holds Kevin@ with the
// Kelvin sign apart from kevin@.
func mailLocal(local string) (string, bool) {
	if isASCII(local) {
		return strings.ToLower(local), true
	}
	for _, r := range local {
		if r >= utf8.RuneSelf && !norm.NFC.IsNormalString(string(r)) {
			return "", false
		}
	}
	b := []byte(norm.NFC.String(local))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b), true
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// invisible is a format, separator or control character (a zero-width
// space, a soft hyphen, a bidirectional override): none is part of a
// mailbox, and each would make one address look like another, or two
// accounts of one.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Z, unicode.Cc)
}

// NormalisePhone parses a phone number with the tenant's default region and
// returns it in E.164.
func NormalisePhone(s, region string) (string, error) {
	n, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", errors.New("must be a valid phone number")
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// Apply checks in and applies it to c (nil creates a new account), normalising
// and enriching as it goes. It returns the account to store, or a
// *ValidationError and no change at all.
func Apply(t *tenant.Tenant, c *store.Customer, in Input, now time.Time) (*store.Customer, error) {
	creating := c == nil
	next := &store.Customer{}
	if creating {
		next = &store.Customer{ID: newID(), TenantID: t.ID, CreatedAt: now, Profile: store.Profile{}}
	} else {
		*next = *c
		next.Profile = make(store.Profile, len(c.Profile))
		for k, v := range c.Profile {
			next.Profile[k] = v
		}
	}
	next.UpdatedAt = now
	verr := &ValidationError{}

	for name, v := range in.Set {
		s, isText := v.(string)
		switch {
		case v == nil:
			delete(next.Profile, name)
		case name == "email":
			email, err := NormaliseEmail(s)
			if err != nil {
				verr.add(name, err.Error())
				continue
			}
			if next.Email == nil || *next.Email != email {
				next.Email, next.EmailVerified = &email, false
			}
		case name == "phoneNumber":
			phone, err := NormalisePhone(s, t.PhoneRegion)
			if err != nil {
				verr.add(name, err.Error())
				continue
			}
			if next.Phone == nil || *next.Phone != phone {
				next.Phone, next.PhoneVerified = &phone, false
			}
		case name == "birthDate":
			if msg := checkBirthDate(s, now); msg != "" {
				verr.add(name, msg)
				continue
			}
			next.Profile[name] = s
		case name == "country" || name == "nationality":
			code := strings.ToUpper(s)
			if !IsCountry(code) {
				verr.add(name, "must be an ISO 3166-1 alpha-2 country code")
				continue
			}
			next.Profile[name] = code
		case name == "language":
			tag, ok := LanguageTag(s)
			if !ok {
				verr.add(name, "must be a language tag such as fr or en-GB")
				continue
			}
			next.Profile[name] = tag
		case isText:
			next.Profile[name] = s
		default:
			next.Profile[name] = v
		}
	}
	if v, ok := in.Set["email"]; ok && v == nil {
		next.Email, next.EmailVerified = nil, false
	}
	if v, ok := in.Set["phoneNumber"]; ok && v == nil {
		next.Phone, next.PhoneVerified = nil, false
	}
	for name, raw := range in.Extras {
		// A name no request writes: what a flow sets, in any case (a caller
		// who wrote it first would keep it from ever being written), or an
		// account field's in another case, which decodeExtra lets through
		// as null only. Its null removes what older versions stored in any
		// spelling but the flow's or the field's own.
		own, ok := t.Flows.Sets(name)
		if !ok {
			own, ok = field.Exact(name)
		}
		if ok {
			if string(raw) == "null" {
				field.DropOtherSpellings(next.Profile, own)
			}
			continue
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			verr.add(name, "must be JSON")
			continue
		}
		// The newest spelling of a property replaces every stored one: "Foo"
		// beside "foo" made an answer no request may send back.
		field.DropOtherSpellings(next.Profile, name)
		next.Profile[name] = v
	}

	fill(t, next, creating)
	enrich(next, in)
	bound(verr, c, next, in)
	if pc, ok := next.Profile["postcode"].(string); ok && verr.Fields["postcode"] == nil && verr.Fields["country"] == nil {
		if !postcode.Valid(countryOf(next), pc) {
			verr.add("postcode", fmt.Sprintf("is not a valid postcode for %s", countryOf(next)))
		}
	}
	// A new account needs the identifier and the tenant's required fields;
	// an update needs none of them, but may not clear one the account has.
	for _, name := range required(t) {
		if verr.Fields[name] == nil && !next.Has(name) && (creating || in.Has(name)) {
			verr.add(name, "is required")
		}
	}
	if err := verr.orNil(); err != nil {
		return nil, err
	}
	return next, nil
}

// bound refuses a change that takes the stored account past maxStoredExtras
// free-form properties or maxStoredJSON bytes of profile, checked on what would
// be stored so that it holds across updates. An account already past a limit
// (stored before it) may change but not grow.
func bound(verr *ValidationError, before, after *store.Customer, in Input) {
	var old store.Profile
	if before != nil {
		old = before.Profile
	}
	if n, had := extraCount(after.Profile), extraCount(old); n > max(maxStoredExtras, had) {
		added := make([]string, 0, len(in.Extras))
		stored := field.Spellings(old)
		for name := range in.Extras {
			_, kept := after.Profile[name] // not a name no request writes, which only removes
			if _, ok := stored[strictjson.FoldName(name)]; kept && !ok {
				added = append(added, name)
			}
		}
		slices.Sort(added)
		kept := n - len(added)
		verr.add(added[max(maxStoredExtras, had)-kept],
			fmt.Sprintf("is one property too many: an account keeps at most %d beyond the account fields", maxStoredExtras))
	}
	if size := profileSize(after.Profile); size > maxStoredJSON && (before == nil || size > profileSize(old)) {
		verr.add("additionalProperties", fmt.Sprintf("the account would keep %d bytes of JSON, at most %d", size, maxStoredJSON))
	}
}

// extraCount is how many free-form properties a profile holds.
func extraCount(p store.Profile) int {
	n := 0
	for name := range p {
		if _, known := field.Of(name); !known {
			n++
		}
	}
	return n
}

// profileSize is the length of the profile's JSON as stored.
func profileSize(p store.Profile) int {
	v, err := p.Value()
	s, _ := v.(string)
	if err != nil {
		return math.MaxInt
	}
	return len(s)
}

// fill sets the tenant's defaults where the account has no value.
func fill(t *tenant.Tenant, c *store.Customer, creating bool) {
	if _, ok := c.Profile["country"]; !ok {
		c.Profile["country"] = t.DefaultCountry
	}
	if _, ok := c.Profile["language"]; !ok {
		c.Profile["language"] = t.DefaultLanguage
	}
	for _, name := range consents {
		if _, ok := c.Profile[name]; !ok {
			c.Profile[name] = false
		}
	}
	if creating {
		if _, ok := c.Profile["isProspect"]; !ok {
			c.Profile["isProspect"] = true
		}
	}
}

// enrich derives city and region from the postcode where the dataset covers
// the country; a city the request sets itself is kept.
func enrich(c *store.Customer, in Input) {
	pc, ok := c.Profile["postcode"].(string)
	if !ok {
		return
	}
	place, found := postcode.Lookup(countryOf(c), pc)
	if !found {
		return
	}
	if _, cityGiven := in.Set["city"]; !cityGiven && (in.Has("postcode") || c.Profile["city"] == nil) {
		c.Profile["city"] = place.City
	}
	if _, regionGiven := in.Set["region"]; !regionGiven {
		c.Profile["region"] = place.Region
	}
}

func countryOf(c *store.Customer) string {
	s, _ := c.Profile["country"].(string)
	return s
}

func required(t *tenant.Tenant) []string {
	names := append([]string{t.Identifier}, t.RequiredFields...)
	return names
}

func checkBirthDate(s string, now time.Time) string {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "must be a date as YYYY-MM-DD"
	}
	switch {
	case d.After(now):
		return "must be in the past"
	case d.Before(now.Truncate(24*time.Hour).AddDate(-130, 0, 0)): // by date, not time of day
		return "must be at most 130 years ago"
	}
	return ""
}

// View is the account as the API shows it: the profile, the identifiers and
// the fields the server keeps.
func View(c *store.Customer) map[string]any {
	v := make(map[string]any, len(c.Profile)+7)
	for k, val := range c.Profile {
		v[k] = val
	}
	v["id"] = c.ID
	if c.Email != nil {
		v["email"] = *c.Email
	}
	v["emailVerified"] = c.EmailVerified
	if c.Phone != nil {
		v["phoneNumber"] = *c.Phone
	}
	v["phoneNumberVerified"] = c.PhoneVerified
	v["createdAt"] = c.CreatedAt.UTC().Format(time.RFC3339Nano)
	v["updatedAt"] = c.UpdatedAt.UTC().Format(time.RFC3339Nano)
	return v
}

// newID is a new account's id: time-ordered (UUIDv7), so that new accounts
// go to the end of the id index instead of a random page of it.
func newID() string { return uuid.Must(uuid.NewV7()).String() }
