package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/signin"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/token"
)

// problem is an RFC 9457 problem: every error the server answers is one.
type problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"requestId,omitempty"`
	Errors    map[string][]string `json:"errors,omitempty"`

	headers map[string]string
	cause   error // for the log, never for the response
}

func (p *problem) Error() string { return p.Title + ": " + p.Detail }
func (p *problem) Unwrap() error { return p.cause }

func newProblem(status int, slug, title, detail string) *problem {
	return &problem{Type: "urn:customerd:problem:" + slug, Title: title, Status: status, Detail: detail}
}

func badRequest(detail string) *problem {
	return newProblem(http.StatusBadRequest, "bad-request", "Bad request", detail)
}

func unauthorized(cause error) *problem {
	p := newProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", "a valid bearer token of this tenant is required")
	p.headers = map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`}
	p.cause = cause
	return p
}

func invalidFields(status int, fields map[string][]string) *problem {
	p := newProblem(status, "validation-failed", "Validation failed", "one or more fields are invalid")
	if status == http.StatusBadRequest {
		p.Type, p.Title = "urn:customerd:problem:bad-request", "Bad request"
	}
	p.Errors = fields
	return p
}

// toProblem turns any error into the problem to answer. It is the one place
// where errors meet HTTP statuses.
func toProblem(err error) *problem {
	var (
		p         *problem
		verr      *account.ValidationError
		missing   *flows.MissingError
		unknown   *flows.UnknownError
		throttled *challenge.ThrottledError
		budget    *sender.BudgetError
		httpErr   *echo.HTTPError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &verr):
		return invalidFields(http.StatusPreconditionFailed, verr.Fields)
	case errors.As(err, &missing):
		fields := make(map[string][]string, len(missing.Fields))
		for _, f := range missing.Fields {
			fields[f] = []string{"is required"}
		}
		return invalidFields(http.StatusPreconditionFailed, fields)
	case errors.As(err, &unknown):
		return badRequest(unknown.Error())
	case errors.Is(err, account.ErrNotObject):
		return badRequest(account.ErrNotObject.Error())
	case errors.Is(err, account.ErrUnknownCaller), errors.Is(err, token.ErrInvalid):
		return unauthorized(err)
	case errors.As(err, &throttled):
		p = newProblem(http.StatusTooManyRequests, "too-many-requests", "Too many requests", throttled.Error())
		p.headers = map[string]string{"Retry-After": strconv.Itoa(int(throttled.RetryAfter.Seconds()))}
		return p
	case errors.As(err, &budget):
		p = newProblem(http.StatusTooManyRequests, "too-many-requests", "Too many requests", "this brand has sent all the messages it may send today")
		p.headers = map[string]string{"Retry-After": strconv.Itoa(int(budget.RetryAfter.Seconds()))}
		p.cause = err
		return p
	case errors.Is(err, sender.ErrCountryRefused):
		return invalidFields(http.StatusBadRequest, map[string][]string{"phoneNumber": {sender.ErrCountryRefused.Error()}})
	case errors.Is(err, sender.ErrPremiumRefused):
		return invalidFields(http.StatusBadRequest, map[string][]string{"phoneNumber": {sender.ErrPremiumRefused.Error()}})
	case errors.Is(err, challenge.ErrLocked):
		p = newProblem(http.StatusTooManyRequests, "too-many-requests", "Too many requests", err.Error())
		now := time.Now().UTC()
		midnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
		p.headers = map[string]string{"Retry-After": strconv.Itoa(int(midnight.Sub(now).Seconds()) + 1)}
		return p
	case errors.Is(err, challenge.ErrInvalidCode), errors.Is(err, providers.ErrRejected), errors.Is(err, account.ErrUnprovenContact),
		errors.Is(err, signin.ErrBadSubject):
		p = newProblem(http.StatusUnprocessableEntity, "invalid-credentials", "Invalid credentials", "the credentials are wrong or no longer valid")
		p.cause = err
		return p
	case errors.Is(err, signin.ErrNoSender):
		return badRequest(err.Error())
	case errors.Is(err, providers.ErrBadRequest):
		return badRequest(strings.TrimPrefix(err.Error(), providers.ErrBadRequest.Error()+": "))
	case errors.Is(err, challenge.ErrNotDelivered), errors.Is(err, providers.ErrUnavailable), errors.Is(err, account.ErrNoChannel):
		p = newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "the message could not be sent; try again later")
		// A withheld contact-change code fails as long after its sender's
		// failure (sender.DownFor) as this tells the client to wait.
		p.headers, p.cause = map[string]string{"Retry-After": strconv.Itoa(int(sender.DownFor.Seconds()))}, err
		return p
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		p = newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "the database is unavailable; try again later")
		p.headers, p.cause = map[string]string{"Retry-After": "1"}, err
		return p
	case errors.As(err, &httpErr):
		return fromHTTPError(httpErr)
	}
	p = newProblem(http.StatusInternalServerError, "internal", "Internal server error", "the request could not be completed")
	p.cause = err
	return p
}

