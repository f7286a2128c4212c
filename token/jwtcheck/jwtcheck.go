// Package jwtcheck is how customerd reads a JWT, its own customer tokens and
// identity providers' ID tokens alike: a strict pre-check of the form and
// the header before any key is looked up, then jwx's signature check with
// the algorithm the key is for and jwx's validation with explicit validators. Each check has its own
// named error, so that every token kind refuses for the same reasons.
package jwtcheck

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/customerd/customerd/strictjson"
)

// Skew is the clock difference tolerated on exp, nbf and iat.
const Skew = 60 * time.Second

// The checks, one error each.
var (
	ErrTooLong   = errors.New("token too long")
	ErrJSON      = errors.New("JSON serialization is not accepted")
	ErrEncrypted = errors.New("an encrypted token (JWE) is not accepted")
	ErrForm      = errors.New("not a compact JWS")
	// ErrEncoding: not the one base64url spelling (padding, the standard
	// alphabet, stray trailing bits, line breaks): variants of a token that
	// lenient decoders would verify as the token.
	ErrEncoding  = errors.New("not in canonical base64url")
	ErrHeader    = errors.New("header is not a JSON object")
	ErrOwnKey    = errors.New("the header names its own key (jku, x5u, x5c or jwk)")
	ErrCrit      = errors.New("critical header extensions are not supported")
	ErrUnsigned  = errors.New("unsigned token")
	ErrAlgorithm = errors.New("alg is not the one the key is for")
	ErrHighS     = errors.New("not the low-S form of the ECDSA signature")
	ErrSignature = errors.New("signature or claims refused")
	ErrNoSubject = errors.New("no sub")
)

// Header is what a token's JOSE header says, read before any key is.
type Header struct {
	Alg, Kid, Typ string
}

// header has every member Precheck looks at.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Enc  json.RawMessage `json:"enc"`
	Jku  json.RawMessage `json:"jku"`
	X5u  json.RawMessage `json:"x5u"`
	JWK  json.RawMessage `json:"jwk"`
	X5c  json.RawMessage `json:"x5c"`
	Crit json.RawMessage `json:"crit"`
}

// Precheck checks that raw is one compact JWS of at most maxLen bytes, in
// canonical base64url, whose header is a JSON object naming no key of its
// own, no critical extension and an algorithm other than none, and returns
// the header.
func Precheck(raw string, maxLen int) (Header, error) {
	switch {
	case len(raw) > maxLen:
		return Header{}, ErrTooLong
	case strings.HasPrefix(strings.TrimSpace(raw), "{"):
		return Header{}, ErrJSON
	case strings.Count(raw, ".") == 4:
		return Header{}, ErrEncrypted
	case strings.Count(raw, ".") != 2:
		return Header{}, ErrForm
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return Header{}, ErrEncoding // Strict() decoding still skips line breaks
		}
	}
	var hraw []byte
	for i, seg := range strings.Split(raw, ".") {
		b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
		if err != nil {
			return Header{}, ErrEncoding
		}
		if i == 0 {
			hraw = b
		}
	}
	var h header
	if err := json.Unmarshal(hraw, &h); err != nil {
		return Header{}, ErrHeader
	}
	switch {
	case h.Enc != nil:
		return Header{}, ErrEncrypted
	case h.Jku != nil || h.X5u != nil || h.JWK != nil || h.X5c != nil:
		return Header{}, ErrOwnKey
	case h.Crit != nil:
		return Header{}, ErrCrit
	case h.Alg == "" || strings.EqualFold(h.Alg, "none"):
		return Header{}, ErrUnsigned
	}
	return Header{Alg: h.Alg, Kid: h.Kid, Typ: h.Typ}, nil
}

