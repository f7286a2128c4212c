package admin

import (
	"context"
	"net/http"

	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/server"
)

// GetCustomerById answers one customer of a tenant.
func (s *Server) GetCustomerById(ctx context.Context, req adminapi.GetCustomerByIdRequestObject) (adminapi.GetCustomerByIdResponseObject, error) {
	c, err := s.customer(ctx, req.TenantId, req.CustomerId)
	if err != nil {
		return nil, err
	}
	body, err := customerBody(c)
	if err != nil {
		return nil, err
	}
	return customerJSON(body), nil
}

// customerJSON answers a customer with its free-form properties: the
// generated response type, a type of its own, would drop them (it has not
// adminapi.Customer's MarshalJSON).
type customerJSON adminapi.Customer

func (c customerJSON) VisitGetCustomerByIdResponse(w http.ResponseWriter) error {
	return server.WriteJSON(w, http.StatusOK, adminapi.Customer(c))
}
