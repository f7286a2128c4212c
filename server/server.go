// Package server is customerd's HTTP adapter: the strict-server
// implementation of openapi.yaml, its middleware, and the one error path that
// turns every error into an RFC 9457 problem. It decodes and authorises; the
// account, challenge, provider and token rooms decide.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/signin"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
	"github.com/customerd/customerd/token"
	"github.com/customerd/customerd/token/jwtcheck"
)

// Tenants finds the tenant a request names; an error wrapping
// store.ErrNotFound when there is none. The tenant found is the one the
// whole request is served with, whatever changes meanwhile.
type Tenants interface {
	Tenant(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Store is what the HTTP adapter itself needs of the database: readiness
// and the Idempotency-Key's stored answers.
type Store interface {
	Ping(ctx context.Context) error
	BeginIdempotent(ctx context.Context, r *store.IdempotentRequest) (*store.IdempotentRequest, error)
	FinishIdempotent(ctx context.Context, r *store.IdempotentRequest, status int, contentType string, body []byte, customer string) error
	ForgetIdempotent(ctx context.Context, r *store.IdempotentRequest) error
	TakeOverIdempotent(ctx context.Context, r *store.IdempotentRequest, abandonedBefore, expiredBefore time.Time) (bool, error)
}

// Eraser erases a customer's personal data (the privacy room).
type Eraser interface {
	Erase(ctx context.Context, t *tenant.Tenant, id string) error
}

// Options are the parts the server is wired from.
type Options struct {
	Tenants  Tenants
	Eraser   Eraser
	Store    Store
	Accounts *account.Service
	SignIn   *signin.Service
	Tokens   *token.Service
	Logger   *slog.Logger
	// TrustedProxies may name the client in X-Forwarded-For; none: the TCP peer is the client.
	TrustedProxies []*net.IPNet
	// Metrics receives the HTTP metrics (a registry of its own when nil); the
	// metrics listener serves it (Metrics), never the API's listener.
	Metrics *prometheus.Registry
	// Spec is the contract requests are validated against (nil: openapi.yaml
	// as generated into gen/api).
	Spec *openapi3.T
}

// Server implements the contract.
type Server struct {
	tenants  Tenants
	eraser   Eraser
	store    Store
	accounts *account.Service
	signin   *signin.Service
	tokens   *token.Service
	log      *slog.Logger
	metrics  prometheus.Gatherer // nil on the API's listener
}

var _ api.StrictServerInterface = (*Server)(nil)

// upsertPath is the only route whose invalid body fields answer 412.
const upsertPath = "/api/:tenantId/customer"

// New returns the HTTP handler of customerd.
func New(opts Options) (*echo.Echo, error) {
	s := &Server{tenants: opts.Tenants, eraser: opts.Eraser, store: opts.Store, accounts: opts.Accounts, signin: opts.SignIn, tokens: opts.Tokens, log: opts.Logger}
	spec := opts.Spec
	if spec == nil {
		var err error
		if spec, err = api.GetSpec(); err != nil {
			return nil, err
		}
	}
	forValidation(spec)
	openapi3filter.RegisterBodyDecoder("text/json", openapi3filter.JSONBodyDecoder)

	reg := opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(reg)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = clientIP(opts.TrustedProxies)
	e.JSONSerializer = keptBody{}
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		p := toProblem(err)
		if p.Status == http.StatusPreconditionFailed && c.Path() != upsertPath {
			p = invalidFields(http.StatusBadRequest, p.Errors) // authenticate has no 412
		}
		if werr := writeProblem(c, s.log, p); werr != nil {
			s.log.Debug("write problem", "error", werr.Error())
		}
	}
	check, err := validate(spec)
	if err != nil {
		return nil, err
	}
	e.Pre(docsSlash)
	e.Use(begin, accessLog(s.log, m), recoverer(s.log), s.tenantOf, readBody, check)
	e.Use(s.idempotent)
	// Handlers return errors; the Echo error handler turns each into a problem.
	strict := api.NewStrictHandler(s, nil)
	api.RegisterHandlers(withHead{e}, strict)
	return e, nil
}

// withHead registers every GET operation for HEAD too: HEAD is GET without
// the body (RFC 9110 9.3.2), which net/http drops.
type withHead struct{ *echo.Echo }

func (r withHead) GET(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	r.Echo.HEAD(path, h, m...)
	return r.Echo.GET(path, h, m...)
}

// Lengths are the maxLength of the contract's Customer text fields, by name:
// what the account rules keep of what does not come through the validator
// (a provider's claims).
func Lengths(spec *openapi3.T) map[string]int {
	out := map[string]int{}
	if s := spec.Components.Schemas["Customer"]; s != nil && s.Value != nil {
		for name, p := range s.Value.Properties {
			if p.Value != nil && p.Value.MaxLength != nil {
				out[name] = int(*p.Value.MaxLength)
			}
		}
	}
	return out
}

// docsSlash sends /docs/, which people type, to /docs, where the page's
// relative URLs resolve (relatively itself, for a service under a path prefix).
func docsSlash(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r := c.Request(); r.URL.Path == "/docs/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			return c.Redirect(http.StatusMovedPermanently, "../docs")
		}
		return next(c)
	}
}

