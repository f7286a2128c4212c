package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/customerd/customerd/store"

	"github.com/customerd/customerd/gen/adminapi"
)

// CreateTenant creates a tenant, which serves at once.
func (s *Server) CreateTenant(ctx context.Context, req adminapi.CreateTenantRequestObject) (adminapi.CreateTenantResponseObject, error) {
	id := req.Body.Id
	if !callerOf(ctx).scope.Allows(id) {
		return nil, forbidden(id)
	}
	if err := s.mayRestore(ctx, id); err != nil {
		return nil, err
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

// mayRestore refuses a key of some tenants the creation of an id whose
// deleted tenant left customers in the database: creating it serves them
// again, their tokens and their data, and a scope may name an id before it
// exists (a brand given the id of one that left) or outlive the tenant it
// was made for. Giving a deleted tenant's shoppers back is the operator's
// decision, as reaching private networks is. No customer can be written
// between the check and the creation: the id serves nothing until then.
func (s *Server) mayRestore(ctx context.Context, id string) error {
	if callerOf(ctx).scope.All {
		return nil
	}
	left, err := s.Store.Customers(ctx, store.CustomerQuery{TenantID: id, Limit: 1})
	if err != nil {
		return err
	}
	if len(left) == 0 {
		return nil
	}
	// A tenant serving now is a taken id, as Create would answer.
	if _, err := s.Catalog.Get(ctx, id); err == nil {
		return store.ErrConflict
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return forbiddenError{detail: fmt.Sprintf("tenant %q was deleted and its customers are still stored: "+
		"only a key of every tenant may create it again, which serves them again", id)}
}
