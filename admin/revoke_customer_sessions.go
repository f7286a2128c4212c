package admin

import (
	"context"
	"errors"

	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// RevokeCustomerSessions refuses every token the customer holds from now on.
func (s *Server) RevokeCustomerSessions(ctx context.Context, req adminapi.RevokeCustomerSessionsRequestObject) (adminapi.RevokeCustomerSessionsResponseObject, error) {
	if _, err := s.tenant(ctx, req.TenantId); err != nil {
		return nil, err
	}
	err := s.Store.RevokeSessions(ctx, req.TenantId, req.CustomerId, s.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownCustomer(req.CustomerId)
	} else if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, req.TenantId, "customer.revoke-sessions", req.CustomerId); err != nil {
		return nil, err
	}
	return adminapi.RevokeCustomerSessions204Response{}, nil
}
