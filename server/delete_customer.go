package server

import (
	"context"
	"errors"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/store"
)

// DeleteCustomer erases the token's own account.
func (s *Server) DeleteCustomer(ctx context.Context, _ api.DeleteCustomerRequestObject) (api.DeleteCustomerResponseObject, error) {
	claims, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	if claims == nil {
		return nil, unauthorized(nil)
	}
	err = s.eraser.Erase(ctx, requestTenant(ctx), claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, account.ErrUnknownCaller // erased meanwhile: the token opens nothing
	} else if err != nil {
		return nil, err
	}
	return api.DeleteCustomer204Response{}, nil
}
