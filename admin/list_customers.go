package admin

import (
	"context"
	"strings"
	"time"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// ListCustomers answers a page of a tenant's customers, or finds one by identifier.
func (s *Server) ListCustomers(ctx context.Context, req adminapi.ListCustomersRequestObject) (adminapi.ListCustomersResponseObject, error) {
	t, err := s.tenant(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	q := store.CustomerQuery{TenantID: req.TenantId, Limit: pageSize(req.Params.Limit) + 1}
	p := req.Params
	if p.Email != nil {
		if q.Email, err = account.NormaliseEmail(*p.Email); err != nil {
			return nil, badRequestError{detail: "email: " + err.Error()}
		}
	}
	if p.PhoneNumber != nil {
		if q.Phone, err = account.NormalisePhone(*p.PhoneNumber, t.PhoneRegion); err != nil {
			return nil, badRequestError{detail: "phoneNumber: " + err.Error()}
		}
	}
	if p.UpdatedSince != nil {
		q.UpdatedSince = *p.UpdatedSince
		if q.UpdatedSince.UTC().Year() > 9999 {
			// After every time a database holds (SQLite compares times as
			// text, where the year 10000 sorts before every other).
			return adminapi.ListCustomers200JSONResponse(adminapi.CustomerPage{Items: []adminapi.Customer{}}), nil
		}
	}
	after, err := decodeCursor(p.Cursor)
	if err != nil {
		return nil, err
	}
	if after != "" {
		at, id, ok := strings.Cut(after, "|")
		if q.AfterUpdated, err = time.Parse(time.RFC3339Nano, at); err != nil || !ok || id == "" || q.AfterUpdated.UTC().Year() > 9999 {
			return nil, badRequestError{detail: "the cursor is not one this API gave"}
		}
		q.AfterID = id
	}
	found, err := s.Store.Customers(ctx, q)
	if err != nil {
		return nil, err
	}
	page := adminapi.CustomerPage{Items: []adminapi.Customer{}}
	for i := range found {
		if len(page.Items) == q.Limit-1 {
			last := found[i-1]
			next := encodeCursor(last.UpdatedAt.UTC().Format(time.RFC3339Nano) + "|" + last.ID)
			page.NextCursor = &next
			break
		}
		c, err := customerBody(&found[i])
		if err != nil {
			return nil, err
		}
		page.Items = append(page.Items, c)
	}
	return adminapi.ListCustomers200JSONResponse(page), nil
}
