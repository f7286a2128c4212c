package signature_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/signature"
)

// Headers a receiver must refuse, beyond TestVerify's.
func TestVerifyRefuses(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"login":"ada"}`)
	now := time.Unix(1_800_000_000, 0)
	good := signature.Sign(secret, now, body)
	ts, v1, _ := strings.Cut(good, ",")
	for _, c := range []struct{ name, header string }{
		{"t missing", v1},
		{"t empty", "t=," + v1},
		{"t not a number", "t=abc," + v1},
		{"t far in the future", signature.Sign(secret, now.Add(time.Hour), body)},
		{"t at the largest int64", signature.Sign(secret, time.Unix(1<<63-1, 0), body)},
		{"v1 empty", ts + ",v1="},
		{"v1 of another length", good[:len(good)-2]},
		{"v1 longer", good + "00"},
		{"v1 repeated, the last one wrong", good + ",v1=" + strings.Repeat("0", 64)},
		{"v1 in uppercase hex", ts + "," + strings.ToUpper(v1)},
		{"garbage", "garbage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := signature.Verify(secret, c.header, body, now); !errors.Is(err, signature.ErrInvalid) {
				t.Fatalf("Verify(%q) = %v, want ErrInvalid", c.header, err)
			}
		})
	}
}

// A receiver whose secret is missing (os.Getenv of an unset variable) must
// refuse every delivery: with an empty key anyone computes a valid v1.
func TestVerifyRefusesAnEmptySecret(t *testing.T) {
	body := []byte(`{"id":"forged","type":"Customer:Activated"}`)
	now := time.Unix(1_800_000_000, 0)
	for _, secret := range [][]byte{nil, {}} {
		forged := signature.Sign(secret, now, body)
		if err := signature.Verify(secret, forged, body, now); !errors.Is(err, signature.ErrInvalid) {
			t.Fatalf("Verify with an empty secret accepted a delivery anyone can sign: %v", err)
		}
	}
}
