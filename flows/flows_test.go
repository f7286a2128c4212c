package flows_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/store"
)

func TestLookup(t *testing.T) {
	r, err := flows.Build(nil, flows.Defaults{CheckInPolicy: flows.CheckInNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup("activation"); err != nil {
		t.Fatal(err)
	}
	_, err = r.Lookup("x")
	if err == nil || err.Error() != `unknown flow "x", have [activation preregistration]` {
		t.Fatalf("lookup: %v", err)
	}
}

func TestBadDefinitionNamesFlowAndStep(t *testing.T) {
	for name, tc := range map[string]struct {
		steps []flows.StepConfig
		want  string
	}{
		"two kinds in one step":   {[]flows.StepConfig{{Verified: true, Emit: flows.Activated}}, "signup.steps[0]: a step is exactly one of"},
		"an unknown event":        {[]flows.StepConfig{{Verified: true}, {Emit: "Customer:Nope"}}, `signup.steps[1]: emit: unknown event type "Customer:Nope"`},
		"a server field":          {[]flows.StepConfig{{Set: map[string]any{"emailVerified": true}}}, "signup.steps[0]: set.emailVerified"},
		"a bad challenge":         {[]flows.StepConfig{{Challenge: "pigeon"}}, `signup.steps[0]: challenge: "pigeon"`},
		"an empty step":           {[]flows.StepConfig{{}}, "signup.steps[0]: a step is exactly one of"},
		"whenChanged out of emit": {[]flows.StepConfig{{Verified: true, WhenChanged: true}}, "signup.steps[0]: verified: whenChanged"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := flows.Build(map[string][]flows.StepConfig{"signup": tc.steps}, flows.Defaults{CheckInPolicy: flows.CheckInNone})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestActivationSteps(t *testing.T) {
	r, _ := flows.Build(nil, flows.Defaults{CheckInPolicy: flows.CheckInNone, ActivationFields: []string{"firstName"}})
	f, _ := r.Lookup("activation")
	c := &store.Customer{Profile: store.Profile{"isProspect": true}}
	st := &flows.State{Customer: c, Now: time.Now()}
	var missing *flows.MissingError
	if err := f.Run(context.Background(), st); !errors.As(err, &missing) || missing.Fields[0] != "firstName" {
		t.Fatalf("missing field: %v", err)
	}
	c.Profile["firstName"] = "Jane"
	st = &flows.State{Customer: c, Now: time.Now()}
	if err := f.Run(context.Background(), st); err != nil || st.Ask == nil {
		t.Fatalf("unverified contact: %v %+v", err, st)
	}
	c.EmailVerified = true
	st = &flows.State{Customer: c, Now: time.Now()}
	if err := f.Run(context.Background(), st); err != nil || st.Ask != nil || c.Profile["isProspect"] != false ||
		c.Profile["activatedAt"] == nil || len(st.Events) != 1 {
		t.Fatalf("activation: %v %+v %v", err, st, c.Profile)
	}
	st = &flows.State{Customer: c, Now: time.Now().Add(time.Hour)}
	at := c.Profile["activatedAt"]
	if err := f.Run(context.Background(), st); err != nil || len(st.Events) != 0 || c.Profile["activatedAt"] != at {
		t.Fatalf("activating twice: %v %+v", err, st)
	}
}

func TestAChallengeStepAsksUnlessItsOwnChallengeWasCompleted(t *testing.T) {
	r, err := flows.Build(map[string][]flows.StepConfig{"doubleOptIn": {
		{Challenge: "code"}, {Set: map[string]any{"optInConfirmedAt": "$now"}},
	}}, flows.Defaults{CheckInPolicy: flows.CheckInNone})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.Lookup("doubleOptIn")
	c := &store.Customer{Profile: store.Profile{}, EmailVerified: true}
	st := &flows.State{Customer: c, Now: time.Now()}
	if err := f.Run(context.Background(), st); err != nil || st.Ask == nil || c.Profile["optInConfirmedAt"] != nil {
		t.Fatalf("a request: %v %+v %v", err, st, c.Profile)
	}
	st = &flows.State{Customer: c, Now: time.Now(), Passed: true}
	if err := f.Run(context.Background(), st); err != nil || st.Ask != nil || c.Profile["optInConfirmedAt"] == nil || !st.Changed {
		t.Fatalf("the completion of its challenge: %v %+v %v", err, st, c.Profile)
	}
}

// No flow named is a nil flow: it runs no step and asks nothing.
func TestANilFlowRunsNoStep(t *testing.T) {
	st := &flows.State{Customer: &store.Customer{Profile: store.Profile{}}, Now: time.Now()}
	var none *flows.Flow
	if err := none.Run(context.Background(), st); err != nil || st.Ask != nil || st.Changed || len(st.Events) != 0 {
		t.Fatalf("a nil flow: %v %+v", err, st)
	}
}

// A set step writes what a request could: never a field the server keeps or
// the token reports (in any case), never a field's value of another type,
// never two spellings of one name. Found by an audit: a flow could set
// provider, authenticatedAt and expiresAt, which GET reports from the
// token, and consents_email: "yes" made GET answer a string.
func TestAFlowCannotSetWhatTheTokenReportsOrAFieldOfAnotherType(t *testing.T) {
	for name, tc := range map[string]struct {
		set  map[string]any
		want string // "" when the flow is fine
	}{
		"provider":                  {map[string]any{"provider": "google"}, "set.provider: a flow cannot set this field"},
		"authenticatedAt":           {map[string]any{"authenticatedAt": "$now"}, "set.authenticatedAt: a flow cannot set this field"},
		"expiresAt":                 {map[string]any{"expiresAt": "$now"}, "set.expiresAt: a flow cannot set this field"},
		"expiresAt in another case": {map[string]any{"ExpiresAt": "$now"}, "set.ExpiresAt: is expiresAt in another case"},
		"a field in another case":   {map[string]any{"FirstName": "Ada"}, "set.FirstName: is firstName in another case"},
		"the postcode's alias":      {map[string]any{"zipCode": "75001"}, "set.zipCode: a flow cannot set this field"},
		"an identifier":             {map[string]any{"email": "a@example.com"}, "set.email: a flow cannot set this field"},
		"a consent as text":         {map[string]any{"consents_email": "yes"}, "set.consents_email: must be true or false"},
		"a consent as the time":     {map[string]any{"consents_email": "$now"}, "set.consents_email: must be true or false"},
		"a text field as a number":  {map[string]any{"storeId": 42}, "set.storeId: must be a string"},
		"a text field as null":      {map[string]any{"title": nil}, "set.title: must be a string"},
		"activatedAt but not now":   {map[string]any{"activatedAt": "2019-01-01T00:00:00Z"}, "set.activatedAt: a flow sets it to $now only"},
		"one name in two spellings": {map[string]any{"optIn": true, "OptIn": true}, "set.optIn: is OptIn in another case"},
		"a number JSON has not":     {map[string]any{"score": math.Inf(1)}, "set.score: not a JSON value"},
		"activatedAt now, a consent, a text, a property": {map[string]any{
			"activatedAt": "$now", "consents_email": true, "storeId": "42", "segment": map[string]any{"any": 1}}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := flows.Build(map[string][]flows.StepConfig{"signup": {{Set: tc.set}}}, flows.Defaults{CheckInPolicy: flows.CheckInNone})
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), "signup.steps[0]: "+tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// A set step's value replaces what the account holds in another case (a
// property written before a flow set it): the profile keeps one spelling.
func TestASetStepKeepsOneSpelling(t *testing.T) {
	r, err := flows.Build(map[string][]flows.StepConfig{"signup": {{Set: map[string]any{"segment": "web"}}}},
		flows.Defaults{CheckInPolicy: flows.CheckInNone})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.Lookup("signup")
	// Every stored spelling gives way (an account may hold several, written
	// before a name was one property in any case), the value set or not.
	for _, value := range []string{"vip", "web"} {
		c := &store.Customer{Profile: store.Profile{"Segment": value, "SEGMENT": value, "segmenT": value}}
		s := &flows.State{Customer: c, Now: time.Now()}
		if err := f.Run(context.Background(), s); err != nil || len(c.Profile) != 1 || c.Profile["segment"] != "web" || !s.Changed {
			t.Fatalf("after the flow over %q: %v %v changed %v", value, err, c.Profile, s.Changed)
		}
	}
}

// A flow's checkIn may make the tenant's check-in policy stricter, never
// looser: none, which answers an existing account, is refused under partial
// or full, whose promise is that anonymous answers are the same for new and
// existing identifiers; partial and full keep that promise under each other.
// Found by an audit: a tenant under partial with a flow's checkIn: none
// answered 200 with the account for a known email and 202 for a new one.
func TestAFlowsCheckInMakesThePolicyStricterNeverLooser(t *testing.T) {
	policies := []string{flows.CheckInNone, flows.CheckInPartial, flows.CheckInFull}
	for _, tenant := range policies {
		for _, step := range append(policies, "") {
			t.Run(tenant+"/"+step, func(t *testing.T) {
				_, err := flows.Build(map[string][]flows.StepConfig{"signup": {{Verified: true}, {CheckIn: &step}}},
					flows.Defaults{CheckInPolicy: tenant})
				looser := step == flows.CheckInNone && tenant != flows.CheckInNone
				want := "signup.steps[1]: checkIn: none would tell anonymous callers who has an account, which the tenant's checkInPolicy " +
					tenant + " tells nobody: a flow's checkIn may be stricter than the tenant's, never looser"
				switch {
				case looser && (err == nil || err.Error() != want):
					t.Fatalf("got %v, want %q", err, want)
				case !looser && err != nil:
					t.Fatalf("refused: %v", err)
				}
			})
		}
	}
}
