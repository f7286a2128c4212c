package main_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A secret generated into secretFile is generated once: when the file is
// gone but the database already holds what the lost secret sealed, serve
// refuses to start, saying why, and keeps no new secret. Found by an audit:
// it generated another and answered 500 to every request of the tenants it
// could no longer open.
func TestALostSecretFileIsNotReplacedSilently(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CUSTOMERD_ADDR": "127.0.0.1:0", "CUSTOMERD_METRICS_ADDR": "127.0.0.1:0", "CUSTOMERD_ADMIN_ADDR": "127.0.0.1:0"}
	s, _ := startServe(t, dir, env) // demo: ./data/secret generated, the demo tenant sealed with it
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.wait(t)
	if err := os.Remove(filepath.Join(dir, "data", "secret")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard: serve would not exit
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir, cmd.Env = dir, environ(env)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the secret does not open what is sealed in this database") {
		t.Fatalf("serve with a new secret over a database sealed with the lost one: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "secret")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the secret serve generated before it refused is still there: %v", err)
	}
}
