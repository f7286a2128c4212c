package server

import (
	"context"

	"github.com/google/uuid"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/gen/api"
)

// UpsertCustomer updates the caller's account, or creates one for an
// anonymous caller (a challenge when the identifier is taken).
func (s *Server) UpsertCustomer(ctx context.Context, req api.UpsertCustomerRequestObject) (api.UpsertCustomerResponseObject, error) {
	t := requestTenant(ctx)
	var flow *flows.Flow
	if req.Params.Flow != nil && *req.Params.Flow != "" {
		f, err := t.Flows.Lookup(*req.Params.Flow)
		if err != nil {
			return nil, err
		}
		flow = f
	}
	claims, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	in, err := inputOf(req.JSONBody)
	if err != nil {
		return nil, err
	}
	var res account.Result
	if claims != nil {
		res, err = s.accounts.Update(ctx, t, claims.Subject, claims.IssuedAt, claims.KeyID, in, flow)
	} else {
		res, err = s.accounts.Create(ctx, t, in, flow)
	}
	if err != nil {
		return nil, err
	}
	if res.Challenge != nil {
		return api.UpsertCustomer202JSONResponse{ChallengeIssuedJSONResponse: challengeBody(res.Challenge)}, nil
	}
	c, err := customerOf(res.Customer)
	if err != nil {
		return nil, err
	}
	return customerJSON(c), nil
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
