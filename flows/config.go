package flows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/customerd/customerd/account/field"
	"github.com/customerd/customerd/strictjson"
)

// StepConfig is one step as configuration declares it: exactly one of its
// fields is set.
//
//   - require: [firstName, lastName]
//   - verified: true
//   - set: {isProspect: false, activatedAt: $now}
//   - challenge: code            # or link
//   - emit: Customer:Activated
//     whenChanged: true
//   - checkIn: partial           # none, partial, full; "" is the tenant's policy, never looser
type StepConfig struct {
	Require     []string       `yaml:"require,omitempty" json:"require,omitempty"`
	Verified    bool           `yaml:"verified,omitempty" json:"verified,omitempty"`
	Set         map[string]any `yaml:"set,omitempty" json:"set,omitempty"`
	Challenge   string         `yaml:"challenge,omitempty" json:"challenge,omitempty"`
	Emit        string         `yaml:"emit,omitempty" json:"emit,omitempty"`
	WhenChanged bool           `yaml:"whenChanged,omitempty" json:"whenChanged,omitempty"`
	CheckIn     *string        `yaml:"checkIn,omitempty" json:"checkIn,omitempty"`
}

// Defaults are what the built-in flows take from the tenant.
type Defaults struct {
	// CheckInPolicy is preregistration's policy: none, partial or full.
	CheckInPolicy string
	// ActivationFields are the fields activation requires.
	ActivationFields []string
}

// DefaultFlows are preregistration and activation as customerd ships them.
func DefaultFlows(d Defaults) map[string][]StepConfig {
	policy := d.CheckInPolicy
	fields := append([]string{}, d.ActivationFields...)
	return map[string][]StepConfig{
		"preregistration": {{CheckIn: &policy}},
		"activation": {
			{Require: fields},
			{Verified: true},
			{Set: map[string]any{"isProspect": false, "activatedAt": now}},
			{Emit: Activated, WhenChanged: true},
		},
	}
}

// settable refuses what a set step may not write into the account: an
// identifier (the identifier rules own them); a read-only field, which the
// server keeps or the token reports (GET answers provider from the token),
// except as a shipped flow sets it (activatedAt: $now); a field's name in
// another case, which a receiver matching names without case reads as the
// field; and a value of another type than the field's, which GET would
// answer off the contract (consents_email: "yes").
func settable(k string, v any) error {
	exact, known := field.Exact(k)
	switch {
	case k == "":
		return errors.New("a flow cannot set this field")
	case !known:
		return nil // a free-form property
	case exact != k:
		return fmt.Errorf("is %s in another case: set %s", exact, exact)
	}
	kind, writable := field.Of(k)
	if writable && k != "email" && k != "phoneNumber" {
		if !kind.Holds(v) {
			return fmt.Errorf("must be %s", kind)
		}
		return nil
	}
	if sv, ok := shippedSets[k]; ok {
		if sv != v {
			return fmt.Errorf("a flow sets it to %v only", sv)
		}
		return nil
	}
	return errors.New("a flow cannot set this field")
}

// shippedSets are the values the shipped flows' set steps write.
var shippedSets = func() map[string]any {
	m := map[string]any{}
	for _, steps := range DefaultFlows(Defaults{}) {
		for _, sc := range steps {
			maps.Copy(m, sc.Set)
		}
	}
	return m
}()

// Build makes a tenant's registry: the default flows, overridden and extended
// by the declared ones. Errors name the flow and the step.
//
// A tenant that declares no flow gets the registry of the shipped flows for
// its defaults, built once and shared: one per tenant was a tenth of the
// heap at 10,000 tenants, and the collector marked it on every cycle.
func Build(declared map[string][]StepConfig, d Defaults) (*Registry, error) {
	if len(declared) > 0 {
		return build(declared, d)
	}
	key := d.CheckInPolicy + "\x00" + strings.Join(d.ActivationFields, "\x00")
	if r, ok := shipped.Load(key); ok {
		return r.(*Registry), nil
	}
	r, err := build(nil, d)
	if err != nil {
		return nil, err
	}
	got, _ := shipped.LoadOrStore(key, r)
	return got.(*Registry), nil
}

// shipped holds Build's registries of the shipped flows alone, by their
// defaults.
var shipped sync.Map

