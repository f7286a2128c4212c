// Package admin is the administration API's HTTP adapter: the strict-server
// implementation of admin.openapi.yaml, served on its own listener, its admin
// API keys and their scopes, and the audit log of every change made through
// it. The catalog, privacy and store rooms decide.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	oapimw "github.com/oapi-codegen/echo-middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/privacy"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/server"
	"github.com/customerd/customerd/store"
)

// Store is the persistence the admin API reads and writes directly.
type Store interface {
	AdminKey(ctx context.Context, id string) (*store.AdminKey, error)
	AddAudit(ctx context.Context, e *store.AuditEntry) error
	Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
	Customer(ctx context.Context, tenant, id string) (*store.Customer, error)
	Customers(ctx context.Context, q store.CustomerQuery) ([]store.Customer, error)
	RevokeSessions(ctx context.Context, tenant, id string, at time.Time) error
}

// Options are the parts the admin server is wired from.
type Options struct {
	Store   Store
	Catalog *catalog.Catalog
	// Tenants are the tenants this replica serves: the customer routes judge
	// identifiers by their tenant's rules.
	Tenants server.Tenants
	// Changed tells this replica at once that a tenant changed; the others
	// learn it from the database.
	Changed func(ctx context.Context, id string) error
	Privacy *privacy.Service
	Logger  *slog.Logger
	Now     func() time.Time
}

// Server implements the administration contract.
type Server struct {
	Options
}

var _ adminapi.StrictServerInterface = (*Server)(nil)

// publicPaths answer without a key: the contract and its reference.
var publicPaths = map[string]bool{"/openapi.yaml": true, "/openapi.json": true, "/docs": true, "/docs/redoc.standalone.js": true}

// New returns the HTTP handler of the administration API.
func New(o Options) (*echo.Echo, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{Options: o}
	spec, err := adminapi.GetSpec()
	if err != nil {
		return nil, err
	}
	spec.Servers = nil
	// As the customer API's validator does (server.New): the request schemas
	// judge alike read as 3.0, which kin-openapi compiles once.
	spec.OpenAPI = "3.0.3"

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = server.ErrorHandler(o.Logger, problemOf)
	e.Use(server.Edge(o.Logger, prometheus.NewRegistry())...)
	e.Use(s.authenticate)
	e.Use(oapimw.OapiRequestValidatorWithOptions(spec, &oapimw.Options{
		Options: openapi3filter.Options{
			AuthenticationFunc:         openapi3filter.NoopAuthenticationFunc,
			ExcludeReadOnlyValidations: true,
			MultiError:                 true,
		},
		SilenceServersWarning: true,
		MultiErrorHandler: func(me openapi3.MultiError) *echo.HTTPError {
			return &echo.HTTPError{Code: http.StatusBadRequest, Message: "invalid request", Internal: me}
		},
	}))
	adminapi.RegisterHandlers(e, adminapi.NewStrictHandler(s, nil))
	return e, nil
}

type ctxKey struct{}

func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(ctxKey{}).(*caller)
	if c == nil {
		return &caller{} // never reached past authenticate; a zero scope allows nothing
	}
	return c
}

// authenticate checks the admin key of every call but the documentation's,
// and the scope of every call naming a tenant in its path, before anything
// else looks at the request: an unknown tenant outside the scope is a 403
// like a known one, so a key learns nothing of other tenants.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == "" || publicPaths[c.Path()] {
			return next(c) // no such route (404), or the documentation
		}
		req := c.Request()
		who, err := authenticate(req.Context(), s.Store.AdminKey, req.Header.Get(echo.HeaderAuthorization))
		if err != nil {
			return err
		}
		if err := plainText(c); err != nil {
			return err
		}
		if t := c.Param("tenantId"); t != "" && !who.scope.Allows(t) {
			return forbidden(t)
		}
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), ctxKey{}, who)))
		return next(c)
	}
}

// plainText refuses a path parameter or a query value that is not UTF-8 or
// holds a NUL: PostgreSQL's text cannot hold either, so such a value reached
// the database as an error there (500) and as a miss on SQLite.
func plainText(c echo.Context) error {
	values := c.ParamValues()
	for _, vs := range c.QueryParams() {
		values = append(values, vs...)
	}
	for _, v := range values {
		if !isPlainText(v) {
			return badRequestError{detail: "a parameter is not UTF-8 text, or holds a NUL"}
		}
	}
	return nil
}

// isPlainText reports whether s is UTF-8 without a NUL: text both databases hold.
func isPlainText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// forbiddenError: the key may not do this.
type forbiddenError struct{ detail string }

func (e forbiddenError) Error() string { return e.detail }

// forbidden: the tenant is outside the key's scope.
func forbidden(tenant string) error {
	return forbiddenError{detail: fmt.Sprintf("this key may not manage tenant %q", tenant)}
}

