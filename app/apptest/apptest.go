// Package apptest starts a real customerd for HTTP-level tests: a wired app
// on a fresh database behind an httptest server, the generated Go client,
// and an HTTP client that validates every response against openapi.yaml.
package apptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/gen/client"
)

// Env is one running customerd.
type Env struct {
	App    *app.App
	Server *httptest.Server
	// Metrics is the metrics listener, apart from Server as in production.
	Metrics *httptest.Server
	// HTTP validates every response it receives against openapi.yaml.
	HTTP   *http.Client
	Client *client.ClientWithResponses
	Logs   *LogBuffer
	// Clock is the time of the service's challenges and accounts; tests move it forward.
	Clock *Clock

	stopEvents func()
	adminOnce  sync.Once
	admin      *Admin
}

// Clock is the wall clock plus an offset tests can add to.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the time as the service sees it.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the service's time forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// StartEvents runs the webhook dispatcher until StopEvents or the end of the test.
func (e *Env) StartEvents() {
	if e.stopEvents != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.App.Events.Run(ctx); close(done) }()
	e.stopEvents = func() { cancel(); <-done }
}

// StopEvents stops the webhook dispatcher and waits for it: deliveries in
// flight are abandoned, as when the service is killed.
func (e *Env) StopEvents() {
	if e.stopEvents != nil {
		e.stopEvents()
		e.stopEvents = nil
	}
}

// Secret is the secret test servers use.
const Secret = "test-secret-test-secret-test-secret-0123456789"

// Start runs customerd with the config YAML on dbURL ("" for a fresh SQLite).
func Start(t testing.TB, dbURL, configYAML string) *Env {
	t.Helper()
	cfg := Config(t, dbURL, configYAML)
	return StartConfig(t, cfg)
}

// Config loads configYAML as customerd would, on dbURL.
func Config(t testing.TB, dbURL, configYAML string) *config.Config {
	t.Helper()
	path := ""
	if configYAML != "" {
		path = t.TempDir() + "/customerd.yaml"
		if err := writeFile(path, configYAML); err != nil {
			t.Fatal(err)
		}
	}
	if dbURL == "" {
		dbURL = "sqlite://" + t.TempDir() + "/customerd.db"
	}
	env := map[string]string{"CUSTOMERD_DATABASE_URL": dbURL, "CUSTOMERD_SECRET": Secret, "CUSTOMERD_ADDR": "127.0.0.1:0"}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// StartConfig runs customerd with cfg and opts.
func StartConfig(t testing.TB, cfg *config.Config, opts ...app.Option) *Env {
	t.Helper()
	logs := &LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	clock := &Clock{}
	a, err := app.New(context.Background(), cfg, log, append([]app.Option{app.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("start customerd: %v", err)
	}
	srv, metrics := httptest.NewServer(a.Handler), httptest.NewServer(a.Metrics)
	env := &Env{App: a, Server: srv, Metrics: metrics, Logs: logs, Clock: clock}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { a.Watch(watchCtx); close(watched) }()
	t.Cleanup(func() {
		env.StopEvents()
		stopWatch()
		<-watched
		srv.Close()
		metrics.Close()
		_ = a.Close()
	})
	hc := &http.Client{Transport: &Validator{T: t, Next: http.DefaultTransport, Router: Router(t)}, Timeout: 30 * time.Second}
	c, err := client.NewClientWithResponses(srv.URL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	env.HTTP, env.Client = hc, c
	return env
}

// Router matches requests to the operations of openapi.yaml.
func Router(t testing.TB) routers.Router { return customerRouter.get(t) }

// AdminRouter matches requests to the operations of admin.openapi.yaml.
func AdminRouter(t testing.TB) routers.Router { return adminRouter.get(t) }

var (
	customerRouter = &lazyRouter{spec: api.GetSpec}
	adminRouter    = &lazyRouter{spec: adminapi.GetSpec}
	decodersOnce   sync.Once
)

// lazyRouter builds the router of a contract once.
type lazyRouter struct {
	spec   func() (*openapi3.T, error)
	once   sync.Once
	router routers.Router
	err    error
}

func (l *lazyRouter) get(t testing.TB) routers.Router {
	decodersOnce.Do(func() {
		// The documentation answers HTML, JavaScript and YAML: text, for the
		// contract as for clients (the validator would parse the YAML).
		for _, mt := range []string{"text/html", "text/javascript", "application/yaml"} {
			openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
		}
	})
	l.once.Do(func() {
		var spec *openapi3.T
		if spec, l.err = l.spec(); l.err != nil {
			return
		}
		spec.Servers = nil // the validator matches paths, not hosts
		l.router, l.err = gorillamux.NewRouter(spec)
	})
	if l.err != nil {
		t.Fatalf("openapi router: %v", l.err)
	}
	return l.router
}

// Validator is an http.RoundTripper that checks every response against
// openapi.yaml: its status is declared, its media type declared, its body
// valid, for the operation the request matched.
type Validator struct {
	T      testing.TB
	Next   http.RoundTripper
	Router routers.Router
}

// RoundTrip sends req and validates the response.
func (v *Validator) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := v.Next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	route, params, ferr := v.Router.FindRoute(req)
	if ferr != nil {
		// Off-contract paths (a typo'd URL) must still answer a problem.
		ct := res.Header.Get("Content-Type")
		if res.StatusCode < 400 || !strings.HasPrefix(ct, "application/problem+json") && !strings.HasPrefix(ct, "application/json") {
			v.T.Errorf("%s %s: no operation matches and the answer %d is not a problem", req.Method, req.URL.Path, res.StatusCode)
		}
		return res, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.StatusCode,
		Header: res.Header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		v.T.Errorf("%s %s → %d does not conform to openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, res.StatusCode, err, body)
	}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
		v.T.Errorf("%s %s → %d: %s", req.Method, req.URL.Path, res.StatusCode, body)
	}
	return res, nil
}

// LogBuffer keeps the service's JSON log lines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Lines returns the decoded log lines.
func (l *LogBuffer) Lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// String is the raw log.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Code is the last one-time code the log sender wrote for to ("" if none).
func (l *LogBuffer) Code(to string) string {
	code := ""
	for _, m := range l.Lines() {
		if m["msg"] == "otp sent" && m["to"] == to {
			code, _ = m["code"].(string)
		}
	}
	return code
}

// Sent counts the codes the log sender wrote for to.
func (l *LogBuffer) Sent(to string) int {
	n := 0
	for _, m := range l.Lines() {
		if m["msg"] == "otp sent" && m["to"] == to {
			n++
		}
	}
	return n
}