func build(declared map[string][]StepConfig, d Defaults) (*Registry, error) {
	all := DefaultFlows(d)
	for name, steps := range declared {
		all[name] = steps
	}
	r := newRegistry()
	// What set steps write, by folded name.
	spelled := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(all)) { // the same first error at every start
		steps := all[name]
		f := &Flow{Name: name}
		if name == "" || strings.ContainsAny(name, " \t/?&#") {
			return nil, fmt.Errorf("%q: flow names are non-empty words", name)
		}
		for i, sc := range steps {
			step, err := sc.open(d)
			if err != nil {
				return nil, fmt.Errorf("%s.steps[%d]: %w", name, i, err)
			}
			// Two spellings of one name would be two properties of one
			// account that a receiver matching names without case reads as one.
			for _, k := range sortedKeys(sc.Set) {
				folded := strictjson.FoldName(k)
				if other, ok := spelled[folded]; ok && other != k {
					return nil, fmt.Errorf("%s.steps[%d]: set.%s: is %s in another case, which a flow sets", name, i, k, other)
				}
				spelled[folded] = k
			}
			f.Steps = append(f.Steps, step)
		}
		r.register(f)
	}
	return r, nil
}

func (sc StepConfig) open(d Defaults) (Step, error) {
	var kinds []string
	if sc.Require != nil {
		kinds = append(kinds, "require")
	}
	if sc.Verified {
		kinds = append(kinds, "verified")
	}
	if sc.Set != nil {
		kinds = append(kinds, "set")
	}
	if sc.Challenge != "" {
		kinds = append(kinds, "challenge")
	}
	if sc.Emit != "" {
		kinds = append(kinds, "emit")
	}
	if sc.CheckIn != nil {
		kinds = append(kinds, "checkIn")
	}
	if len(kinds) != 1 {
		return nil, fmt.Errorf("a step is exactly one of require, verified, set, challenge, emit, checkIn; have [%s]", strings.Join(kinds, " "))
	}
	if sc.WhenChanged && kinds[0] != "emit" {
		return nil, fmt.Errorf("%s: whenChanged goes with emit only", kinds[0])
	}
	switch kinds[0] {
	case "require":
		for _, f := range sc.Require {
			if strings.TrimSpace(f) == "" {
				return nil, fmt.Errorf("require: empty field name")
			}
		}
		return require{fields: sc.Require}, nil
	case "verified":
		return verified{}, nil
	case "set":
		if len(sc.Set) == 0 {
			return nil, fmt.Errorf("set: no values")
		}
		values := make(map[string]any, len(sc.Set))
		for _, k := range sortedKeys(sc.Set) { // the same first error at every start
			if err := settable(k, sc.Set[k]); err != nil {
				return nil, fmt.Errorf("set.%s: %w", k, err)
			}
			v, err := asStored(sc.Set[k])
			if err != nil {
				return nil, fmt.Errorf("set.%s: %w", k, err)
			}
			values[k] = v
		}
		return set{values: values}, nil
	case "challenge":
		if sc.Challenge != "code" && sc.Challenge != "link" {
			return nil, fmt.Errorf("challenge: %q is not one of code, link", sc.Challenge)
		}
		return challenge{link: sc.Challenge == "link"}, nil
	case "emit":
		if !slices.Contains(Emittable, sc.Emit) {
			return nil, fmt.Errorf("emit: unknown event type %q, have [%s]", sc.Emit, strings.Join(Emittable, " "))
		}
		if sc.Emit == Upserted {
			// emit adds to the events of a change; it never replaces this one.
			return nil, fmt.Errorf("emit: every create and update writes %s already: emitting it would deliver the change twice", Upserted)
		}
		return emit{typ: sc.Emit, whenChanged: sc.WhenChanged}, nil
	}
	policy := *sc.CheckIn
	if policy == "" {
		policy = d.CheckInPolicy
	}
	if policy != CheckInNone && policy != CheckInPartial && policy != CheckInFull {
		return nil, fmt.Errorf("checkIn: %q is not one of none, partial, full", policy)
	}
	// A step may make the tenant's policy stricter, never looser: partial
	// and full promise that anonymous answers are alike for new and existing
	// identifiers (each keeps it under the other), and none answers an
	// existing account.
	if policy == CheckInNone && (d.CheckInPolicy == CheckInPartial || d.CheckInPolicy == CheckInFull) {
		return nil, fmt.Errorf("checkIn: none would tell anonymous callers who has an account, which the tenant's checkInPolicy %s tells nobody: a flow's checkIn may be stricter than the tenant's, never looser", d.CheckInPolicy)
	}
	return checkInStep{policy: policy}, nil
}
