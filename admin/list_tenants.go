package admin

import (
	"context"

	"github.com/customerd/customerd/gen/adminapi"
)

// ListTenants answers a page of the tenants the key may see.
func (s *Server) ListTenants(ctx context.Context, req adminapi.ListTenantsRequestObject) (adminapi.ListTenantsResponseObject, error) {
	after, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit, scope := pageSize(req.Params.Limit), callerOf(ctx).scope
	page := adminapi.TenantPage{Items: []adminapi.Tenant{}}
	for {
		entries, err := s.Catalog.List(ctx, after, limit)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if len(page.Items) == limit {
				// Full, and a tenant follows: the next page starts after the
				// last one answered.
				next := encodeCursor(after)
				page.NextCursor = &next
				return adminapi.ListTenants200JSONResponse(page), nil
			}
			after = e.ID
			if !scope.Allows(e.ID) {
				continue
			}
			t, err := tenantBody(e)
			if err != nil {
				return nil, err
			}
			page.Items = append(page.Items, t)
		}
		if len(entries) < limit {
			return adminapi.ListTenants200JSONResponse(page), nil // the last page
		}
	}
}
