package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"

	"github.com/customerd/customerd/account"
)

// validate is the one validation step before a handler: the request against
// the contract, and, for an account body the contract refuses, the account
// rules too, so that one 412 names every bad field. A body that passes is
// decoded by the strict handler into the contract's generated types; the
// handler's own rules (Apply) answer what the contract cannot judge.
// forValidation readies spec, a copy of the contract, for the validator.
func forValidation(spec *openapi3.T) {
	// The validator matches paths, not hosts: the contract's servers are the upstream's.
	spec.Servers = nil
	// For a 3.1 document kin-openapi (v0.153) compiles a JSON Schema 2020-12
	// validator on every request and never caches it (getkin/kin-openapi#1186):
	// 13% of the CPU of a GET and a third of a code verification in the load
	// benchmark. The request schemas use no keyword the 3.0 validator does not
	// judge the same way (type lists, formats, patterns, lengths, not), so the
	// validator reads this copy of the contract as 3.0.
	spec.OpenAPI = "3.0.3"
}

func validate(spec *openapi3.T) (echo.MiddlewareFunc, error) {
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, err
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:         openapi3filter.NoopAuthenticationFunc,
		ExcludeReadOnlyValidations: true,
		MultiError:                 true,
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Method == http.MethodHead {
				// HEAD is GET without the body (net/http drops it): validated as the GET it stands for.
				get := *req
				get.Method = http.MethodGet
				req = &get
			}
			route, params, err := router.FindRoute(req)
			var re *routers.RouteError
			switch {
			case errors.Is(err, routers.ErrMethodNotAllowed):
				// The path exists: 405, with the methods it takes (RFC 9110 15.5.6).
				if allow, _ := c.Get(echo.ContextKeyHeaderAllow).(string); allow != "" {
					allow = strings.TrimPrefix(strings.TrimPrefix(allow, http.MethodOptions), ", ")
					c.Response().Header().Set(echo.HeaderAllow, allow)
				}
				return echo.ErrMethodNotAllowed
			case errors.As(err, &re):
				return echo.NewHTTPError(http.StatusNotFound, re.Reason)
			case err != nil:
				return err
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
				p := fromValidation(err)
				if p == nil {
					return badRequest("the request is invalid")
				}
				if p.Status == http.StatusPreconditionFailed && c.Path() == upsertPath {
					p = withAccountRules(c, p)
				}
				return p
			}
			return next(c)
		}
	}, nil
}

// withAccountRules completes the contract's 412 with what the account rules
// find wrong in the same body (an email, a country, a phone number the
// schema cannot judge), so that one answer lists every bad field. Only
// fields the body names are added.
func withAccountRules(c echo.Context, p *problem) *problem {
	r := fromContext(c.Request().Context())
	body, err := io.ReadAll(c.Request().Body)
	if err != nil || r.tenant == nil {
		return p
	}
	c.Request().Body = io.NopCloser(bytes.NewReader(body))
	out := *p
	out.Errors = make(map[string][]string, len(p.Errors))
	for k, v := range p.Errors {
		out.Errors[k] = v
	}
	add := func(err error, only func(string) bool) {
		var verr *account.ValidationError
		if !errors.As(err, &verr) {
			return
		}
		for k, v := range verr.Fields {
			if _, listed := out.Errors[k]; !listed && only(k) {
				out.Errors[k] = v
			}
		}
	}
	in, err := account.Decode(body)
	if err != nil && !errors.Is(err, account.ErrNotObject) {
		add(err, func(string) bool { return true }) // type errors: every one is a field of the body
	} else if err != nil {
		return p
	}
	// The rules judge the body as a new account would be judged: enough to name
	// every bad field the body sends (a stored account is not read here).
	_, err = account.Apply(r.tenant, nil, in, time.Now().UTC())
	add(err, in.Has)
	return &out
}
