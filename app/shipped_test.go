package app

import (
	"testing"

	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/flows"
)

// Tenants that declare no flow share one registry of the shipped flows per
// check-in policy and activation fields; one that declares flows, or whose
// defaults differ, has its own.
func TestTenantsWithTheShippedFlowsShareThem(t *testing.T) {
	b := &builder{}
	of := func(tc *config.Tenant) *flows.Registry {
		t.Helper()
		reg, err := b.flowsOf(tc)
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	partial := of(&config.Tenant{CheckInPolicy: "partial", ActivationFields: []string{"firstName"}})
	if of(&config.Tenant{CheckInPolicy: "partial", ActivationFields: []string{"firstName"}}) != partial {
		t.Fatal("two tenants with the same defaults built the shipped flows twice")
	}
	for _, tc := range []*config.Tenant{
		{CheckInPolicy: "full", ActivationFields: []string{"firstName"}},
		{CheckInPolicy: "partial", ActivationFields: []string{"firstName", "lastName"}},
		{CheckInPolicy: "partial", ActivationFields: []string{"firstName"},
			Flows: map[string][]flows.StepConfig{"vip": {{Verified: true}}}},
	} {
		if reg := of(tc); reg == partial {
			t.Fatalf("%+v was handed another tenant's flows", tc)
		}
	}
	own := of(&config.Tenant{CheckInPolicy: "partial", Flows: map[string][]flows.StepConfig{"vip": {{Verified: true}}}})
	if _, err := own.Lookup("vip"); err != nil {
		t.Fatalf("a declared flow: %v", err)
	}
	if _, err := partial.Lookup("vip"); err == nil {
		t.Fatal("a tenant's declared flow reached the shared registry")
	}
}
