package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/pprof/profile"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/sender"
)

// benchSecret is the CUSTOMERD_SECRET of the bench's customerd.
const benchSecret = "bench-secret-bench-secret-bench-secret-0123456789"

// publicURL is fixed, so that tokens issued by the preparing process (iss)
// verify in the measured one, which listens on another port.
const publicURL = "http://customerd.bench"

// buildCustomerd builds ./cmd/customerd of this module into dir.
func buildCustomerd(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the bench inside the customerd module (or pass -customerd BINARY)")
	}
	// Not named customerd: a `pkill customerd` run by other work on a shared
	// machine must not stop the server under measurement.
	bin := filepath.Join(dir, "loadbench-svc")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/customerd")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/customerd: %w\n%s", err, b)
	}
	return bin, nil
}

// freePort returns a loopback address nobody listens on (now).
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// child is a server process the bench started: customerd or a floor.
type child struct {
	name string
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	done chan struct{}
	err  error // the process's exit, once done is closed
	rss  *rssSampler
	// startup is how long it took from its start to its first healthy answer.
	startup time.Duration
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the process to finish (SIGTERM) and kills it after a grace period.
func (c *child) stop() {
	defer c.rss.stop()
	defer untrackPID(c.pid())
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// spawnRequests go to the one goroutine that starts children. Pdeathsig is
// delivered when the thread that forked the child exits, and the Go runtime
// does end threads; this goroutine keeps its thread locked and never
// returns, so children die with the bench and only then.
var spawnRequests = make(chan spawnRequest)

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

func init() {
	go func() {
		runtime.LockOSThread()
		for r := range spawnRequests {
			r.err <- r.cmd.Start()
		}
	}()
}

func spawn(cmd *exec.Cmd) error {
	r := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawnRequests <- r
	return <-r.err
}

// startChild starts cmd with its stderr given to onStderr line by line.
func startChild(name string, cmd *exec.Cmd, onStderr func([]byte)) (*child, io.Reader, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the bench
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := spawn(cmd); err != nil {
		return nil, nil, err
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			onStderr(sc.Bytes())
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		wg.Wait() // the pipes must be drained before Wait closes them
		c.err = cmd.Wait()
		close(c.done)
	}()
	c.rss = newRSSSampler(cmd.Process.Pid)
	trackPID(cmd.Process.Pid)
	return c, stdout, nil
}

// sqliteMmapMiB is -sqlite-mmap-mib: every customerd's database.sqliteMmapMiB;
// maxOpenConns is -max-open-conns: every customerd's database.maxOpenConns;
// memoryLimitMiB is -memory-limit-mib: every customerd's memoryLimitMiB.
var sqliteMmapMiB, maxOpenConns, memoryLimitMiB int

// customerdOptions select how customerd runs.
type customerdOptions struct {
	bin       string // the built ./cmd/customerd; "" runs this binary with -role svc
	dbURL     string
	level     string // info (codes in the log) or warn (no access log)
	dir       string
	pprofAddr string // with bin == "": where the child takes /start and /stop of its CPU profile
	profile   string // with bin == "": the CPU profile file
	codes     *codeBook
	issuer    *oidctest.Issuer // the local issuer of the demo tenant's google provider
}

// startCustomerd runs customerd as a child process on a free loopback port
// and waits until /healthz answers.
func startCustomerd(ctx context.Context, o customerdOptions) (*child, error) {
	yaml := fmt.Sprintf("publicURL: %s\nlog:\n  level: %s\n  format: json\ntenants:\n  demo:\n    otp:\n      codeLifetime: 1h\n",
		publicURL, o.level)
	if o.issuer != nil {
		yaml += googleProviderYAML(o.issuer)
	}
	if sqliteMmapMiB > 0 || maxOpenConns > 0 {
		yaml += fmt.Sprintf("database:\n  sqliteMmapMiB: %d\n  maxOpenConns: %d\n", sqliteMmapMiB, maxOpenConns)
	}
	if memoryLimitMiB > 0 {
		yaml += fmt.Sprintf("memoryLimitMiB: %d\n", memoryLimitMiB)
	}
	cfgPath := filepath.Join(o.dir, "customerd-"+o.level+".yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if o.bin != "" {
		cmd = exec.Command(o.bin)
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self, "-role", "svc", "-pprof-addr", o.pprofAddr, "-pprof-file", o.profile)
	}
	cmd.Dir = o.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUSTOMERD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CUSTOMERD_CONFIG="+cfgPath, "CUSTOMERD_ADDR="+addr, "CUSTOMERD_METRICS_ADDR=127.0.0.1:0", "CUSTOMERD_ADMIN_ADDR=127.0.0.1:0",
		"CUSTOMERD_DATABASE_URL="+o.dbURL, "CUSTOMERD_SECRET="+benchSecret)
	var shown atomic.Int32
	began := time.Now()
	c, stdout, err := startChild("customerd", cmd, func(line []byte) {
		if bytes.Contains(line, []byte(`"msg":"otp sent"`)) {
			var m struct{ To, Code string }
			if json.Unmarshal(line, &m) == nil && o.codes != nil {
				o.codes.put(m.To, m.Code)
			}
			return
		}
		if bytes.Contains(line, []byte(`"msg":"`+sender.LogWarning)) {
			return // the bench configures it on purpose
		}
		// Keep warnings, errors and anything that is not a log line (a failed start).
		if !bytes.HasPrefix(line, []byte("{")) || bytes.Contains(line, []byte(`"level":"WARN"`)) ||
			bytes.Contains(line, []byte(`"level":"ERROR"`)) {
			if shown.Add(1) <= 20 {
				fmt.Fprintf(os.Stderr, "  customerd: %s\n", line)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	c.base = "http://" + addr
	if err := waitHealthy(ctx, c, 60*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	c.startup = time.Since(began)
	return c, nil
}

func waitHealthy(ctx context.Context, c *child, limit time.Duration) error {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return fmt.Errorf("%s exited before serving: %v", c.name, c.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		res, err := hc.Get(c.base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer /healthz within %s", c.name, limit)
}

// codeBook hands the codes the log sender wrote to whoever waits for them.
type codeBook struct {
	mu sync.Mutex
	m  map[string]chan string
}

func newCodeBook() *codeBook { return &codeBook{m: map[string]chan string{}} }

func (b *codeBook) slot(to string) chan string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.m[to]
	if c == nil {
		c = make(chan string, 1)
		b.m[to] = c
	}
	return c
}

func (b *codeBook) put(to, code string) {
	c := b.slot(to)
	for {
		select {
		case c <- code:
			return
		default:
			select { // keep the newest code only
			case <-c:
			default:
			}
		}
	}
}

func (b *codeBook) wait(ctx context.Context, to string) (string, error) {
	c := b.slot(to)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case code := <-c:
		b.mu.Lock()
		delete(b.m, to)
		b.mu.Unlock()
		return code, nil
	case <-t.C:
		return "", fmt.Errorf("no code in customerd's log for %s", to)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// runCustomerdRole is -role svc: what cmd/customerd serve does (the same
// config.Load, app.New, http.Server settings, janitor and events
// dispatcher), plus, on a second
// loopback port, POST /start and POST /stop of a CPU profile written to
// file, for -cpuprofile. customerd's code is untouched.
func runCustomerdRole(pprofAddr, file string) error {
	cfg, err := config.Load(os.Getenv("CUSTOMERD_CONFIG"), os.Getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	a, err := app.New(context.Background(), cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if pprofAddr != "" && file != "" {
		pln, err := net.Listen("tcp", pprofAddr)
		if err != nil {
			return fmt.Errorf("pprof: %w", err)
		}
		var (
			mu     sync.Mutex
			part   bytes.Buffer
			into   string
			merged = map[string]*profile.Profile{}
		)
		mux := http.NewServeMux()
		// A profile may cover several slices of time (one target's turns,
		// which alternate with another's): each start begins a part, and
		// each stop merges it into file, or file.NAME with ?name=NAME, which
		// so holds every part of that name so far.
		mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			part.Reset()
			if into = file; r.URL.Query().Get("name") != "" {
				into += "." + filepath.Base(r.URL.Query().Get("name"))
			}
			if err := pprof.StartCPUProfile(&part); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
		mux.HandleFunc("POST /stop", func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			pprof.StopCPUProfile()
			p, err := mergeProfile(merged[into], part.Bytes(), into)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			merged[into] = p
			// And where the memory went: what is held and what was allocated.
			if err := writeHeapProfile(file + ".heap"); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
		go func() { _ = http.Serve(pln, mux) }()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: %w", err)
	}
	srv := a.HTTPServer()
	// As serve does: the janitor, and the events dispatcher until serving ends.
	bg, stopBackground := context.WithCancel(context.Background())
	go a.Janitor(bg, time.Hour)
	go a.Watch(bg)
	dispatched := make(chan struct{})
	go func() { a.Events.Run(bg); close(dispatched) }()
	defer func() { stopBackground(); <-dispatched }()
	return serveUntilSignal(srv, ln)
}

// mergeProfile adds the CPU profile part to merged (nil at first), writes
// the sum to file and returns it.
func mergeProfile(merged *profile.Profile, part []byte, file string) (*profile.Profile, error) {
	p, err := profile.ParseData(part)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if merged != nil {
		if p, err = profile.Merge([]*profile.Profile{merged, p}); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := p.Write(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return p, f.Close()
}

// writeHeapProfile writes the heap profile to path, and beside it
// (path.txt) the Go runtime's memory figures against the process's
// resident memory: what is not the Go runtime's is SQLite's.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	status, _ := os.ReadFile("/proc/self/status")
	var rss []string
	for line := range strings.SplitSeq(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS") || strings.HasPrefix(line, "VmHWM") || strings.HasPrefix(line, "Rss") {
			rss = append(rss, line)
		}
	}
	text := fmt.Sprintf("go runtime: heap in use %s, heap idle %s (released %s), stacks %s, runtime total (Sys) %s, GC cycles %d\n%s\n",
		mib(m.HeapInuse), mib(m.HeapIdle), mib(m.HeapReleased), mib(m.StackSys), mib(m.Sys), m.NumGC, strings.Join(rss, "\n"))
	return os.WriteFile(path+".txt", []byte(text), 0o600)
}

// startFloor runs this binary as a floor server and reads its address.
func startFloor(ctx context.Context, kind, dbURL, secretsFile string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-role", kind, "-floor-db", dbURL, "-floor-secrets", secretsFile)
	c, stdout, err := startChild(kind, cmd, func(line []byte) { fmt.Fprintf(os.Stderr, "  %s: %s\n", kind, line) })
	if err != nil {
		return nil, err
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
				addrc <- a
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addrc:
		c.base = "http://" + a
	case <-c.done:
		return nil, fmt.Errorf("%s exited before serving: %v", kind, c.err)
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s did not start", kind)
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
	return c, nil
}
