package account_test

import (
	"testing"

	"github.com/customerd/customerd/account"
)

// Two spellings of a local part are one address only where every mail
// system makes them one: ASCII letters in either case (no server tells
// them apart), and one text composed or not (é or e with U+0301). Beyond
// ASCII, the server that holds the mailbox decides (RFC 5321, 2.4): Exim
// folds only ASCII, Postfix folds Unicode's case but composes nothing, so
// Élodie@ and élodie@ may be two people's mailboxes, and so may a local
// part written with the Kelvin sign (U+212A), which composing makes an
// ASCII K, and the one written with K. Found by the eleventh audit: they
// were one address here, the way into the other's account for an identity
// provider that verified the first.
func TestTwoMailboxesAreNeverOneAddress(t *testing.T) {
	for _, c := range []struct {
		name, a, b string
		one        bool
	}{
		{"a capital letter beyond ASCII", "\u00c9lodie@corp.example", "\u00e9lodie@corp.example", false},
		{"a whole name in capitals", "\u00c4NNA@corp.example", "\u00e4nna@corp.example", false},
		{"the Kelvin sign", "\u212aevin@corp.example", "kevin@corp.example", false},
		{"the Kelvin sign beside a letter beyond ASCII", "\u212a\u00e9vin@corp.example", "k\u00e9vin@corp.example", false},
		{"the Angstrom sign", "\u212bsa@corp.example", "\u00e5sa@corp.example", false},
		{"the Greek varia", "a\u1fefb@corp.example", "a`b@corp.example", false},
		{"a capital sharp s", "\u1e9e@corp.example", "\u00df@corp.example", false},
		{"ASCII capitals", "Jane.DOE@Example.COM", "jane.doe@example.com", true},
		{"a composed and a decomposed letter", "jos\u00e9@example.com", "jose\u0301@example.com", true},
		{"a capital beside one beyond ASCII", "JOS\u00e9@example.com", "jos\u00e9@example.com", true},
		{"a domain beyond ASCII in capitals", "a@M\u00dcNCHEN.example", "a@m\u00fcnchen.example", true},
	} {
		a, errA := account.NormaliseEmail(c.a)
		b, errB := account.NormaliseEmail(c.b)
		if one := errA == nil && errB == nil && a == b; one != c.one {
			t.Errorf("%s: %q is %q (%v), %q is %q (%v): want one address %v", c.name, c.a, a, errA, c.b, b, errB, c.one)
		}
	}
}
