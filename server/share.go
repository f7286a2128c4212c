package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// What customerd's other HTTP servers (the admin API) share with this one:
// request ids, the access log, panics and errors as RFC 9457 problems, the
// guard on request bodies.

// WriteJSON answers v as JSON with status: for a body whose generated
// response type would lose what v's own MarshalJSON writes (free-form
// properties).
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// Problem is an RFC 9457 problem, the answer to every error.
type Problem = problem

// NewProblem is a problem of type urn:customerd:problem:slug.
func NewProblem(status int, slug, title, detail string) *Problem {
	return newProblem(status, slug, title, detail)
}

// WithHeader adds a response header to p.
func (p *problem) WithHeader(name, value string) *problem {
	if p.headers == nil {
		p.headers = map[string]string{}
	}
	p.headers[name] = value
	return p
}

// WithCause keeps err with p for the log, never for the response.
func (p *problem) WithCause(err error) *problem {
	p.cause = err
	return p
}

// Edge is the middleware every customerd server runs first: a request id,
// the access log (counted in reg), panics as problems, and request bodies
// read whole, bounded and checked to be JSON worth parsing (a request
// without a body goes on as it is).
func Edge(log *slog.Logger, reg prometheus.Registerer) []echo.MiddlewareFunc {
	bodies := func(next echo.HandlerFunc) echo.HandlerFunc {
		read := readBody(next)
		return func(c echo.Context) error {
			if r := c.Request(); r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
				return next(c) // a POST that carries nothing (an action on its path)
			}
			return read(c)
		}
	}
	return []echo.MiddlewareFunc{begin, accessLog(log, newMetrics(reg)), recoverer(log), bodies}
}

// ErrorHandler answers every error as a problem: own maps the server's own
// errors first (nil: not one of them), then the mapping this server uses.
func ErrorHandler(log *slog.Logger, own func(error) *Problem) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		p := own(err)
		if p == nil {
			p = toProblem(err)
		}
		if werr := writeProblem(c, log, p); werr != nil {
			log.Debug("write problem", "error", werr.Error())
		}
	}
}

// RequestID is the id of the request ctx belongs to.
func RequestID(ctx context.Context) string { return fromContext(ctx).id }

// InvalidBody returns the request validator's findings in a request body,
// keyed by the dotted path of the bad value ("otp.maxAttempts"), when err
// holds any.
func InvalidBody(err error) (map[string][]string, bool) {
	var me openapi3.MultiError
	var errs []error
	if errors.As(err, &me) {
		errs = me
	} else {
		errs = []error{err}
	}
	fields := map[string][]string{}
	for _, e := range errs {
		var re *openapi3filter.RequestError
		if !errors.As(e, &re) || re.RequestBody == nil {
			continue
		}
		for _, se := range schemaErrors(re.Err) {
			path := strings.Join(se.JSONPointer(), ".")
			if path == "" {
				path = "body"
			}
			fields[path] = append(fields[path], schemaMessage(se))
		}
	}
	return fields, len(fields) > 0
}

// Static is fixed bytes answered as the documentation operations answer
// them: with their media type and a short cache.
type Static struct {
	ContentType string
	Body        []byte
}

// Write answers s.
func (s Static) Write(w http.ResponseWriter) error {
	return staticBody{contentType: s.ContentType, body: s.Body}.write(w)
}

// WriteDocsPage answers the reference page; Redoc renders it from the
// openapi.json served beside it.
func WriteDocsPage(w http.ResponseWriter) error {
	return docsHTML{contentType: "text/html; charset=utf-8", body: docsPage}.VisitGetDocsResponse(w)
}

// WriteDocsScript answers the Redoc bundle the reference page runs.
func WriteDocsScript(w http.ResponseWriter) error {
	return docsJS{contentType: "text/javascript; charset=utf-8", body: docsScript}.VisitGetDocsScriptResponse(w)
}
