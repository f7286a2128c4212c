package app_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/config"
)

func TestABadProviderSettingStopsStartUp(t *testing.T) {
	for _, c := range []struct{ name, providers, want string }{
		{"unknown type", "x: {type: pigeon}", `tenants.shop.providers.x.type: unknown provider type "pigeon", have [apple facebook google line oidc otp webhook]`},
		{"no client ids", "google: {type: google}", "tenants.shop.providers.google.clientIds: required"},
		{"unknown setting", "google: {type: google, clientIds: [a], clientID: a}", `tenants.shop.providers.google.clientID: unknown setting, did you mean clientIds?`},
		// encoding/json would match these to trustEmail and allowPrivateNetwork.
		{"a setting in another case", "google: {type: google, clientIds: [a], TrustEmail: true}", `tenants.shop.providers.google.TrustEmail: unknown setting, did you mean trustEmail?`},
		{"allowPrivateNetwork in another case", "brand: {type: webhook, url: 'http://10.0.0.1/auth', secret: 0123456789abcdef0123456789abcdef, allowprivatenetwork: true}",
			`tenants.shop.providers.brand.allowprivatenetwork: unknown setting, did you mean allowPrivateNetwork?`},
		{"a setting of the wrong kind", "google: {type: google, clientIds: abc}", "tenants.shop.providers.google.clientIds: a string is not a list"},
		{"generic without issuer", "corp: {type: oidc, clientIds: [a]}", "tenants.shop.providers.corp.issuer: required"},
		{"plain http issuer", "corp: {type: oidc, clientIds: [a], issuer: 'http://idp.example'}", "tenants.shop.providers.corp.issuer:"},
		{"channel secret outside line", "google: {type: google, clientIds: [a], channelSecret: s}", "tenants.shop.providers.google.channelSecret"},
		{"app secret outside facebook", "line: {type: line, clientIds: [a], appSecret: s}", "tenants.shop.providers.line.appSecret"},
		{"webhook without secret", "brand: {type: webhook, url: 'https://brand.example/auth'}", "tenants.shop.providers.brand.secret"},
		{"webhook over plain http", "brand: {type: webhook, url: 'http://brand.example/auth', secret: 0123456789abcdef0123456789abcdef}", "tenants.shop.providers.brand.url"},
		{"webhook timeout above 5s", "brand: {type: webhook, url: 'https://brand.example/auth', secret: 0123456789abcdef0123456789abcdef, timeout: 10s}", "tenants.shop.providers.brand.timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := apptest.Config(t, "", "tenants:\n  shop:\n    providers:\n      "+c.providers+"\n")
			a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				_ = a.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want one naming %q", err, c.want)
			}
		})
	}
}

// /metrics is served on the metrics listener only; the API's answers 404, as
// openapi.yaml declares (env.HTTP validates every answer against it).
func TestMetricsHaveAListenerOfTheirOwn(t *testing.T) {
	env := apptest.Start(t, "", "")
	get := func(url string) (*http.Response, string) {
		t.Helper()
		res, err := env.HTTP.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	if res, body := get(env.Server.URL + "/healthz"); res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d %s", res.StatusCode, body)
	}
	if res, body := get(env.Server.URL + "/metrics"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "urn:customerd:problem:not-found") {
		t.Fatalf("the API's /metrics: %d %s", res.StatusCode, body)
	}
	res, body := get(env.Metrics.URL + "/metrics")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `customerd_http_requests_total{code="200",method="GET",route="/healthz"} 1`) ||
		!strings.Contains(body, `code="404",method="GET",route="/metrics"`) {
		t.Fatalf("metrics: %d %s", res.StatusCode, body)
	}
	// Nothing else answers there.
	if res, err := http.Get(env.Metrics.URL + "/api/demo/customer"); err != nil || res.StatusCode != http.StatusNotFound ||
		res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("the metrics listener's other paths: %v %v", err, res)
	}
}

// startAndClose makes an App of yaml, which sets the process's runtime
// settings, and closes it.
func startAndClose(t *testing.T, yaml string) {
	t.Helper()
	a, err := app.New(context.Background(), apptest.Config(t, "", yaml), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
}

// The garbage collector runs at the configured gcPercent (200 unless set),
// and the GOGC environment variable, when set, wins.
func TestTheGarbageCollectorTarget(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	start := func(yaml string) int {
		t.Helper()
		startAndClose(t, yaml)
		return debug.SetGCPercent(100)
	}
	t.Setenv("GOGC", "")
	if got := start("tenants: {shop: {}}\n"); got != config.DefaultGCPercent {
		t.Errorf("by default: GOGC %d, want %d", got, config.DefaultGCPercent)
	}
	if got := start("gcPercent: 400\ntenants: {shop: {}}\n"); got != 400 {
		t.Errorf("gcPercent 400: GOGC %d", got)
	}
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // what the runtime read from GOGC at start
	if got := start("gcPercent: 400\ntenants: {shop: {}}\n"); got != 150 {
		t.Errorf("GOGC=150 in the environment and gcPercent 400: GOGC %d, want GOGC's", got)
	}
}

// The Go runtime's soft memory limit is memoryLimitMiB (none unless set),
// and the GOMEMLIMIT environment variable, when set, wins.
func TestTheMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	start := func(yaml string) int64 {
		t.Helper()
		startAndClose(t, yaml)
		return debug.SetMemoryLimit(-1) // -1 reads it
	}
	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(1 << 40)
	if got := start("tenants: {shop: {}}\n"); got != math.MaxInt64 {
		t.Errorf("by default: limit %d, want none (%d)", got, int64(math.MaxInt64))
	}
	if got := start("memoryLimitMiB: 256\ntenants: {shop: {}}\n"); got != 256<<20 {
		t.Errorf("memoryLimitMiB 256: limit %d, want %d", got, 256<<20)
	}
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetMemoryLimit(300 << 20) // what the runtime read from GOMEMLIMIT at start
	if got := start("memoryLimitMiB: 256\ntenants: {shop: {}}\n"); got != 300<<20 {
		t.Errorf("GOMEMLIMIT=300MiB in the environment and memoryLimitMiB 256: limit %d, want GOMEMLIMIT's", got)
	}
}

// database.sqliteMmapMiB reaches SQLite: with it, and only with it, the
// process maps the database file into memory (the WAL's index, the -shm
// file, is mapped either way).
func TestTheSQLiteFileIsMappedOnlyWhenConfigured(t *testing.T) {
	for _, c := range []struct {
		yaml   string
		mapped bool
	}{{"", false}, {"database: {sqliteMmapMiB: 8}\n", true}} {
		path := t.TempDir() + "/customerd.db"
		cfg := apptest.Config(t, "sqlite://"+path, c.yaml+"tenants: {shop: {}}\n")
		a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		maps, err := os.ReadFile("/proc/self/maps")
		_ = a.Close()
		if err != nil {
			t.Skip("no /proc/self/maps here")
		}
		mapped := false
		for line := range strings.SplitSeq(string(maps), "\n") {
			mapped = mapped || strings.HasSuffix(line, " "+path)
		}
		if mapped != c.mapped {
			t.Errorf("%q: the database file mapped: %v, want %v", c.yaml, mapped, c.mapped)
		}
	}
}
