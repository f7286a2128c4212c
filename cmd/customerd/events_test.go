package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
)

func TestEventsListFailedAndReplay(t *testing.T) {
	ctx := context.Background()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	cfg, err := config.Load("", func(k string) string {
		return map[string]string{"CUSTOMERD_DATABASE_URL": dbURL, "CUSTOMERD_SECRET": strings.Repeat("x", 40)}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, id := range []string{"e1", "e2"} {
		if err := s.AddEvent(ctx, &store.Event{ID: id, TenantID: "demo", CustomerID: id, Type: "Customer:Upserted", Payload: "{}", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EventFailed(ctx, "e1", now, true, "https://crm.example answered 410"); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	log := slog.New(slog.DiscardHandler)

	run := func(sub string, failed bool, ids ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := events(ctx, cfg, log, sub, "demo", failed, ids, &out); err != nil {
			t.Fatalf("events %s: %v", sub, err)
		}
		return out.String()
	}
	if out := run("list", false); strings.Count(out, "\n") != 2 {
		t.Fatalf("list: %s", out)
	}
	out := run("list", true)
	var line eventLine
	if err := json.Unmarshal([]byte(out), &line); err != nil || line.ID != "e1" || line.DeadAt == nil || line.LastError == "" {
		t.Fatalf("list --failed: %v %s", err, out)
	}
	if out := run("replay", false, "e1"); !strings.HasPrefix(out, "1 ") {
		t.Fatalf("replay: %s", out)
	}
	if out := run("list", true); out != "" {
		t.Fatalf("still failed after replay: %s", out)
	}
	if err := events(ctx, cfg, log, "list", "nope", false, nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown tenant: %v", err)
	}
}
