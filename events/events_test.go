package events_test

import (
	"testing"
	"time"

	"github.com/customerd/customerd/events"
)

func TestBackoffGrowsWithJitterUpToItsCap(t *testing.T) {
	for attempts, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		for range 50 {
			if d := events.Backoff(time.Second, time.Minute, attempts); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v not in [%v, %v]", attempts, d, want/2, want)
			}
		}
	}
	if d := events.Backoff(time.Second, time.Minute, 40); d < 30*time.Second || d > time.Minute {
		t.Fatalf("capped: %v", d)
	}
}

func TestATenantWantsTheTypesItsEndpointsSubscribeTo(t *testing.T) {
	none := events.Tenant{}
	all := events.Tenant{Endpoints: []events.Endpoint{{URL: "https://crm.example"}}}
	some := events.Tenant{Endpoints: []events.Endpoint{{URL: "https://crm.example", Types: []string{"Customer:Activated"}}}}
	for _, c := range []struct {
		name string
		t    events.Tenant
		typ  string
		want bool
	}{
		{"no endpoint wants nothing", none, "Customer:Upserted", false},
		{"an endpoint without types wants every type", all, "Customer:Upserted", true},
		{"an endpoint with types wants those", some, "Customer:Activated", true},
		{"an endpoint with types wants no other", some, "Customer:Upserted", false},
	} {
		if got := c.t.Wants(c.typ); got != c.want {
			t.Errorf("%s: Wants(%q) = %v", c.name, c.typ, got)
		}
	}
}
