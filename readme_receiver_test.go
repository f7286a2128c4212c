package customerd_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/signature"
)

// The dispatcher sends the claimed events of different customers together
// (events.Dispatcher.Run: up to 32 at once), so the README's
// receiver must take concurrent deliveries: copied as written, it must not
// race, let alone crash with "concurrent map writes".
func TestREADMEWebhookReceiverConcurrentDeliveries(t *testing.T) {
	recv := startREADMEReceiver(t, true)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Appendf(nil, `{"id":"ev-%d","type":"Customer:Upserted","customerId":"c%d","data":{"email":"c%d@example.com"}}`, i, i, i)
			req, _ := http.NewRequest(http.MethodPost, recv.hook, bytes.NewReader(body))
			req.Header.Set(signature.Header, signature.Sign([]byte(recv.secret), time.Now(), body))
			if res, err := http.DefaultClient.Do(req); err == nil {
				_ = res.Body.Close()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-recv.exited:
		recv.exited <- err
		t.Fatalf("the receiver died under concurrent deliveries (%v):\n%.1500s", err, recv.logs.String())
	case <-time.After(300 * time.Millisecond):
	}
	if bytes.Contains([]byte(recv.logs.String()), []byte("DATA RACE")) {
		t.Fatalf("the receiver races:\n%.1500s", recv.logs.String())
	}
}

// readmeReceiver is the README's webhook receiver, built and running.
type readmeReceiver struct {
	hook, secret string
	logs         *apptest.LogBuffer
	exited       chan error // its exit, once (put back by whoever takes it)
}

// startREADMEReceiver builds the README's receiver as written (with the
// race detector, halting on the first race, when race) and runs it on a
// free loopback port until the test ends.
func startREADMEReceiver(t *testing.T, race bool) readmeReceiver {
	t.Helper()
	program := only(t, readme(t, "Webhooks"), "go", "package main")
	secret := regexp.MustCompile(`const secret = "([^"]+)"`).FindStringSubmatch(program)
	if secret == nil {
		t.Fatalf("the receiver has no const secret:\n%s", program)
	}
	dir := t.TempDir()
	env, build := []string{"GOFLAGS=-mod=mod", "GOWORK=off"}, "go vet . && go build -o receiver ."
	if race {
		env, build = append(env, "CGO_ENABLED=1"), "go build -race -o receiver ."
	}
	run(t, dir, env, "go mod init receiver")
	write(t, filepath.Join(dir, "main.go"), program)
	run(t, dir, env, build)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(filepath.Join(dir, "receiver"))
	cmd.Env = append(os.Environ(), "ADDR="+addr, "GORACE=halt_on_error=1 exitcode=66")
	r := readmeReceiver{hook: "http://" + addr + "/hooks/customerd", secret: secret[1], logs: &apptest.LogBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = r.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-r.exited })
	waitUntil(t, "the receiver listens", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	return r
}
