// Package flows is the flow contract and registry: a flow is a named,
// per-tenant list of steps that runs after an account is validated, in the
// transaction that saves it. Built-in steps require fields, require a
// verified contact, set values, ask for a challenge, check a shopper in, and
// emit an event; "preregistration" and "activation" ship as defaults that a
// tenant may override.
package flows

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/strictjson"
)

// Event types customerd delivers to webhooks; a flow may emit all but Deleted.
const (
	Upserted      = "Customer:Upserted"
	Activated     = "Customer:Activated"
	ContactChange = "Customer:ContactChanged"
	// Deleted: the account was erased (by its owner or an administrator).
	Deleted = "Customer:Deleted"
)

// Emittable are the event types a flow's emit step may write.
var Emittable = []string{Activated, ContactChange, Upserted}

// EventTypes are the event types webhooks receive.
var EventTypes = []string{Activated, ContactChange, Deleted, Upserted}

// Check-in policies of preregistration.
const (
	CheckInNone    = "none"    // answer the account
	CheckInPartial = "partial" // a link to the tenant's page, for existing and new accounts alike
	CheckInFull    = "full"    // a code, for existing and new accounts alike
)

// State is what the steps of one run see and change.
type State struct {
	// Customer is the validated account about to be saved; steps may change it.
	Customer *store.Customer
	// Anonymous: the caller has no token.
	Anonymous bool
	// Existing: an anonymous caller named an account that exists. The steps
	// run on the request as if it made a new account (Customer), so that the
	// answer does not tell; nothing of it is written.
	Existing bool
	Now      time.Time
	// Passed: this run is the completion of the challenge this flow asked
	// for (its code was just proven), so its challenge steps are passed and
	// the steps after them run. Only completing that challenge sets it: a
	// request naming the flow is asked for a code again.
	Passed bool

	// Ask, when a step sets it, stops the flow: the answer is 202 with a
	// challenge to the account's contact, sent once the transaction commits.
	Ask *Ask
	// Reveal lets an anonymous caller see an existing account (check-in none).
	Reveal bool
	// Changed: a set step changed a value in this run.
	Changed bool
	// Events to write with the change, by type.
	Events []string
}

// Ask is a challenge a step wants.
type Ask struct {
	// Link sends a link to the tenant's check-in page rather than a bare code.
	Link bool
}

// Step is one step of a flow.
type Step interface {
	// Kind names the step in errors and logs.
	Kind() string
	Run(ctx context.Context, s *State) error
}

// MissingError lists the fields a flow requires that the account lacks.
type MissingError struct {
	Fields []string
}

func (e *MissingError) Error() string { return "missing fields: " + strings.Join(e.Fields, ", ") }

// Flow is a named list of steps.
type Flow struct {
	Name  string
	Steps []Step
}

// Run runs the steps in order until one asks for a challenge. A nil flow
// (none named) runs no step.
func (f *Flow) Run(ctx context.Context, s *State) error {
	if f == nil {
		return nil
	}
	for i, step := range f.Steps {
		if err := step.Run(ctx, s); err != nil {
			return fmt.Errorf("flow %s step %d (%s): %w", f.Name, i+1, step.Kind(), err)
		}
		if s.Ask != nil {
			return nil
		}
	}
	return nil
}

// Registry is one tenant's flows by name.
type Registry struct {
	byName map[string]*Flow
	sets   map[string]string // what the set steps of its flows write, by folded name
}

// newRegistry returns an empty registry. Only Build fills one: a built
// registry is never changed, so the shipped flows' can be shared.
func newRegistry() *Registry { return &Registry{byName: map[string]*Flow{}, sets: map[string]string{}} }

// register adds or replaces a flow.
func (r *Registry) register(f *Flow) {
	r.byName[f.Name] = f
	clear(r.sets)
	for _, f := range r.byName {
		for _, step := range f.Steps {
			if st, ok := step.(set); ok {
				for k := range st.values {
					r.sets[strictjson.FoldName(k)] = k
				}
			}
		}
	}
}

// Sets reports whether a set step of one of r's flows writes property k, in
// any case, and the spelling it writes (one: Build refuses two): the flow's
// to write (a time it records once, the mark of a step passed), never a
// request's. "OptInConfirmedAt" is optInConfirmedAt to a receiver that
// matches names without case (encoding/json does).
func (r *Registry) Sets(k string) (string, bool) {
	if r == nil {
		return "", false
	}
	spelling, ok := r.sets[strictjson.FoldName(k)]
	return spelling, ok
}

// Names lists the flows in order.
func (r *Registry) Names() []string {
	return slices.Sorted(maps.Keys(r.byName))
}

// UnknownError: no flow has this name in the tenant.
type UnknownError struct {
	Name string
	Have []string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown flow %q, have [%s]", e.Name, strings.Join(e.Have, " "))
}

// Lookup returns the flow called name.
func (r *Registry) Lookup(name string) (*Flow, error) {
	if r != nil {
		if f, ok := r.byName[name]; ok {
			return f, nil
		}
	}
	var have []string
	if r != nil {
		have = r.Names()
	}
	return nil, &UnknownError{Name: name, Have: have}
}
