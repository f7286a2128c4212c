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
// (events.Dispatcher.Once: up to events.batch at once), so the README's
// receiver must take concurrent deliveries: copied as written, it must not
// race, let alone crash with "concurrent map writes".
func TestREADMEWebhookReceiverConcurrentDeliveries(t *testing.T) {
	program := only(t, readme(t, "Webhooks"), "go", "package main")
	secret := regexp.MustCompile(`const secret = "([^"]+)"`).FindStringSubmatch(program)
	if secret == nil {
		t.Fatalf("the receiver has no const secret:\n%s", program)
	}
	dir := t.TempDir()
	env := []string{"GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=1"}
	run(t, dir, env, "go mod init receiver")
	write(t, filepath.Join(dir, "main.go"), program)
	run(t, dir, env, "go build -race -o receiver .")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	recv := exec.Command(filepath.Join(dir, "receiver"))
	recv.Env = append(os.Environ(), "ADDR="+addr, "GORACE=halt_on_error=1 exitcode=66")
	var logs apptest.LogBuffer
	recv.Stderr = &logs
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- recv.Wait() }()
	t.Cleanup(func() { _ = recv.Process.Kill(); <-exited })
	waitUntil(t, "the receiver listens", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})

	hook := "http://" + addr + "/hooks/customerd"
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Appendf(nil, `{"id":"ev-%d","type":"Customer:Upserted","customerId":"c%d","data":{"email":"c%d@example.com"}}`, i, i, i)
			req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
			req.Header.Set(signature.Header, signature.Sign([]byte(secret[1]), time.Now(), body))
			if res, err := http.DefaultClient.Do(req); err == nil {
				_ = res.Body.Close()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("the receiver died under concurrent deliveries (%v):\n%.1500s", err, logs.String())
	case <-time.After(300 * time.Millisecond):
	}
	if bytes.Contains([]byte(logs.String()), []byte("DATA RACE")) {
		t.Fatalf("the receiver races:\n%.1500s", logs.String())
	}
}
