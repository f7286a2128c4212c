package signature_test

import (
	"errors"
	"testing"
	"time"

	"github.com/customerd/customerd/signature"
)

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"login":"ada"}`)
	now := time.Unix(1_800_000_000, 0)
	good := signature.Sign(secret, now, body)
	for _, c := range []struct {
		name, header string
		body         []byte
		at           time.Time
		ok           bool
	}{
		{"a fresh signature of the body is valid", good, body, now, true},
		{"4 minutes later it is still valid", good, body, now.Add(4 * time.Minute), true},
		{"6 minutes later it is a replay", good, body, now.Add(6 * time.Minute), false},
		{"another body does not match", good, []byte(`{"login":"eve"}`), now, false},
		{"another secret does not match", signature.Sign([]byte("another secret, just as long....."), now, body), body, now, false},
		{"a missing header is invalid", "", body, now, false},
		{"a header without v1 is invalid", "t=1800000000", body, now, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := signature.Verify(secret, c.header, c.body, c.at)
			if c.ok != (err == nil) || (err != nil && !errors.Is(err, signature.ErrInvalid)) {
				t.Fatalf("Verify: %v, want ok=%v", err, c.ok)
			}
		})
	}
}
