package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

// tenant is the live tenant of a customer route.
func (s *Server) tenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	t, err := s.Tenants.Tenant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownTenant(id)
	}
	return t, err
}

// customer reads a live customer of tenant.
func (s *Server) customer(ctx context.Context, tenant, id string) (*store.Customer, error) {
	if _, err := s.tenant(ctx, tenant); err != nil {
		return nil, err
	}
	c, err := s.Store.Customer(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownCustomer(id)
	}
	return c, err
}

func unknownCustomer(id string) error {
	return notFoundError{what: fmt.Sprintf("unknown customer %q", id)}
}

// customerBody is an account as the customer API shows it, with when its
// sessions were revoked.
func customerBody(c *store.Customer) (adminapi.Customer, error) {
	v := account.View(c)
	if c.SessionsRevokedAt != nil {
		v["sessionsRevokedAt"] = c.SessionsRevokedAt.UTC().Format(time.RFC3339Nano)
	}
	var out adminapi.Customer
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	// The generated decoder reads the free-form properties' numbers as
	// float64 (a member number 12345678901234567890123 came out
	// 1.2345678901234568e+22): they are the view's own values, with the
	// digits the store kept (json.Number).
	for name := range out.AdditionalProperties {
		out.AdditionalProperties[name] = v[name]
	}
	return out, err
}
