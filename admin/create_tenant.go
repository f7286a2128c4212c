package admin

import (
	"context"

	"github.com/customerd/customerd/gen/adminapi"
)

// CreateTenant creates a tenant, which serves at once.
func (s *Server) CreateTenant(ctx context.Context, req adminapi.CreateTenantRequestObject) (adminapi.CreateTenantResponseObject, error) {
	id := req.Body.Id
	if !callerOf(ctx).scope.Allows(id) {
		return nil, forbidden(id)
	}
	doc, err := document(req.Body.Settings)
	if err != nil {
		return nil, err
	}
	if err := mayReachPrivate(ctx, doc, nil); err != nil {
		return nil, err
	}
	e, err := s.Catalog.Create(ctx, id, doc)
	if err != nil {
		return nil, err
	}
	if err := s.changed(ctx, id, "tenant.create", id); err != nil {
		return nil, err
	}
	s.warnLogSenders(ctx, id, doc)
	body, err := tenantBody(e)
	if err != nil {
		return nil, err
	}
	return adminapi.CreateTenant201JSONResponse{Body: body, Headers: adminapi.CreateTenant201ResponseHeaders{
		ETag: etag(e), Location: "/admin/tenants/" + id}}, nil
}

// changed records a change of tenant id in the audit log and tells this
// replica's live set, so that the next request here serves the change.
func (s *Server) changed(ctx context.Context, id, action, target string) error {
	if err := s.audit(ctx, id, action, target); err != nil {
		return err
	}
	return s.Changed(ctx, id)
}
