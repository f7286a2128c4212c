// Package signature signs the HTTP calls customerd makes to a brand's own
// systems (custom providers, SMS gateways, customer-event webhooks):
// X-Customerd-Signature carries t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "t.body">, so that a receiver can check both who sent the body and when (a
// replay window of Window).
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header is the name of the signature header.
const Header = "X-Customerd-Signature"

// Window is how old a signature a receiver should accept.
const Window = 5 * time.Minute

// Sign returns the header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrInvalid: the header is missing, malformed, too old or does not match.
var ErrInvalid = errors.New("invalid signature")

// Verify checks a header value as a receiver would, at now. An empty secret
// (a receiver whose configuration lacks it) refuses every header: anyone can
// sign with an empty key.
func Verify(secret []byte, header string, body []byte, now time.Time) error {
	if len(secret) == 0 {
		return ErrInvalid
	}
	var ts, v1 string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || v1 == "" {
		return ErrInvalid
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Window || d < -Window {
		return ErrInvalid
	}
	if !hmac.Equal([]byte(mac(secret, ts, body)), []byte(v1)) {
		return ErrInvalid
	}
	return nil
}
