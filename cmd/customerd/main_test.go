package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM stops customerd only after the request in flight has its answer.
func TestSIGTERMFinishesInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	t.Setenv("CUSTOMERD_ADDR", addr)
	t.Setenv("CUSTOMERD_DATABASE_URL", "sqlite://"+filepath.Join(dir, "c.db"))
	t.Setenv("CUSTOMERD_SECRET", strings.Repeat("x", 40))
	t.Setenv("CUSTOMERD_CONFIG", "")

	done := make(chan error, 1)
	go func() { done <- run(nil) }()
	base := "http://" + addr
	for i := 0; ; i++ {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			_ = res.Body.Close()
			break
		}
		if i == 200 {
			t.Fatalf("customerd did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A request whose body is still on its way when SIGTERM arrives.
	pr, pw := io.Pipe()
	answer := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/demo/customer", pr)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			answer <- nil
			return
		}
		answer <- res
	}()
	if _, err := fmt.Fprint(pw, `{"email":"in.flight@example.com",`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server is reading the body
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("customerd stopped with a request in flight: %v", err)
	default:
	}
	_, _ = fmt.Fprint(pw, `"firstName":"Late"}`)
	_ = pw.Close()
	res := <-answer
	if res == nil || res.StatusCode != http.StatusOK {
		t.Fatalf("in-flight request answered %v", res)
	}
	_ = res.Body.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("customerd stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("customerd did not stop after SIGTERM")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("customerd still answers after stopping")
	}
}

func TestABadConfigStopsStartUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(path, []byte("tenants:\n  acme:\n    providers:\n      google:\n        type: carrier-pigeon\n"), 0o600)
	t.Setenv("CUSTOMERD_DATABASE_URL", "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
	t.Setenv("CUSTOMERD_SECRET", strings.Repeat("x", 40))
	err := run([]string{"--config", path})
	if err == nil || !strings.Contains(err.Error(), "tenants.acme.providers.google.type") {
		t.Fatalf("start-up error %v, want one naming tenants.acme.providers.google.type", err)
	}
}
