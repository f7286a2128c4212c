package server

import (
	"context"

	"github.com/customerd/customerd/gen/api"
)

// GetCustomer answers the profile of the token's customer, with what the token says.
func (s *Server) GetCustomer(ctx context.Context, _ api.GetCustomerRequestObject) (api.GetCustomerResponseObject, error) {
	claims, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	if claims == nil {
		return nil, unauthorized(nil)
	}
	c, err := customerOf(callerAccount(ctx))
	if err != nil {
		return nil, err
	}
	// What the token says: who signed the shopper in, when, until when (the
	// tenant's lifetime may end it before its exp).
	issued, until := claims.IssuedAt.UTC(), expires(requestTenant(ctx), claims).UTC()
	c.Provider, c.AuthenticatedAt, c.ExpiresAt = &claims.Provider, &issued, &until
	return customerJSON(c), nil
}
