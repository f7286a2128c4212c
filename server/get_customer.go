package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/gen/api"
)

// GetCustomer answers the profile of the token's customer, with what the token says.
func (s *Server) GetCustomer(ctx context.Context, _ api.GetCustomerRequestObject) (api.GetCustomerResponseObject, error) {
	claims, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	if claims == nil {
		return nil, unauthorized(nil)
	}
	v := account.View(callerAccount(ctx))
	v["provider"] = claims.Provider
	v["authenticatedAt"] = claims.IssuedAt.UTC().Format(time.RFC3339)
	v["expiresAt"] = claims.ExpiresAt.UTC().Format(time.RFC3339)
	return customerJSON(v)
}

// customerBody is an account encoded once and written as is.
type customerBody []byte

func customerJSON(v map[string]any) (customerBody, error) {
	return json.Marshal(v)
}

func (b customerBody) write(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

func (b customerBody) VisitGetCustomerResponse(w http.ResponseWriter) error    { return b.write(w) }
func (b customerBody) VisitUpsertCustomerResponse(w http.ResponseWriter) error { return b.write(w) }
