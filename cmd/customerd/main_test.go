package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// bin is customerd built once for the package: the tests run what users run.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "customerd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "customerd")
	// -buildvcs=auto: the commit when the checkout is a repository's (not a worktree's).
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build customerd:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of customerd did.
type result struct {
	code           int
	stdout, stderr string
}

// customerd runs the built binary in dir with args and the environment env
// (nothing of the test's own CUSTOMERD_ variables).
func customerd(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	// A guard, not a measure: a command that serves instead of exiting would hang the test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("customerd %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("customerd %v did not exit: %s", args, stderr.String())
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUSTOMERD_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// secret is a CUSTOMERD_SECRET that passes.
var secret = strings.Repeat("s3cr3t-key-", 4)

// writeConfig writes a configuration file into dir.
func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "customerd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// server is a customerd serve running in the background.
type server struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []map[string]any
	raw  bytes.Buffer
	// listening is the start-up line, once logged.
	listening chan map[string]any
	done      chan struct{}
}

// startServe runs `customerd serve` (args) in dir and waits for its start-up line.
func startServe(t *testing.T, dir string, env map[string]string, args ...string) (*server, map[string]any) {
	t.Helper()
	s := &server{cmd: exec.Command(bin, args...), listening: make(chan map[string]any, 1), done: make(chan struct{})}
	s.cmd.Dir = dir
	s.cmd.Env = environ(env)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			s.mu.Lock()
			s.raw.Write(sc.Bytes())
			s.raw.WriteByte('\n')
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				s.logs = append(s.logs, m)
			}
			s.mu.Unlock()
			if m["msg"] == "customerd listening" {
				s.listening <- m
			}
		}
		_ = s.cmd.Wait()
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
		}
		<-s.done
	})
	select {
	case m := <-s.listening:
		return s, m
	case <-s.done:
		t.Fatalf("customerd serve exited before listening:\n%s", s.log())
	case <-time.After(2 * time.Minute):
		t.Fatalf("customerd serve did not start:\n%s", s.log())
	}
	return nil, nil
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// lines are the log lines with this message.
func (s *server) lines(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, m := range s.logs {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// wait waits for the process to exit and returns its status.
func (s *server) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		t.Fatalf("customerd did not stop:\n%s", s.log())
	}
	return s.cmd.ProcessState.ExitCode()
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withRuntimeTenant migrates a database for the configuration file
// configYAML and creates tenants with customerd tenants apply, as the
// admin API would at runtime: the file's path.
func withRuntimeTenant(t *testing.T, dir string, env map[string]string, configYAML, tenantsYAML string) string {
	t.Helper()
	cfg := writeConfig(t, dir, configYAML)
	if r := customerd(t, dir, env, "--config", cfg, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	f := filepath.Join(dir, "runtime.yaml")
	if err := os.WriteFile(f, []byte(tenantsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", f); r.code != 0 {
		t.Fatalf("tenants apply: %d %s", r.code, r.stderr)
	}
	return cfg
}
