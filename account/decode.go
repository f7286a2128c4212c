// Package account holds the account rules: how a change is checked,
// normalised, enriched and applied to a stored account (Apply), the limits of
// its free-form part (Extras), the ownership rule, and how an account is
// shown (View). The server turns the contract's request body into an Input;
// the lengths and types of the known fields are the contract's, checked by
// the request validator (Decode reads a body the validator refused, to name
// every bad field in one answer).
package account

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/customerd/customerd/account/field"
	"github.com/customerd/customerd/store"
)

// Limits of the free-form part of an account: per request, then per stored account.
const (
	maxExtraFields = 50
	maxExtraKey    = 64
	maxExtraValue  = 4096
	maxExtraDepth  = 8

	maxStoredExtras = 100
	maxStoredJSON   = 64 << 10
)

// consents default to false on creation.
var consents = []string{"consents_email", "consents_sms", "consents_post", "consents_emailReceipt"}

// Input is a decoded request body: the fields it sets (nil clears a field)
// and its free-form properties, kept as sent.
type Input struct {
	Set    map[string]any // string or bool, or nil to clear
	Extras map[string]json.RawMessage
}

// Has reports whether the input sets (or clears) a field.
func (in Input) Has(name string) bool {
	_, ok := in.Set[name]
	return ok
}

// Without is in without the field name (its free-form properties shared).
func (in Input) Without(name string) Input {
	out := Input{Set: make(map[string]any, len(in.Set)), Extras: in.Extras}
	for k, v := range in.Set {
		if k != name {
			out.Set[k] = v
		}
	}
	return out
}

// String returns a text field the input sets, "" otherwise.
func (in Input) String(name string) string {
	s, _ := in.Set[name].(string)
	return s
}

// ErrNotObject: the body is not a JSON object.
var ErrNotObject = errors.New("the request body must be a JSON object")

// ValidationError lists the bad fields of a request, keyed by JSON field name.
type ValidationError struct {
	Fields map[string][]string
}

func (e *ValidationError) Error() string {
	return "invalid fields: " + strings.Join(slices.Sorted(maps.Keys(e.Fields)), ", ")
}

func (e *ValidationError) add(name, msg string) {
	if e.Fields == nil {
		e.Fields = map[string][]string{}
	}
	e.Fields[name] = append(e.Fields[name], msg)
}

func (e *ValidationError) orNil() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Decode turns a JSON object into an Input. Type errors and free-form limits
// are a *ValidationError; anything that is not a JSON object is ErrNotObject.
func Decode(raw []byte) (Input, error) {
	var obj map[string]json.RawMessage
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Input{}, ErrNotObject
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Input{}, fmt.Errorf("%w: %w", ErrNotObject, err)
	}
	in := Input{Set: map[string]any{}}
	extras := map[string]json.RawMessage{}
	verr := &ValidationError{}
	for name, value := range obj {
		if name == "zipCode" {
			if _, both := obj["postcode"]; both {
				continue // postcode wins over its alias
			}
			name = "postcode"
		}
		if field.ReadOnly(name) {
			continue
		}
		k, known := field.Of(name)
		if !known {
			extras[name] = value
			continue
		}
		if string(value) == "null" {
			in.Set[name] = nil
			continue
		}
		switch k {
		case field.Text:
			var s string
			if err := json.Unmarshal(value, &s); err != nil {
				verr.add(name, "must be "+k.String())
				continue
			}
			in.SetText(name, s)
		case field.Flag:
			var b bool
			if err := json.Unmarshal(value, &b); err != nil {
				verr.add(name, "must be "+k.String())
				continue
			}
			in.Set[name] = b
		}
	}
	in.Extras, _ = Extras(extras, verr)
	return in, verr.orNil()
}

// SetText sets a text field as a request sends it: trimmed, and cleared
// when nothing is left.
func (in Input) SetText(name, s string) {
	if s = strings.TrimSpace(s); s == "" {
		in.Set[name] = nil
	} else {
		in.Set[name] = s
	}
}

// Extras checks the free-form properties of a request (names, size, depth,
// numbers) and returns them as they will be stored, numbers in plain
// decimal; what is wrong is added to verr (a new one when nil) and returned.
func Extras(raw map[string]json.RawMessage, verr *ValidationError) (map[string]json.RawMessage, error) {
	if verr == nil {
		verr = &ValidationError{}
	}
	out := make(map[string]json.RawMessage, len(raw))
	for name, value := range raw {
		decodeExtra(verr, out, name, value)
	}
	if len(raw) > maxExtraFields {
		verr.add("additionalProperties", fmt.Sprintf("at most %d properties beyond the account fields", maxExtraFields))
	}
	return out, verr.orNil()
}

func decodeExtra(verr *ValidationError, extras map[string]json.RawMessage, name string, value json.RawMessage) {
	// A field's name in another case is never a free-form property beside
	// the field: a receiver that matches names without case (encoding/json
	// does) would read "ActivatedAt" as activatedAt. A read-only one is
	// ignored as the field is; another is refused, naming the field. Its
	// null is let through: it removes what older versions stored under that
	// name in any case (Apply), "zipcode" among them, which nothing else could.
	if exact, ok := field.Exact(name); ok && exact != name {
		switch {
		case string(value) == "null":
			extras[name] = value
		case !field.ReadOnly(exact):
			verr.add(name, "is "+exact+" in another case: send "+exact)
		}
		return
	}
	if name == "" || len(name) > maxExtraKey {
		verr.add(name, fmt.Sprintf("property names are 1 to %d characters", maxExtraKey))
		return
	}
	value, err := store.PlainNumbers(value, maxExtraValue)
	switch {
	case err != nil:
		verr.add(name, err.Error())
	case len(value) > maxExtraValue:
		verr.add(name, fmt.Sprintf("must be at most %d bytes of JSON, numbers written out", maxExtraValue))
	case depth(value) > maxExtraDepth:
		verr.add(name, fmt.Sprintf("must nest at most %d levels", maxExtraDepth))
	default:
		extras[name] = value
	}
}

// depth is how deeply a JSON value nests arrays and objects.
func depth(v json.RawMessage) int {
	d, max, inString, escaped := 0, 0, false, false
	for _, c := range v {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			if d > max {
				max = d
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return max
}
