package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return storetest.Open(t, b.URL(t)) })
		})
	}
}

// BenchmarkCodeVerification is the store's part of a code verification that
// creates its account: the challenge read (with its destination's failures),
// the account lookup, and the write that creates the account and uses the
// challenge up.
func BenchmarkCodeVerification(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := storetest.Open(b, be.URL(b))
			ctx := context.Background()
			now := time.Now().UTC()
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = uuid.NewString()
				c := &store.Challenge{ID: ids[i], TenantID: "acme", Channel: "email", Destination: fmt.Sprintf("b%d@example.com", i),
					CodeHash: "h", MaxAttempts: 5, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
				if err := s.CreateChallenge(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				day := now.Format(time.DateOnly)
				c, err := s.AttemptChallenge(ctx, store.Attempt{Tenant: "acme", ID: ids[i], Now: now, CounterPrefix: "fail:",
					Day: day, Limit: 100})
				if err != nil || c.Holder != nil {
					b.Fatal(c, err)
				}
				email := c.Destination
				cu := &store.Customer{ID: uuid.NewString(), TenantID: "acme", Email: &email, EmailVerified: true,
					Profile: store.Profile{"isProspect": true, "country": "FR"}, CreatedAt: now, UpdatedAt: now}
				ev := &store.Event{ID: uuid.NewString(), TenantID: "acme", CustomerID: cu.ID, Type: "Customer:Upserted",
					Payload: `{"type":"Customer:Upserted"}`, CreatedAt: now, DeliveredAt: &now}
				err = s.CreateAccount(ctx, &store.NewAccount{Customer: cu, Events: []*store.Event{ev},
					Consume: &store.ChallengeUse{ID: c.ID, At: now, CounterKey: "fail:" + email, Day: day}})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
