package admin

import (
	"context"
	"errors"

	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// GetTenant answers a tenant's settings, without its secrets.
func (s *Server) GetTenant(ctx context.Context, req adminapi.GetTenantRequestObject) (adminapi.GetTenantResponseObject, error) {
	e, err := s.Catalog.Get(ctx, req.TenantId)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownTenant(req.TenantId)
	} else if err != nil {
		return nil, err
	}
	body, err := tenantBody(e)
	if err != nil {
		return nil, err
	}
	return adminapi.GetTenant200JSONResponse{Body: body, Headers: adminapi.GetTenant200ResponseHeaders{ETag: etag(e)}}, nil
}