// Metrics is the handler of the metrics listener: GET /metrics (the
// getMetrics operation) from g, and a problem for anything else.
func Metrics(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	s := &Server{metrics: g, log: log}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if werr := writeProblem(c, log, toProblem(err)); werr != nil {
			log.Debug("write problem", "error", werr.Error())
		}
	}
	w := &api.ServerInterfaceWrapper{Handler: api.NewStrictHandler(s, nil)}
	e.GET("/metrics", w.GetMetrics)
	return e
}

// requestTenant is the tenant the middleware resolved for this request.
func requestTenant(ctx context.Context) *tenant.Tenant { return fromContext(ctx).tenant }

// bearer returns the token of an "Authorization: Bearer" header; ok is false
// when there is no such header, and err set when there is one but it is malformed.
func bearer(header string) (tok string, ok bool, err error) {
	if header == "" {
		return "", false, nil
	}
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, errors.New("authorization: not a bearer token")
	}
	tok = strings.TrimSpace(rest)
	if tok == "" || strings.ContainsAny(tok, " \t,") {
		return "", true, errors.New("authorization: empty or malformed bearer token")
	}
	return tok, true, nil
}

// caller verifies the request's bearer token and reads its account, which
// must still accept it (sessions not revoked since); nil claims when there is
// no token.
func (s *Server) caller(ctx context.Context) (*token.Claims, error) {
	r := fromContext(ctx)
	if !r.verified {
		r.claims, r.claimsErr = s.verifyCaller(ctx, r.auth)
		r.verified = true
	}
	return r.claims, r.claimsErr
}

func (s *Server) verifyCaller(ctx context.Context, auth string) (*token.Claims, error) {
	tok, ok, err := bearer(auth)
	if !ok {
		return nil, nil
	}
	if err != nil {
		return nil, unauthorized(err)
	}
	claims, err := s.tokens.Verify(ctx, requestTenant(ctx).ID, tok)
	if err != nil {
		if errors.Is(err, token.ErrInvalid) {
			return nil, unauthorized(err)
		}
		return nil, err
	}
	c, err := s.accounts.Customer(ctx, requestTenant(ctx), claims.Subject)
	if err != nil {
		return nil, err
	}
	if revoked(c, claims) {
		return nil, unauthorized(errors.New("the token was issued before its sessions were revoked"))
	}
	if s.accounts.Now().After(expires(requestTenant(ctx), claims).Add(jwtcheck.Skew)) {
		return nil, unauthorized(errors.New("the token is older than the tenant's token lifetime"))
	}
	fromContext(ctx).customer = c
	return claims, nil
}

// expires is when the tenant's token ends: its exp, or sooner its iat plus
// the tenant's tokenLifetime, since a tenant that shortened it means it for
// the tokens issued before too. Refused jwtcheck.Skew after either, as exp
// is, so that the skew stays a tolerance between clocks, never the token's
// life: what GET /customer answers as expiresAt, planning a refresh.
func expires(t *tenant.Tenant, claims *token.Claims) time.Time {
	if t.TokenLifetime > 0 && claims.IssuedAt.Add(t.TokenLifetime).Before(claims.ExpiresAt) {
		return claims.IssuedAt.Add(t.TokenLifetime)
	}
	return claims.ExpiresAt
}

// revoked reports whether the account's sessions were revoked since the token
// was issued. iat counts whole seconds: a token of the revocation's second is
// refused too, whether it came before or after.
func revoked(c *store.Customer, claims *token.Claims) bool {
	return c.SessionsRevokedAt != nil && !claims.IssuedAt.After(c.SessionsRevokedAt.Truncate(time.Second))
}

// callerAccount is the account of the request's token, as caller read it.
func callerAccount(ctx context.Context) *store.Customer { return fromContext(ctx).customer }
