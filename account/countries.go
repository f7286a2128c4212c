package account

import "golang.org/x/text/language"

// IsCountry reports whether code (upper case) is an ISO 3166-1 alpha-2
// country code as CLDR knows it (golang.org/x/text): not a deprecated alias
// (UK, FX, BU), not user-assigned (XK, XX, QQ), and with a UN M49 number,
// which the exceptional reservations (AC, EU, UN, EZ…) lack. Codes ISO
// withdrew but CLDR still lists with their number (AN, CS, NT, SU, YU) pass.
func IsCountry(code string) bool {
	r, err := language.ParseRegion(code)
	return err == nil && r.String() == code && r.IsCountry() && !r.IsPrivateUse() &&
		r.Canonicalize() == r && r.M49() != 0
}

// MaxLanguage is the most characters a stored language has: the contract's
// maxLength of Customer.language (openapi.yaml), which an answer must keep.
const MaxLanguage = 35

// LanguageTag is s as the account stores a language: its canonical BCP 47
// tag, when s names a known language ("und", a private-use tag (x-…) or a
// well-formed but unknown subtag does not) and that tag is at most
// MaxLanguage long. Canonical forms can be longer than what was sent (sh is
// sr-Latn, mo ro-MD), so the length is the stored form's: one sent within
// the contract could otherwise be answered past it, and not be taken back.
func LanguageTag(s string) (string, bool) {
	tag, err := language.Parse(s)
	if err != nil {
		return "", false
	}
	if _, conf := tag.Base(); conf != language.Exact {
		return "", false
	}
	if out := tag.String(); len(out) <= MaxLanguage {
		return out, true
	}
	return "", false
}
