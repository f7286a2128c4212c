package server

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/gen/api"
)

// UpsertCustomer updates the caller's account, or creates one for an
// anonymous caller (a challenge when the identifier is taken).
func (s *Server) UpsertCustomer(ctx context.Context, req api.UpsertCustomerRequestObject) (api.UpsertCustomerResponseObject, error) {
	if req.Params.Flow != nil && *req.Params.Flow != "" {
		return nil, badRequest(fmt.Sprintf("unknown flow %q, have []", *req.Params.Flow))
	}
	t := tenant(ctx).Tenant
	claims, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	in, err := account.Decode(fromContext(ctx).body)
	if err != nil {
		return nil, err
	}
	if claims != nil {
		c, err := s.accounts.Update(ctx, t, claims.Subject, in)
		if err != nil {
			return nil, err
		}
		return customerJSON(account.View(c))
	}
	c, ch, err := s.accounts.Create(ctx, t, in)
	if err != nil {
		return nil, err
	}
	if ch != nil {
		return api.UpsertCustomer202JSONResponse{ChallengeIssuedJSONResponse: challengeBody(ch)}, nil
	}
	return customerJSON(account.View(c))
}

func challengeBody(ch *challenge.Issued) api.ChallengeIssuedJSONResponse {
	left := ch.AttemptsLeft
	return api.ChallengeIssuedJSONResponse{
		ChallengeId:  uuid.MustParse(ch.ID),
		Channel:      api.ChallengeChannel(ch.Channel),
		Destination:  ch.Destination,
		ExpiresAt:    ch.ExpiresAt.UTC(),
		AttemptsLeft: &left,
	}
}
