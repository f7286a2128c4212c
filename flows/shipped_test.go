package flows_test

import (
	"testing"

	"github.com/customerd/customerd/flows"
)

// Tenants that declare no flow share one registry of the shipped flows per
// check-in policy and activation fields; one that declares flows, or whose
// defaults differ, has its own.
func TestTenantsWithTheShippedFlowsShareThem(t *testing.T) {
	of := func(declared map[string][]flows.StepConfig, d flows.Defaults) *flows.Registry {
		t.Helper()
		reg, err := flows.Build(declared, d)
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	vip := map[string][]flows.StepConfig{"vip": {{Verified: true}}}
	partial := of(nil, flows.Defaults{CheckInPolicy: "partial", ActivationFields: []string{"firstName"}})
	if of(map[string][]flows.StepConfig{}, flows.Defaults{CheckInPolicy: "partial", ActivationFields: []string{"firstName"}}) != partial {
		t.Fatal("two tenants with the same defaults built the shipped flows twice")
	}
	for _, c := range []struct {
		declared map[string][]flows.StepConfig
		d        flows.Defaults
	}{
		{nil, flows.Defaults{CheckInPolicy: "full", ActivationFields: []string{"firstName"}}},
		{nil, flows.Defaults{CheckInPolicy: "partial", ActivationFields: []string{"firstName", "lastName"}}},
		{vip, flows.Defaults{CheckInPolicy: "partial", ActivationFields: []string{"firstName"}}},
	} {
		if reg := of(c.declared, c.d); reg == partial {
			t.Fatalf("%+v was handed another tenant's flows", c)
		}
	}
	own := of(vip, flows.Defaults{CheckInPolicy: "partial"})
	if _, err := own.Lookup("vip"); err != nil {
		t.Fatalf("a declared flow: %v", err)
	}
	if _, err := partial.Lookup("vip"); err == nil {
		t.Fatal("a tenant's declared flow reached the shared registry")
	}
}
