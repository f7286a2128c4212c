package admin

import (
	"context"
	"errors"

	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// EraseCustomer removes a customer's personal data for good.
func (s *Server) EraseCustomer(ctx context.Context, req adminapi.EraseCustomerRequestObject) (adminapi.EraseCustomerResponseObject, error) {
	t, err := s.tenant(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	err = s.Privacy.Erase(ctx, t, req.CustomerId)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownCustomer(req.CustomerId)
	} else if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, req.TenantId, "customer.erase", req.CustomerId); err != nil {
		return nil, err
	}
	return adminapi.EraseCustomer204Response{}, nil
}
