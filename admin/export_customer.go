package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// ExportCustomer answers everything held about one customer, as one document.
func (s *Server) ExportCustomer(ctx context.Context, req adminapi.ExportCustomerRequestObject) (adminapi.ExportCustomerResponseObject, error) {
	if _, err := s.tenant(ctx, req.TenantId); err != nil {
		return nil, err
	}
	r, err := s.Privacy.Export(ctx, req.TenantId, req.CustomerId)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownCustomer(req.CustomerId)
	} else if err != nil {
		return nil, err
	}
	c, err := customerBody(r.Customer)
	if err != nil {
		return nil, err
	}
	doc := adminapi.CustomerExport{ExportedAt: s.Now().UTC(), TenantId: req.TenantId, Customer: c,
		Identities: []adminapi.LinkedIdentity{}, Events: []adminapi.ExportedEvent{}, Challenges: []adminapi.ExportedChallenge{}}
	for _, id := range r.Identities {
		doc.Identities = append(doc.Identities, adminapi.LinkedIdentity{Provider: id.Provider, Subject: id.Subject, LinkedAt: id.CreatedAt.UTC()})
	}
	for _, e := range r.Events {
		// Its numbers with their digits, as webhooks received them.
		var payload map[string]any
		d := json.NewDecoder(strings.NewReader(e.Payload))
		d.UseNumber()
		if err := d.Decode(&payload); err != nil {
			return nil, fmt.Errorf("event %s: %w", e.ID, err)
		}
		doc.Events = append(doc.Events, adminapi.ExportedEvent{Id: e.ID, Type: e.Type, OccurredAt: e.CreatedAt.UTC(),
			DeliveredAt: utc(e.DeliveredAt), Payload: payload})
	}
	for _, ch := range r.Challenges {
		// Its metadata: never the code's hash, nor the change it held, nor
		// whether it was withheld (a contact change to an address another
		// account proved shows as one to a free address: the address asked).
		to, _ := challenge.Withheld(ch.Destination)
		doc.Challenges = append(doc.Challenges, adminapi.ExportedChallenge{Id: ch.ID, Channel: ch.Channel, Destination: to,
			CreatedAt: ch.CreatedAt.UTC(), ExpiresAt: ch.ExpiresAt.UTC(), ConsumedAt: utc(ch.ConsumedAt),
			Attempts: ch.Attempts, MaxAttempts: ch.MaxAttempts})
	}
	return adminapi.ExportCustomer200JSONResponse{Body: doc, Headers: adminapi.ExportCustomer200ResponseHeaders{
		ContentDisposition: `attachment; filename="customer-` + req.CustomerId + `.json"`}}, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
