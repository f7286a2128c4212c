package admin

import (
	"context"
	"strconv"

	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// ListAuditEntries answers a page of the audit log the key may see.
func (s *Server) ListAuditEntries(ctx context.Context, req adminapi.ListAuditEntriesRequestObject) (adminapi.ListAuditEntriesResponseObject, error) {
	scope := callerOf(ctx).scope
	q := store.AuditQuery{Limit: pageSize(req.Params.Limit)}
	switch t := req.Params.TenantId; {
	case t != nil && !scope.Allows(*t):
		return nil, forbidden(*t)
	case t != nil:
		q.Tenants = []string{*t}
	case !scope.All:
		q.Tenants = scope.Tenants
	}
	after, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	if after != "" {
		if q.After, err = strconv.ParseInt(after, 10, 64); err != nil {
			return nil, badRequestError{detail: "the cursor is not one this API gave"}
		}
	}
	entries, err := s.Store.Audit(ctx, q)
	if err != nil {
		return nil, err
	}
	page := adminapi.AuditPage{Items: []adminapi.AuditEntry{}}
	for _, e := range entries {
		page.Items = append(page.Items, adminapi.AuditEntry{Id: e.Seq, At: e.At.UTC(), KeyId: e.KeyID, TenantId: e.TenantID,
			Action: e.Action, Target: e.Target, RequestId: e.RequestID})
	}
	if len(entries) == q.Limit {
		next := encodeCursor(strconv.FormatInt(entries[len(entries)-1].Seq, 10))
		page.NextCursor = &next
	}
	return adminapi.ListAuditEntries200JSONResponse(page), nil
}
