package admin

import (
	"context"
	"errors"

	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// DeleteTenant stops serving a tenant; its data stays.
func (s *Server) DeleteTenant(ctx context.Context, req adminapi.DeleteTenantRequestObject) (adminapi.DeleteTenantResponseObject, error) {
	var at store.Stamp
	if req.Params.IfMatch != nil {
		// The tag names the tenant as read here; the write checks its
		// version and creation.
		stored, err := s.Catalog.Get(ctx, req.TenantId)
		if errors.Is(err, store.ErrNotFound) {
			return nil, unknownTenant(req.TenantId)
		} else if err != nil {
			return nil, err
		}
		at = ifMatch(req.Params.IfMatch, stored)
	}
	err := s.Catalog.Delete(ctx, req.TenantId, at)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownTenant(req.TenantId)
	} else if err != nil {
		return nil, err
	}
	if err := s.changed(ctx, req.TenantId, "tenant.delete", req.TenantId); err != nil {
		return nil, err
	}
	return adminapi.DeleteTenant204Response{}, nil
}
