package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
	"github.com/customerd/customerd/token"
)

// AuthenticateCustomer runs the named provider: a token, or a challenge first.
func (s *Server) AuthenticateCustomer(ctx context.Context, req api.AuthenticateCustomerRequestObject) (api.AuthenticateCustomerResponseObject, error) {
	t := requestTenant(ctx)
	name := ""
	if req.Params.Provider != nil {
		name = *req.Params.Provider
	}
	p, ok := t.Providers[name]
	if !ok {
		enabled := slices.Sorted(maps.Keys(t.Providers))
		if name == "" {
			return nil, badRequest(fmt.Sprintf("provider is required, have [%s]", strings.Join(enabled, " ")))
		}
		return nil, badRequest(fmt.Sprintf("unknown provider %q, have [%s]", name, strings.Join(enabled, " ")))
	}
	body := req.JSONBody
	if body == nil {
		return nil, badRequest("the request body must be a JSON object")
	}
	var (
		c   *store.Customer
		amr []string
		err error
	)
	switch p := p.(type) {
	case providers.Challenger:
		req := providers.CodeRequest{Email: body.Email, PhoneNumber: body.PhoneNumber, ChallengeID: body.ChallengeId, Code: body.Code}
		if err := p.Check(req); err != nil {
			return nil, err
		}
		k, err := contact(t, req)
		if err != nil {
			return nil, err
		}
		if req.Code == nil {
			iss, err := s.signin.Start(ctx, t, k)
			if err != nil {
				return nil, err
			}
			return api.AuthenticateCustomer202JSONResponse{ChallengeIssuedJSONResponse: challengeBody(iss)}, nil
		}
		code := challenge.Code{Destination: k.Value, Code: *req.Code}
		if req.ChallengeID != nil {
			code.ChallengeID = strings.TrimSpace(*req.ChallengeID)
		}
		c, amr, err = s.signin.Complete(ctx, t, code)
		if err != nil {
			return nil, err
		}
	case providers.Verifier:
		r := fromContext(ctx)
		// The body as sent (readBody checked it is JSON without a member
		// two parsers could read differently; the validator refused null,
		// and binding the generated union any other value but an object):
		// a custom provider signs it.
		id, err := p.Authenticate(providers.WithClientAddress(ctx, r.remote), r.body)
		if err != nil {
			return nil, err
		}
		if c, err = s.signin.SignIn(ctx, t, id); err != nil {
			return nil, err
		}
		amr = id.AMR
	}
	tok, err := s.tokens.Issue(ctx, t.ID, token.Claims{Subject: c.ID, Provider: name, AMR: amr}, t.TokenLifetime)
	if err != nil {
		return nil, err
	}
	if prefersText(fromContext(ctx).accept) {
		return api.AuthenticateCustomer200TextResponse(tok), nil
	}
	return api.AuthenticateCustomer200JSONResponse(tok), nil
}

// contact is the normalised email or phone number a code request names
// (none for a challenge id).
func contact(t *tenant.Tenant, req providers.CodeRequest) (account.Contact, error) {
	switch {
	case req.Email != nil:
		email, err := account.NormaliseEmail(*req.Email)
		if err != nil {
			return account.Contact{}, &account.ValidationError{Fields: map[string][]string{"email": {err.Error()}}}
		}
		return account.EmailContact(email), nil
	case req.PhoneNumber != nil:
		phone, err := account.NormalisePhone(*req.PhoneNumber, t.PhoneRegion)
		if err != nil {
			return account.Contact{}, &account.ValidationError{Fields: map[string][]string{"phoneNumber": {err.Error()}}}
		}
		return account.PhoneContact(phone), nil
	}
	return account.Contact{}, nil
}

// prefersText reports whether Accept names text/plain and ranks it above
// JSON (a tie goes to JSON, the contract's default).
func prefersText(accept string) bool {
	ranges := acceptRanges(accept)
	tq, named := quality(ranges, "text/plain")
	if !named || tq == 0 {
		return false
	}
	for _, mt := range []string{"application/json", "text/json"} {
		if q, named := quality(ranges, mt); named && q >= tq {
			return false
		}
	}
	return true
}