// fromHTTPError maps Echo's and the request validator's errors.
func fromHTTPError(e *echo.HTTPError) *problem {
	if p := fromValidation(e.Internal); p != nil {
		return p
	}
	switch e.Code {
	case http.StatusNotFound:
		return newProblem(http.StatusNotFound, "not-found", "Not found", "no such resource")
	case http.StatusMethodNotAllowed:
		return newProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "this path does not take this method")
	case http.StatusRequestEntityTooLarge:
		return newProblem(http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large", fmt.Sprintf("the request body is larger than %d bytes", maxBody))
	case http.StatusUnsupportedMediaType:
		return unsupportedMediaType()
	}
	if e.Code >= 400 && e.Code < 500 {
		return badRequest(http.StatusText(e.Code))
	}
	p := newProblem(http.StatusInternalServerError, "internal", "Internal server error", "the request could not be completed")
	p.cause = e
	return p
}

func unsupportedMediaType() *problem {
	return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send the body as application/json")
}

// fromValidation maps the OpenAPI request validator's findings: invalid body
// fields of an account are 412 keyed by field, anything else 400.
func fromValidation(err error) *problem {
	var reqErrs []*openapi3filter.RequestError
	var me openapi3.MultiError
	if errors.As(err, &me) {
		for _, e := range me {
			var re *openapi3filter.RequestError
			if errors.As(e, &re) {
				reqErrs = append(reqErrs, re)
			}
		}
	} else {
		var re *openapi3filter.RequestError
		if errors.As(err, &re) {
			reqErrs = append(reqErrs, re)
		}
	}
	if len(reqErrs) == 0 {
		return nil
	}
	fields, params := map[string][]string{}, map[string][]string{}
	for _, re := range reqErrs {
		if re.RequestBody == nil {
			if re.Parameter == nil {
				return badRequest("the request is invalid")
			}
			msg := "is invalid"
			if ses := schemaErrors(re.Err); len(ses) > 0 {
				msg = schemaMessage(ses[0])
			}
			params[re.Parameter.Name] = append(params[re.Parameter.Name], msg)
			continue
		}
		if strings.Contains(re.Error(), "Content-Type") {
			return unsupportedMediaType()
		}
		for _, se := range schemaErrors(re.Err) {
			ptr := se.JSONPointer()
			if len(ptr) == 0 {
				return badRequest("the request body must be a JSON object")
			}
			fields[ptr[0]] = append(fields[ptr[0]], schemaMessage(se))
		}
	}
	if len(params) > 0 { // a malformed request, whatever its body holds
		return invalidFields(http.StatusBadRequest, params)
	}
	if len(fields) == 0 {
		return badRequest("the request body is invalid")
	}
	return invalidFields(http.StatusPreconditionFailed, fields)
}

func schemaErrors(err error) []*openapi3.SchemaError {
	var out []*openapi3.SchemaError
	var me openapi3.MultiError
	if errors.As(err, &me) {
		for _, e := range me {
			out = append(out, schemaErrors(e)...)
		}
		return out
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		out = append(out, se)
	}
	return out
}

