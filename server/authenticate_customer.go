package server

import (
	"context"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"

	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/token"
)

// AuthenticateCustomer runs the named provider: a token, or a challenge first.
func (s *Server) AuthenticateCustomer(ctx context.Context, req api.AuthenticateCustomerRequestObject) (api.AuthenticateCustomerResponseObject, error) {
	t := tenant(ctx)
	name := ""
	if req.Params.Provider != nil {
		name = *req.Params.Provider
	}
	p, ok := t.Providers[name]
	if !ok {
		enabled := make([]string, 0, len(t.Providers))
		for n := range t.Providers {
			enabled = append(enabled, n)
		}
		sort.Strings(enabled)
		if name == "" {
			return nil, badRequest(fmt.Sprintf("provider is required, have [%s]", strings.Join(enabled, " ")))
		}
		return nil, badRequest(fmt.Sprintf("unknown provider %q, have [%s]", name, strings.Join(enabled, " ")))
	}
	out, err := p.Authenticate(ctx, t.Tenant, fromContext(ctx).body)
	if err != nil {
		return nil, err
	}
	if out.Challenge != nil {
		return api.AuthenticateCustomer202JSONResponse{ChallengeIssuedJSONResponse: challengeBody(out.Challenge)}, nil
	}
	c, err := s.accounts.SignIn(ctx, t.Tenant, *out.Identity)
	if err != nil {
		return nil, err
	}
	tok, err := s.tokens.Issue(ctx, t.ID, token.Claims{Subject: c.ID, Provider: out.Identity.Provider, AMR: out.Identity.AMR}, t.TokenLifetime)
	if err != nil {
		return nil, err
	}
	if prefersText(fromContext(ctx).accept) {
		return api.AuthenticateCustomer200TextResponse(tok), nil
	}
	return api.AuthenticateCustomer200JSONResponse(tok), nil
}

// prefersText reports whether Accept ranks text/plain above JSON.
func prefersText(accept string) bool {
	best, bestQ := "", -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if (mt == "text/plain" || mt == "application/json" || mt == "text/json") && q > bestQ {
			best, bestQ = mt, q
		}
	}
	return best == "text/plain" && bestQ > 0
}
