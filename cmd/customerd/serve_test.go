package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveEnv runs serve on free loopback ports with the database in dir.
func serveEnv(dir string) map[string]string {
	return map[string]string{"CUSTOMERD_ADDR": "127.0.0.1:0", "CUSTOMERD_METRICS_ADDR": "127.0.0.1:0", "CUSTOMERD_ADMIN_ADDR": "127.0.0.1:0",
		"CUSTOMERD_DATABASE_URL": "sqlite://" + filepath.Join(dir, "c.db"), "CUSTOMERD_SECRET": secret}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return res, readAll(t, res.Body)
}

func TestServeSaysWhereItListensInOneLine(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "tenants:\n  acme: {}\n  shop:\n    senders:\n      email: {type: log}\n")
	s, line := startServe(t, dir, serveEnv(dir), "--config", cfg)
	api, _ := line["api"].(string)
	metrics, _ := line["metrics"].(string)
	if !strings.HasPrefix(api, "http://127.0.0.1:") || line["docs"] != api+"/docs" || !strings.HasSuffix(metrics, "/metrics") ||
		metrics == api+"/metrics" || line["database"] != "sqlite://"+filepath.Join(dir, "c.db") || line["tenants"] != 2.0 {
		t.Fatalf("start-up line: %v", line)
	}
	// One warning per tenant and channel whose codes go to the log.
	var warned []string
	for _, m := range s.lines("log sender: one-time codes are written to the log; never use it in production") {
		warned = append(warned, fmt.Sprint(m["tenant"], "/", m["channel"]))
	}
	if strings.Join(warned, " ") != "acme/email acme/sms shop/email" {
		t.Fatalf("log sender warnings: %v", warned)
	}
	if len(s.lines("demo mode: no configuration file, so the demo tenant serves with one-time codes written to the log; give --config FILE for real tenants")) != 0 {
		t.Fatal("demo mode with a configuration file")
	}

	// /metrics answers on its own listener only.
	if res, body := get(t, metrics); res.StatusCode != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics listener: %d %s", res.StatusCode, body)
	}
	if res, body := get(t, api+"/healthz"); res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d %s", res.StatusCode, body)
	}
	res, body := get(t, api+"/metrics")
	if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("the API's /metrics: %d %s", res.StatusCode, body)
	}
	if res, body := get(t, metrics); !strings.Contains(body, `customerd_http_requests_total{code="200",method="GET",route="/healthz"} 1`) {
		t.Fatalf("metrics of the API's requests: %d %s", res.StatusCode, body)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, s.log())
	}
	// Durations as a person writes them.
	if stop := s.lines("shutting down: finishing in-flight requests"); len(stop) != 1 || stop[0]["timeout"] != "30s" {
		t.Fatalf("shutting down: %v", stop)
	}
}

func TestDemoModeIsOneLine(t *testing.T) {
	dir := t.TempDir()
	s, line := startServe(t, dir, serveEnv(dir))
	if line["tenants"] != 1.0 {
		t.Fatalf("start-up line: %v", line)
	}
	if n := len(s.lines("demo mode: no configuration file, so the demo tenant serves with one-time codes written to the log; give --config FILE for real tenants")); n != 1 {
		t.Fatalf("%d demo mode lines:\n%s", n, s.log())
	}
	// Nor as it builds the demo tenant, at its first request.
	if res, body := get(t, line["api"].(string)+"/api/demo/.well-known/jwks.json"); res.StatusCode != http.StatusOK {
		t.Fatalf("the demo tenant's keys: %d %s", res.StatusCode, body)
	}
	if strings.Contains(s.log(), "log sender") {
		t.Fatalf("demo mode also warns per channel:\n%s", s.log())
	}
}

// A bad setting and a port in use stop serve before the database is created.
func TestServeChecksBeforeItWritesAnything(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"a bad provider setting", "tenants:\n  acme:\n    providers:\n      google: {type: google}\n", nil,
			"tenants.acme.providers.google.clientIds: required, one per platform"},
		{"the API's port in use", "tenants:\n  acme: {}\n", map[string]string{"CUSTOMERD_ADDR": busy.Addr().String()},
			"addr: listen tcp " + busy.Addr().String() + ": bind: address already in use (another customerd running? set addr or CUSTOMERD_ADDR; make run ADDR=:9090)"},
		{"the metrics port in use", "tenants:\n  acme: {}\n", map[string]string{"CUSTOMERD_METRICS_ADDR": busy.Addr().String()},
			"metricsAddr: listen tcp " + busy.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			env := serveEnv(dir)
			for k, v := range c.env {
				env[k] = v
			}
			r := customerd(t, dir, env, "serve", "--config", writeConfig(t, dir, c.yaml))
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want %q in:\n%s", r.code, c.want, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "c.db")); err == nil {
				t.Fatal("the database was created")
			}
		})
	}
}

func TestLogLevelAndFormatFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	env := serveEnv(dir)
	env["CUSTOMERD_LOG_FORMAT"] = "text"
	r := customerd(t, dir, env, "migrate")
	if r.code != 0 || !strings.Contains(r.stderr, `level=INFO msg="database is up to date"`) {
		t.Fatalf("text: %d %s", r.code, r.stderr)
	}
	env["CUSTOMERD_LOG_LEVEL"] = "warn"
	if r := customerd(t, dir, env, "migrate"); r.code != 0 || r.stderr != "" {
		t.Fatalf("warn: %d %s", r.code, r.stderr)
	}
	env["CUSTOMERD_LOG_LEVEL"] = "loud"
	if r := customerd(t, dir, env, "migrate"); r.code != 1 || !strings.Contains(r.stderr, `CUSTOMERD_LOG_LEVEL: "loud" is not one of debug, info, warn, error`) {
		t.Fatalf("loud: %d %s", r.code, r.stderr)
	}
}

// SIGTERM stops customerd only after the request in flight has its answer.
func TestSIGTERMFinishesInFlightRequests(t *testing.T) {
	dir := t.TempDir()
	s, line := startServe(t, dir, serveEnv(dir))
	api := line["api"].(string)

	// A request whose body is still on its way when SIGTERM arrives.
	conn, err := net.Dial("tcp", strings.TrimPrefix(api, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"email":"in.flight@example.com","firstName":"Late"}`
	head := fmt.Sprintf("POST /api/demo/customer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	if _, err := io.WriteString(conn, head+body[:20]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server is reading the body
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutting down is logged as the server stops taking new connections.
	for len(s.lines("shutting down: finishing in-flight requests")) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	// Every listener stops taking them, the admin API's too, while the
	// API's request is still in flight: one after another, the admin
	// listener took new requests for as long as the API drained.
	admin := strings.TrimPrefix(strings.TrimSuffix(line["admin"].(string), "/admin"), "http://")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", admin)
		if err != nil {
			break
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the admin listener still takes connections while the API's request is in flight")
		}
	}
	if _, err := io.WriteString(conn, body[20:]); err != nil {
		t.Fatal(err)
	}
	answer := readAll(t, conn)
	if !strings.HasPrefix(answer, "HTTP/1.1 200 ") {
		t.Fatalf("in-flight request answered %q", answer)
	}
	var account map[string]any
	if err := json.Unmarshal([]byte(answer[strings.Index(answer, "\r\n\r\n")+4:]), &account); err != nil || account["firstName"] != "Late" {
		t.Fatalf("answer %q: %v", answer, err)
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, s.log())
	}
	if _, err := http.Get(api + "/healthz"); err == nil {
		t.Fatal("customerd still answers after stopping")
	}
}

// Ctrl-C while serve waits for a database that accepts connections and never
// answers stops it, as it stops a running server: exit 1, saying so.
func TestCtrlCDuringStartUpStopsServe(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := silent.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	dir := t.TempDir()
	env := serveEnv(dir)
	env["CUSTOMERD_DATABASE_URL"] = "postgres://customerd:a-password@" + silent.Addr().String() + "/customerd?sslmode=disable"
	s := &server{cmd: exec.Command(bin, "serve"), done: make(chan struct{})}
	s.cmd.Dir, s.cmd.Env = dir, environ(env)
	var stderr strings.Builder
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })
	select {
	case c := <-accepted: // serve is connecting: start-up is under way
		defer c.Close()
	case <-s.done:
		t.Fatalf("serve exited before connecting:\n%s", stderr.String())
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t); code != 1 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, "customerd serve: interrupted") || strings.Contains(out, "a-password") {
		t.Fatalf("stderr:\n%s", out)
	}
}

// migrate run where the SQLite database's folder is not says where that
// folder would be, from the working directory, and what to do.
func TestMigrateSaysWhereTheMissingFolderIs(t *testing.T) {
	dir := t.TempDir()
	r := customerd(t, dir, map[string]string{"CUSTOMERD_SECRET": secret}, "migrate")
	want := "customerd migrate: database sqlite://./data/customerd.db: its folder " + filepath.Join(dir, "data") +
		" does not exist: create it, or run migrate where the service runs\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
}
