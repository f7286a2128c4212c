package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

// First starts sharing a folder (two `make run` on one ./data) keep one
// secret: each uses the one secretFile holds once it is written, and a
// restart opens what they sealed. Found by an audit: each wrote its own over
// the other's, one could read another's half written, and one the database
// then refused removed the file: the secret that sealed a tenant was lost
// for good.
func TestFirstStartsSharingASecretFileKeepOneSecret(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			// The starts race: a few rounds, so that without the fix one fails all but surely.
			for range 5 {
				if firstStartsTogether(t, b.URL(t)); t.Failed() {
					return
				}
			}
		})
	}
}

// firstStartsTogether starts customerd 8 times at once on dbURL with one
// fresh secretFile; each seals a tenant, and each must open every other's.
func firstStartsTogether(t *testing.T, dbURL string) {
	ctx := context.Background()
	// Migrated beforehand: this is about the secret, not the schema.
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	data := filepath.Join(t.TempDir(), "data")
	const starts = 8
	var (
		wg    sync.WaitGroup
		ready = make(chan struct{})
		apps  [starts]*app.App
		errs  [starts]error
	)
	for i := range starts {
		cfg := secretFileConfig(t, dbURL, data)
		wg.Go(func() {
			<-ready
			// Without the demo tenant, which the starts would create together
			// (store.ErrConflict): each seals a tenant of its own instead.
			if apps[i], errs[i] = app.New(ctx, cfg, discard(), app.WithoutConfigTenants()); errs[i] == nil {
				_, errs[i] = apps[i].Catalog.Create(ctx, fmt.Sprintf("shop%d", i), map[string]any{})
			}
		})
	}
	close(ready)
	wg.Wait()
	for i, a := range apps {
		if errs[i] != nil {
			t.Errorf("a first start: %v", errs[i])
			continue
		}
		// Each opens what every other sealed: they share one secret.
		if _, err := a.Catalog.List(ctx, "", starts); err != nil {
			t.Errorf("a first start's secret does not open the tenants the others sealed: %v", err)
		}
	}
	for _, a := range apps {
		if a != nil {
			_ = a.Close()
		}
	}
	a, err := app.New(ctx, secretFileConfig(t, dbURL, data), discard())
	if err != nil {
		t.Fatalf("a restart: %v", err)
	}
	_ = a.Close()
	if files, _ := os.ReadDir(data); len(files) != 1 {
		t.Errorf("the data folder holds %v, want the secret alone", files)
	}
}

// A start that generated a secret and then finds the database sealed with
// another removes its own, never one put there since: here the operator
// puts the lost secret back while the start connects. Found by an audit: it
// removed whatever the path held, another start's secret or the one restored.
// PostgreSQL only: the start is held on its way to the database.
func TestAFailedFirstStartRemovesNoSecretItDidNotWrite(t *testing.T) {
	ctx := context.Background()
	dbURL := storetest.PostgresURL(t)
	data := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(data, "secret")
	a, err := app.New(ctx, secretFileConfig(t, dbURL, data), discard()) // the demo tenant sealed with the secret generated
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	lost, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	held, release := heldPostgres(t, dbURL)
	failed := make(chan error, 1)
	go func() {
		a, err := app.New(ctx, secretFileConfig(t, held, data), discard())
		if err == nil {
			_ = a.Close()
		}
		failed <- err
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) { // a guard, not a measure
		if _, err := os.Stat(path); err == nil {
			break // the start generated a secret of its own and kept it
		} else if time.Now().After(deadline) {
			t.Fatal("the start kept no secret")
		}
	}
	if err := os.WriteFile(path, lost, 0o600); err != nil { // put back, as cp does
		t.Fatal(err)
	}
	release()
	if err := <-failed; !errors.Is(err, store.ErrWrongSecret) {
		t.Fatalf("a start with a new secret over the lost one's database: %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, lost) {
		t.Fatalf("the secret put back is gone (%v): %q", err, got)
	}
	a, err = app.New(ctx, secretFileConfig(t, dbURL, data), discard())
	if err != nil {
		t.Fatalf("a start with the secret put back: %v", err)
	}
	_ = a.Close()
}

// secretFileConfig is the demo set-up on dbURL with the secret kept in data.
func secretFileConfig(t *testing.T, dbURL, data string) *config.Config {
	cfg := apptest.Config(t, dbURL, "")
	cfg.Secret, cfg.SecretFile = "", filepath.Join(data, "secret")
	return cfg
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// heldPostgres is dbURL through a local TCP proxy that holds every
// connection until release.
func heldPostgres(t *testing.T, dbURL string) (held string, release func()) {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	target, released := u.Host, make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				<-released
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer func() { _ = up.Close() }()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	u.Host = ln.Addr().String()
	return u.String(), sync.OnceFunc(func() { close(released) })
}
