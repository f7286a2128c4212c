package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/customerd/customerd/account/field"
	"github.com/customerd/customerd/store"
)

// require stops the flow with a *MissingError when the account lacks a field.
type require struct{ fields []string }

func (require) Kind() string { return "require" }

func (r require) Run(_ context.Context, s *State) error {
	var missing []string
	for _, name := range r.fields {
		if !s.Customer.Has(name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return &MissingError{Fields: missing}
	}
	return nil
}

// verified asks for a challenge when no contact of the account is verified
// (a code, or a provider's verified email, makes one so).
type verified struct{}

func (verified) Kind() string { return "verified" }

func (verified) Run(_ context.Context, s *State) error {
	if !s.Customer.EmailVerified && !s.Customer.PhoneVerified {
		s.Ask = &Ask{}
	}
	return nil
}

// now is the value of set that records the time of the run, once.
const now = "$now"

// set writes values into the account. A "$now" value records the time of
// the first run only, so that running a flow again changes nothing.
type set struct {
	values map[string]any // as the store gives them back (asStored)
}

// asStored is v, a value of the configuration, as an account's profile holds
// it once stored (store.Profile's JSON, numbers as json.Number written out
// plain as PostgreSQL keeps them, lists as []any), so that a run compares it
// with what the account holds: YAML's 10 never equalled the stored 10, 1e-07
// never equalled PostgreSQL's 0.0000001, and == on two lists panicked. A
// value JSON cannot hold (.inf) is refused here rather than on every run.
func asStored(v any) (any, error) {
	text, err := store.PlainJSON(map[string]any{"v": v}) // as Profile.Value writes it
	if err != nil {
		return nil, fmt.Errorf("not a JSON value: %w", err)
	}
	// A YAML number is a float64 or a 64-bit integer: written out, a few
	// hundred bytes at most.
	plain, err := store.PlainNumbers(json.RawMessage(text), 1<<10)
	if err != nil {
		return nil, err
	}
	var p store.Profile
	if err := p.Scan([]byte(plain)); err != nil {
		return nil, err
	}
	return p["v"], nil
}

func (set) Kind() string { return "set" }

func (st set) Run(_ context.Context, s *State) error {
	for _, k := range sortedKeys(st.values) {
		// What the account holds in other cases (properties written before
		// a flow set it) gives way to this value: the profile keeps one
		// spelling of a name.
		n := len(s.Customer.Profile)
		field.DropOtherSpellings(s.Customer.Profile, k)
		if len(s.Customer.Profile) != n {
			s.Changed = true
		}
		v := st.values[k]
		if v == now {
			if _, ok := s.Customer.Profile[k]; ok {
				continue
			}
			v = s.Now.UTC().Format(time.RFC3339Nano)
		}
		if old, ok := s.Customer.Profile[k]; ok && reflect.DeepEqual(old, v) { // both as stored
			continue
		}
		s.Customer.Profile[k] = v
		s.Changed = true
	}
	return nil
}

// challenge asks for a challenge, by code or by link, on every request;
// the completion of the flow's own challenge passes it.
type challenge struct{ link bool }

func (challenge) Kind() string { return "challenge" }

func (c challenge) Run(_ context.Context, s *State) error {
	if !s.Passed {
		s.Ask = &Ask{Link: c.link}
	}
	return nil
}

// emit writes an event with the change; with whenChanged, only when a set
// step changed something in this run.
type emit struct {
	typ         string
	whenChanged bool
}

func (emit) Kind() string { return "emit" }

func (e emit) Run(_ context.Context, s *State) error {
	if e.whenChanged && !s.Changed {
		return nil
	}
	if !slices.Contains(s.Events, e.typ) {
		s.Events = append(s.Events, e.typ)
	}
	return nil
}

// checkInStep is preregistration's policy for anonymous callers: none
// answers an existing account; partial and full send a link or a code to
// existing and new accounts alike, so that the answer never tells which.
type checkInStep struct{ policy string }

func (checkInStep) Kind() string { return "checkIn" }

func (c checkInStep) Run(_ context.Context, s *State) error {
	if !s.Anonymous {
		return nil
	}
	switch c.policy {
	case CheckInNone:
		s.Reveal = s.Existing
	case CheckInPartial:
		s.Ask = &Ask{Link: true}
	case CheckInFull:
		s.Ask = &Ask{}
	default:
		return fmt.Errorf("unknown check-in policy %q", c.policy)
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