// mayReachPrivate refuses a key of some tenants only settings that let a
// block reach private networks (allowPrivateNetwork), read a file of the
// service's host (rootCAs), skip certificate checks or write codes to the
// service's log (a log sender), unless the same block is stored already
// (prev; nil for a new tenant): pointing the service at internal addresses,
// its own files or its log is a decision for a key of every tenant.
func mayReachPrivate(ctx context.Context, doc, prev map[string]any) error {
	if callerOf(ctx).scope.All {
		return nil
	}
	if paths := config.NewPrivateBlocks(doc, prev); len(paths) > 0 {
		return forbiddenError{detail: "only a key of every tenant may let a setting reach private networks: " + strings.Join(paths, ", ")}
	}
	if paths := config.NewHostBlocks(doc, prev); len(paths) > 0 {
		return forbiddenError{detail: "only a key of every tenant may name a file of the service's host (rootCAs) or turn certificate checks off (insecureSkipVerify): " +
			strings.Join(paths, ", ")}
	}
	if paths := config.NewLogSenders(doc, prev); len(paths) > 0 {
		return forbiddenError{detail: "only a key of every tenant may have one-time codes written to the service's log (a log sender, " +
			"the default when senders are left out): " + strings.Join(paths, ", ")}
	}
	return nil
}

// warnLogSenders warns, as serve does at start-up, about each channel whose
// codes tenant id, as doc sets it, writes to the log.
func (s *Server) warnLogSenders(ctx context.Context, id string, doc map[string]any) {
	for _, ch := range config.LogChannels(doc) {
		s.Logger.WarnContext(ctx, sender.LogWarning, "tenant", id, "channel", ch)
	}
}

// notFoundError names what was not found.
type notFoundError struct{ what string }

func (e notFoundError) Error() string { return e.what }

func unknownTenant(id string) error { return notFoundError{what: fmt.Sprintf("unknown tenant %q", id)} }

// badRequestError is a request the contract allows but the API cannot read (a cursor it did not give).
type badRequestError struct{ detail string }

func (e badRequestError) Error() string { return e.detail }

// problemOf maps the admin API's own errors; nil leaves err to the mapping
// the customer API uses (unavailable database, bodies, routes, panics).
func problemOf(err error) *server.Problem {
	var (
		forb    forbiddenError
		nf      notFoundError
		bad     badRequestError
		invalid *catalog.InvalidError
		httpErr *echo.HTTPError
		shared  *server.Problem
	)
	switch {
	case errors.As(err, &shared) && shared.Status == http.StatusPreconditionFailed:
		// The body guard's number out of range, named by member: 412 is the
		// customer API's status for an account's fields, and this API's 412
		// says the tenant changed since an ETag. A body no reader can take
		// is a bad request here, as off the customer API's upsert path.
		p := server.NewProblem(http.StatusBadRequest, "bad-request", "Bad request", shared.Detail)
		p.Errors = shared.Errors
		return p
	case errors.Is(err, errBadKey):
		return server.NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", "a valid admin API key is required").
			WithHeader("WWW-Authenticate", `Bearer realm="customerd-admin"`)
	case errors.As(err, &forb):
		return server.NewProblem(http.StatusForbidden, "forbidden", "Forbidden", forb.Error())
	case errors.As(err, &nf):
		return server.NewProblem(http.StatusNotFound, "not-found", "Not found", nf.Error())
	case errors.As(err, &bad):
		return server.NewProblem(http.StatusBadRequest, "bad-request", "Bad request", bad.Error())
	case errors.Is(err, store.ErrStale):
		return server.NewProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed", "the tenant changed since this ETag")
	case errors.Is(err, store.ErrConflict):
		return server.NewProblem(http.StatusConflict, "conflict", "Conflict", "a tenant with this id exists")
	case errors.As(err, &invalid):
		return invalidSettings(invalid.Fields)
	case errors.As(err, &httpErr) && httpErr.Internal != nil:
		if fields, ok := server.InvalidBody(httpErr.Internal); ok {
			// A path in the request body; a new tenant's settings are named as in the tenant.
			named := make(map[string][]string, len(fields))
			for k, v := range fields {
				named[strings.TrimPrefix(k, "settings.")] = v
			}
			return invalidSettings(named)
		}
		var me openapi3.MultiError
		var re *openapi3filter.RequestError
		if errors.As(httpErr.Internal, &me) || errors.As(httpErr.Internal, &re) {
			return server.NewProblem(http.StatusBadRequest, "bad-request", "Bad request", "a parameter is invalid: "+params(httpErr.Internal))
		}
	}
	return nil
}

func invalidSettings(fields map[string][]string) *server.Problem {
	p := server.NewProblem(http.StatusUnprocessableEntity, "invalid-settings", "Invalid settings", "one or more settings are invalid")
	p.Errors = fields
	return p
}

// params names the parameters the validator refused.
func params(err error) string {
	var names []string
	var me openapi3.MultiError
	errs := []error{err}
	if errors.As(err, &me) {
		errs = me
	}
	for _, e := range errs {
		var re *openapi3filter.RequestError
		if errors.As(e, &re) && re.Parameter != nil {
			names = append(names, re.Parameter.Name)
		}
	}
	if len(names) == 0 {
		return "the request"
	}
	return strings.Join(names, ", ")
}

// audit records one admin write; the entry holds ids only. The write is
// done: it is recorded even when the caller hung up meanwhile (the request's
// context is then cancelled, and an erasure would go unrecorded).
func (s *Server) audit(ctx context.Context, tenant, action, target string) error {
	return s.Store.AddAudit(context.WithoutCancel(ctx), &store.AuditEntry{At: s.Now(), KeyID: callerOf(ctx).id, TenantID: tenant,
		Action: action, Target: target, RequestID: server.RequestID(ctx)})
}
