package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/strictjson"
	"github.com/customerd/customerd/tenant"
	"github.com/customerd/customerd/token"
)

// maxBody is the largest request body accepted, chunked or not.
const maxBody = 64 << 10

type ctxKey int

const requestKey ctxKey = iota

// request is what the middleware learns about a request for the handlers,
// which receive only a context.Context from the strict server.
type request struct {
	id     string
	tenant *tenant.Tenant
	auth   string
	accept string
	remote string // the client's address, as trustedProxies name it

	// The bearer token is verified once per request (the idempotency
	// middleware and the handler both ask).
	verified  bool
	claims    *token.Claims
	claimsErr error
	// customer is the token's account, read with it.
	customer *store.Customer
	// body is the request's body as sent, read once by readBody.
	body []byte
	// abandoned: the client hung up before its answer, which is a 503
	// of its own doing (writeProblem).
	abandoned bool
}

func fromContext(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey).(*request)
	if r == nil {
		r = &request{}
	}
	return r
}

func requestID(c echo.Context) string {
	return fromContext(c.Request().Context()).id
}

// begin gives every request an id (the caller's X-Request-Id when it is
// sane), and a place for what later middleware learns.
func begin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if !saneID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		// Tokens, profiles, challenges and problems are the caller's alone: no
		// cache on the way keeps them. The contract, its reference and the
		// public keys say otherwise themselves.
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		// Every answer is what its Content-Type says, never a page a browser
		// sniffs out of a profile's text or a path a problem quotes.
		c.Response().Header().Set(echo.HeaderXContentTypeOptions, "nosniff")
		r := &request{id: id, auth: req.Header.Get(echo.HeaderAuthorization), accept: req.Header.Get(echo.HeaderAccept), remote: c.RealIP()}
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), requestKey, r)))
		return next(c)
	}
}

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// recoverer turns a panic into a 500 problem; the stack goes to the debug log only.
func recoverer(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Debug("panic", "request_id", requestID(c), "value", fmt.Sprint(v))
					err = &problem{Type: "urn:customerd:problem:internal", Title: "Internal server error",
						Status: http.StatusInternalServerError, Detail: "the request could not be completed",
						cause: fmt.Errorf("panic: %T", v)}
				}
			}()
			return next(c)
		}
	}
}

// statusClientClosed is the status the access log and the metrics give a
// request whose client hung up before its answer (nginx's 499).
const statusClientClosed = 499

// accessLog writes one structured line per request and counts it.
func accessLog(log *slog.Logger, m *metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			elapsed := time.Since(start)
			status := c.Response().Status
			r := fromContext(c.Request().Context()) // what begin read of the request
			if r.abandoned {
				status = statusClientClosed
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			method := methodLabel(c.Request().Method)
			m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
			if log.Enabled(c.Request().Context(), slog.LevelInfo) {
				log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
					slog.String("request_id", r.id),
					slog.String("method", method),
					slog.String("route", route),
					slog.String("tenant", c.Param("tenantId")),
					slog.Int("status", status),
					slog.Int64("bytes", c.Response().Size),
					slog.Duration("duration", elapsed),
					slog.String("remote", r.remote),
				)
			}
			return nil
		}
	}
}

// clientIP is who the client is: the TCP peer, or the nearest address in
// X-Forwarded-For that is not a trusted proxy when the peer is one. Nothing is
// trusted by default, loopback and private ranges included, so that a client
// cannot name itself.
func clientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// tenantOf resolves {tenantId}: an unknown tenant is a 404 before anything else.
func (s *Server) tenantOf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("tenantId")
		if name == "" {
			return next(c)
		}
		t, err := s.tenants.Tenant(c.Request().Context(), name)
		if errors.Is(err, store.ErrNotFound) {
			return newProblem(http.StatusNotFound, "not-found", "Not found", fmt.Sprintf("unknown tenant %q", name))
		} else if err != nil {
			return err
		}
		fromContext(c.Request().Context()).tenant = t
		return next(c)
	}
}

