// Package strictjson is how customerd reads JSON that comes from outside (a
// request body, a brand's answer, a token's claims) so that it has one
// reading only: what encoding/json would quietly accept or alter is refused,
// and what customerd acts on is what the sender wrote, and what any other
// reader of the same bytes finds there.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting Check accepts.
const MaxDepth = 32

// Found is what Check reports of JSON that is sound but that no database
// keeps as it is, for its caller to weigh.
type Found struct {
	// NUL: a string or a member name holds a NUL character.
	NUL bool
	// Numbers are the top-level members ("" for a value that is no object)
	// holding, somewhere inside, a number that CheckNumber refuses.
	Numbers []string
}

// Check refuses what encoding/json would quietly accept or alter: what
// Text refuses, member names repeated in an object (also in another case,
// as encoding/json matches a name to a field: the last one wins), nesting
// deeper than MaxDepth, and anything after the value. Its errors say what is
// wrong after the name of what was read: "the request body " + err.
func Check(body []byte) (Found, error) {
	var found Found
	if err := Text(body); err != nil {
		return found, err
	}
	type frame struct {
		object  bool
		wantKey bool
		seen    map[string]bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	values := 0
	member := "" // the top-level member being read
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return found, errors.New("is not valid JSON")
		}
		if len(stack) == 0 {
			if values++; values > 1 {
				return found, errors.New("has data after the JSON value")
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			valueDone()
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			key, _ := tok.(string)
			found.NUL = found.NUL || strings.ContainsRune(key, 0)
			folded := FoldName(key)
			if stack[n-1].seen[folded] {
				return found, fmt.Errorf("repeats the member %q", key)
			}
			stack[n-1].seen[folded] = true
			stack[n-1].wantKey = false
			if n == 1 {
				member = key
			}
			continue
		}
		switch v := tok.(type) {
		case json.Delim:
			if len(stack) >= MaxDepth {
				return found, fmt.Errorf("nests deeper than %d levels", MaxDepth)
			}
			f := &frame{object: v == '{', wantKey: v == '{'}
			if f.object {
				f.seen = map[string]bool{}
			}
			stack = append(stack, f)
		case string:
			found.NUL = found.NUL || strings.ContainsRune(v, 0)
			valueDone()
		case json.Number:
			if CheckNumber(v.String()) != nil && !slices.Contains(found.Numbers, member) {
				found.Numbers = append(found.Numbers, member)
			}
			valueDone()
		default:
			valueDone()
		}
	}
	if values == 0 {
		return found, errors.New("is empty")
	}
	if len(stack) > 0 { // Token meets the end of a cut body as io.EOF
		return found, errors.New("is not valid JSON")
	}
	return found, nil
}

// Text refuses JSON text that encoding/json reads as U+FFFD where the sender
// wrote something else: bytes that are not UTF-8, and the escape of half a
// UTF-16 surrogate pair without its other half ("\ud800"). Both would make
// two names one: "m\xfcller" and "m\xe4ller", "\ud800" and "\udc00".
func Text(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("is not valid UTF-8")
	}
	if unpairedSurrogate(b) {
		return errors.New(`escapes half of a surrogate pair alone (\ud800)`)
	}
	return nil
}

// unpairedSurrogate reports whether JSON text b escapes a surrogate that
// encoding/json does not pair: a high half not followed at once by the
// escape of a low half, or a low half on its own.
func unpairedSurrogate(b []byte) bool {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 {
			return false
		}
		i += j + 1 // the escaped character: in "\\ud800" a backslash, no surrogate
		r, ok := escaped(b, i)
		if !ok {
			i++
			continue
		}
		i += 5
		switch {
		case !utf16.IsSurrogate(r):
		case r >= 0xdc00:
			return true
		case i >= len(b) || b[i] != '\\':
			return true
		default:
			low, ok := escaped(b, i+1)
			if !ok || low < 0xdc00 || low > 0xdfff {
				return true
			}
			i += 6
		}
	}
	return false
}

// escaped is the code unit of the escape \uXXXX whose u is b[i], if it is one.
func escaped(b []byte, i int) (rune, bool) {
	if i+5 > len(b) || b[i] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[i+1 : i+5] {
		switch l := c | 0x20; {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= l && l <= 'f':
			r = r<<4 | rune(l-'a'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// ErrNumberRange: a number that a float64 cannot hold, by overflow or by
// underflow to zero. Such a number is refused everywhere: one database would
// keep it exactly and the other fail, or round it.
var ErrNumberRange = errors.New("numbers must be 0 or between 4.9e-324 and 1.8e308 in magnitude")

// CheckNumber refuses a number literal that strconv.ParseFloat overflows or
// rounds to zero (and the Inf and NaN it takes, which JSON has not).
func CheckNumber(lit string) error {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f == 0 && strings.TrimLeft(mantissa(lit), "0.-") != "" {
		return ErrNumberRange
	}
	return nil
}

// mantissa is a number literal without its exponent.
func mantissa(lit string) string {
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		return lit[:i]
	}
	return lit
}

// FoldName is the name that encoding/json matches a member to a field by:
// each rune as the smallest of its case-folding orbit (so "ſ" is "s" and "K"
// is "k", which lower-casing misses).
func FoldName(name string) string {
	var b strings.Builder
	for _, r := range name {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}