// schemaMessage says what the schema wants, without echoing the value sent.
func schemaMessage(se *openapi3.SchemaError) string {
	switch se.SchemaField {
	case "type":
		return "must be of type " + strings.Join(se.Schema.Type.Slice(), " or ")
	case "maxLength":
		return fmt.Sprintf("must be at most %d characters", *se.Schema.MaxLength)
	case "pattern":
		return "has not the expected format"
	case "format":
		return "must be a valid " + se.Schema.Format
	}
	return "is invalid"
}

// writeProblem answers p, and logs it: 5xx at error level with its cause.
func writeProblem(c echo.Context, log *slog.Logger, p *problem) error {
	out := *p
	out.Instance = c.Request().URL.EscapedPath() // a URI reference: %ff stays %ff, not a broken character
	out.RequestID = requestID(c)
	if out.Status == http.StatusServiceUnavailable && errors.Is(p.cause, context.Canceled) && errors.Is(c.Request().Context().Err(), context.Canceled) {
		// The client hung up, and what waited on its request's context
		// gave up: its own doing, which anyone can repeat at will, not the
		// server's failure (accessLog counts it as 499). A failure of its
		// own (a relay, the database) stays one, the client gone or not.
		fromContext(c.Request().Context()).abandoned = true
		log.DebugContext(c.Request().Context(), "request abandoned by its client", "status", out.Status, "request_id", out.RequestID,
			"error", errString(p.cause))
	} else if out.Status >= 500 {
		log.ErrorContext(c.Request().Context(), "request failed", "status", out.Status, "request_id", out.RequestID,
			"error", errString(p.cause))
	} else if p.cause != nil {
		log.DebugContext(c.Request().Context(), "request refused", "status", out.Status, "request_id", out.RequestID,
			"error", p.cause.Error())
	}
	h := c.Response().Header()
	for k, v := range p.headers {
		h.Set(k, v)
	}
	if c.Response().Committed {
		return nil
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return c.Blob(out.Status, problemMediaType(strings.Join(c.Request().Header.Values(echo.HeaderAccept), ",")), body)
}

// problemMediaType is application/problem+json unless Accept prefers
// application/json or text/json to it (a client that matches media types
// exactly, as upstream declares errors): then application/json, same body.
// Quality values count, and a tie goes to the type Accept names itself.
func problemMediaType(accept string) string {
	const problemJSON = "application/problem+json"
	if strings.TrimSpace(accept) == "" {
		return problemJSON
	}
	ranges := acceptRanges(accept)
	pq, named := quality(ranges, problemJSON)
	jq := 0.0
	for _, mt := range []string{"application/json", "text/json"} {
		if q, exact := quality(ranges, mt); exact {
			jq = max(jq, q)
		}
	}
	if jq > pq || jq > 0 && jq == pq && !named {
		return "application/json"
	}
	return problemJSON
}

// mediaRange is one entry of an Accept header.
type mediaRange struct {
	typ, sub string
	q        float64
}

func acceptRanges(accept string) []mediaRange {
	var out []mediaRange
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		typ, sub, ok := strings.Cut(mt, "/")
		if err != nil || !ok {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
		out = append(out, mediaRange{typ: typ, sub: sub, q: q})
	}
	return out
}

// quality is the q that ranges give the media type mt, from the most specific
// range that matches it (RFC 9110, 12.5.1); exact when a range names mt itself.
func quality(ranges []mediaRange, mt string) (q float64, exact bool) {
	typ, sub, _ := strings.Cut(mt, "/")
	best := 0 // 3: type/sub, 2: type/*, 1: */*
	for _, r := range ranges {
		rank := 0
		switch {
		case r.typ == typ && r.sub == sub:
			rank = 3
		case r.typ == typ && r.sub == "*":
			rank = 2
		case r.typ == "*" && r.sub == "*":
			rank = 1
		}
		if rank > best || rank == best && rank > 0 && r.q > q {
			best, q = rank, r.q
		}
	}
	return q, best == 3
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