// readBody takes the whole body (at most maxBody, chunked or not), checks
// that it is JSON worth parsing, and keeps it for the validator and handler.
func readBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Method != http.MethodPost && req.Method != http.MethodPut && req.Method != http.MethodPatch {
			return next(c)
		}
		if req.ContentLength > maxBody {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
		if err != nil {
			return badRequest("the request body could not be read")
		}
		if len(body) > maxBody {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
		}
		if !jsonMediaType(req.Header.Get(echo.HeaderContentType)) {
			return unsupportedMediaType()
		}
		// Nothing inflates a body (no decompression bomb), and one sent under a
		// content coding is not read as if it had none.
		for _, coding := range req.Header.Values(echo.HeaderContentEncoding) {
			for part := range strings.SplitSeq(coding, ",") {
				if part = strings.TrimSpace(part); part != "" && !strings.EqualFold(part, "identity") {
					return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
						"send the body without a content coding (Content-Encoding)")
				}
			}
		}
		// The request validator cannot match a media type against the
		// contract's application/*+json, and the generated handlers decode
		// application/json, spelled so byte for byte: hand every JSON body on
		// as the JSON it is, in that spelling (a media type has no case, and
		// "Application/JSON" was let in here and then decoded as no body).
		_, params, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
		req.Header.Set(echo.HeaderContentType, mime.FormatMediaType("application/json", params))
		if err := checkJSON(body); err != nil {
			var nums *numbersError
			if errors.As(err, &nums) && !slices.Contains(nums.members, "") {
				// Before the validator, which cannot decode such a number; 400 off the upsert path.
				fields := make(map[string][]string, len(nums.members))
				for _, m := range nums.members {
					fields[m] = []string{strictjson.ErrNumberRange.Error()}
				}
				return invalidFields(http.StatusPreconditionFailed, fields)
			}
			return badRequest(err.Error())
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		fromContext(req.Context()).body = body
		return next(c)
	}
}

// keptBody binds a body the generated type decodes itself (a
// json.Unmarshaler: every body with a union or additional members) from
// the bytes readBody kept, instead of echo's decoder reading them again and
// scanning them twice to find where the value ends before handing it over.
// Its errors are echo's.
type keptBody struct{ echo.DefaultJSONSerializer }

func (k keptBody) Deserialize(c echo.Context, i any) error {
	u, ok := i.(json.Unmarshaler)
	body := fromContext(c.Request().Context()).body
	if !ok || body == nil {
		return k.DefaultJSONSerializer.Deserialize(c, i)
	}
	err := u.UnmarshalJSON(body)
	var (
		ute *json.UnmarshalTypeError
		se  *json.SyntaxError
	)
	switch {
	case errors.As(err, &ute):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Unmarshal type error: expected=%v, got=%v, field=%v, offset=%v",
			ute.Type, ute.Value, ute.Field, ute.Offset)).SetInternal(err)
	case errors.As(err, &se):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Syntax error: offset=%v, error=%v", se.Offset, se.Error())).SetInternal(err)
	}
	return err
}

// jsonMediaType accepts the media types of the contract: application/json,
// text/json and application/*+json.
func jsonMediaType(header string) bool {
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" ||
		(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// numbersError names the members of the body (at its top level) that hold a
// number out of range somewhere inside; "" for a body that is one.
type numbersError struct{ members []string }

func (e *numbersError) Error() string {
	return "the request body holds a number out of range: " + strictjson.ErrNumberRange.Error()
}

// checkJSON refuses what strictjson.Check refuses, then NUL characters, then
// numbers that a float64 cannot hold (a *numbersError).
func checkJSON(body []byte) error {
	found, err := strictjson.Check(body)
	switch {
	case err != nil:
		return fmt.Errorf("the request body %w", err)
	case found.NUL:
		return errors.New("the request body contains a NUL character")
	case len(found.Numbers) > 0:
		return &numbersError{found.Numbers}
	}
	return nil
}

// metrics are the Prometheus metrics of the HTTP layer.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "customerd_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "customerd_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// methodLabel is an HTTP method as metrics and the access log name it: a
// standard one as it is, any other "other" (a client may send any token as
// its method, and each would have been a new series kept for good).
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
