package admin

import (
	"context"
	"errors"

	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// ListTenants answers a page of the tenants the key may see.
func (s *Server) ListTenants(ctx context.Context, req adminapi.ListTenantsRequestObject) (adminapi.ListTenantsResponseObject, error) {
	after, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit, scope := pageSize(req.Params.Limit), callerOf(ctx).scope
	// One more than a page: whether a tenant follows the page.
	var entries []*catalog.Entry
	if scope.All {
		entries, err = s.Catalog.List(ctx, after, limit+1)
	} else {
		entries, err = s.scoped(ctx, scope.Tenants, after, limit+1)
	}
	if err != nil {
		return nil, err
	}
	page := adminapi.TenantPage{Items: []adminapi.Tenant{}}
	for i, e := range entries {
		if i == limit {
			// Full, and a tenant follows: the next page starts after the
			// last one answered.
			next := encodeCursor(entries[i-1].ID)
			page.NextCursor = &next
			break
		}
		t, err := tenantBody(e)
		if err != nil {
			return nil, err
		}
		page.Items = append(page.Items, t)
	}
	return adminapi.ListTenants200JSONResponse(page), nil
}

// scoped reads up to limit of the tenants ids names (a scope's, sorted)
// after the id after, those that exist, one at a time: a key of some
// tenants reads its own tenants only, however many the catalog holds, and
// another tenant's row it could not read does not fail its list.
func (s *Server) scoped(ctx context.Context, ids []string, after string, limit int) ([]*catalog.Entry, error) {
	var out []*catalog.Entry
	for _, id := range ids {
		if id <= after {
			continue
		}
		e, err := s.Catalog.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // named by the scope before it exists, or deleted
		} else if err != nil {
			return nil, err
		}
		if out = append(out, e); len(out) == limit {
			break
		}
	}
	return out, nil
}