// Parse verifies raw, whose header Precheck returned as h, with key for alg
// (h must name alg), and validates its claims at now: exp and iat present,
// exp, iat and nbf within Skew, sub present, and every check given.
//
// The signature is jwx's jws.VerifyCompactFast and the checks jwx's
// jwt.Validate; the verified claims are read in one pass of encoding/json
// and set on a jwt.Token, which types the registered ones as jwt.Parse
// does. jwt.Parse read them with encoding/json's token stream, guessing
// the format of the token and then of its payload first: a third of a
// Google sign-in's token check besides the signature.
func Parse(raw string, h Header, alg jwa.SignatureAlgorithm, key any, now func() time.Time, checks ...jwt.ValidateOption) (jwt.Token, error) {
	if h.Alg != alg.String() {
		return nil, fmt.Errorf("%w: alg %q, the key is for %s", ErrAlgorithm, h.Alg, alg)
	}
	payload, err := jws.VerifyCompactFast(key, []byte(raw), alg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	tok, err := claims(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	opts := make([]jwt.ValidateOption, 0, len(rules)+1+len(checks))
	opts = append(opts, rules...)
	opts = append(opts, jwt.WithClock(jwt.ClockFunc(now)))
	opts = append(opts, checks...)
	if err := jwt.Validate(tok, opts...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return tok, nil
}

// claims reads a verified payload, one JSON object and nothing after it,
// into a token. Numbers stay as written (json.Number), so that a NumericDate
// keeps its digits, as jwt.Parse keeps them; a later member of a repeated
// name wins, as it does there. A payload encoding/json would alter
// (strictjson.Text: bytes that are not UTF-8, half a surrogate pair alone)
// is refused: it would read "m\xfcller" and "m\xe4ller" as one sub, or
// email.
func claims(payload []byte) (jwt.Token, error) {
	if err := strictjson.Text(payload); err != nil {
		return nil, fmt.Errorf("claims: the payload %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if m == nil {
		return nil, errors.New("claims: not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("claims: data after the JSON object")
	}
	tok := jwt.New()
	for name, v := range m {
		if err := tok.Set(name, v); err != nil {
			return nil, fmt.Errorf("claims: %s: %w", name, err)
		}
	}
	return tok, nil
}

// rules are the checks every token passes, whatever its kind.
var rules = []jwt.ValidateOption{
	jwt.WithAcceptableSkew(Skew),
	jwt.WithResetValidators(true),
	jwt.WithRequiredClaim(jwt.ExpirationKey),
	jwt.WithRequiredClaim(jwt.IssuedAtKey),
	jwt.WithValidator(jwt.ValidatorFunc(notExpired)),
	jwt.WithValidator(jwt.IsIssuedAtValid()),
	jwt.WithValidator(jwt.IsNbfValid()),
	jwt.WithValidator(jwt.ValidatorFunc(hasSubject)),
}

// notExpired accepts a token up to and including Skew past its exp (jwx's
// own check refuses at exactly exp+skew, a second stricter than this rule).
func notExpired(ctx context.Context, t jwt.Token) error {
	exp, _ := t.Expiration()
	if jwt.ValidationCtxClock(ctx).Now().After(exp.Add(Skew)) {
		return jwt.TokenExpiredError()
	}
	return nil
}

func hasSubject(_ context.Context, t jwt.Token) error {
	if sub, _ := t.Subject(); sub == "" {
		return ErrNoSubject
	}
	return nil
}

// OneOf is a check that claim name is one of values.
func OneOf(name string, values []string) jwt.ValidateOption {
	return jwt.WithValidator(jwt.ValidatorFunc(func(_ context.Context, t jwt.Token) error {
		var v string
		if err := t.Get(name, &v); err != nil || v == "" {
			return fmt.Errorf("no %s", name)
		}
		for _, want := range values {
			if v == want {
				return nil
			}
		}
		return fmt.Errorf("%s %q", name, v)
	}))
}

// p256 is the curve of ES256.
var p256 = elliptic.P256().Params()

// p256HalfOrder is n/2: (r, s) and (r, n-s) are both valid ECDSA signatures
// of one message, so an ES256 token has two forms unless one is chosen.
var p256HalfOrder = new(big.Int).Rsh(p256.N, 1)

// LowSSignature turns an ES256 signature r || s into its low-S form
// (s <= n/2) in place, and says whether it changed it: crypto/ecdsa signs
// with either.
func LowSSignature(sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	s := new(big.Int).SetBytes(sig[32:])
	if s.Cmp(p256HalfOrder) <= 0 {
		return false
	}
	s.Sub(p256.N, s).FillBytes(sig[32:])
	return true
}

// CheckLowS refuses a compact ES256 token whose signature is not r || s
// with s <= n/2.
func CheckLowS(tok string) error {
	sig, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	if err != nil || len(sig) != 64 || new(big.Int).SetBytes(sig[32:]).Cmp(p256HalfOrder) > 0 {
		return ErrHighS
	}
	return nil
}
