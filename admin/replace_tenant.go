package admin

import (
	"context"
	"errors"

	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// ReplaceTenant replaces a tenant's settings, if it is still at the If-Match version.
func (s *Server) ReplaceTenant(ctx context.Context, req adminapi.ReplaceTenantRequestObject) (adminapi.ReplaceTenantResponseObject, error) {
	doc, err := document(*req.Body)
	if err != nil {
		return nil, err
	}
	stored, err := s.Catalog.Get(ctx, req.TenantId)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownTenant(req.TenantId)
	} else if err != nil {
		return nil, err
	}
	if err := mayReachPrivate(ctx, doc, stored.Settings); err != nil {
		return nil, err
	}
	// A tag is judged against the tenant read above: a write goes over the
	// settings read there only, never over a later version that merely has
	// the tag's number (its creation is in the tag too).
	at := ifMatch(req.Params.IfMatch, stored)
	if at == (store.Stamp{}) && !callerOf(ctx).scope.All {
		// The check above judged the settings stored at this version of
		// this creation of the tenant: a key of some tenants writes over
		// them only (else a private block a key of every tenant removed
		// meanwhile, or left out of the tenant it created again, could be
		// sent back).
		at = stampOf(stored)
	}
	e, err := s.Catalog.Replace(ctx, req.TenantId, doc, at)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownTenant(req.TenantId)
	} else if err != nil {
		return nil, err
	}
	if err := s.changed(ctx, req.TenantId, "tenant.replace", req.TenantId); err != nil {
		return nil, err
	}
	s.warnLogSenders(ctx, req.TenantId, doc)
	body, err := tenantBody(e)
	if err != nil {
		return nil, err
	}
	return adminapi.ReplaceTenant200JSONResponse{Body: body, Headers: adminapi.ReplaceTenant200ResponseHeaders{ETag: etag(e)}}, nil
}
