package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
)

// eventLine is one event as `customerd events list` prints it (JSON lines).
type eventLine struct {
	ID          string     `json:"id"`
	Seq         int64      `json:"seq"`
	Tenant      string     `json:"tenant"`
	Customer    string     `json:"customer"`
	Type        string     `json:"type"`
	CreatedAt   time.Time  `json:"createdAt"`
	Attempts    int        `json:"attempts"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
	DeadAt      *time.Time `json:"deadAt,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
}

// events runs `customerd events list [--failed] [--tenant T]` and
// `customerd events replay [--tenant T] [ID...]` (every dead event when no ID is given).
func events(ctx context.Context, cfg *config.Config, log *slog.Logger, sub, tenant string, failed bool, ids []string, out io.Writer) error {
	if tenant != "" {
		if _, ok := cfg.Tenants[tenant]; !ok {
			return fmt.Errorf("unknown tenant %q", tenant)
		}
	}
	if sub != "list" && sub != "replay" {
		return errors.New("usage: customerd events list [--failed] [--tenant T] | customerd events replay [--tenant T] [ID...]")
	}
	if sub == "list" && len(ids) > 0 {
		return errors.New("usage: customerd events list [--failed] [--tenant T]")
	}
	s, err := store.Open(ctx, cfg.Database.URL, store.Options{Logger: log})
	if err != nil {
		return err
	}
	defer s.Close()
	if sub == "replay" {
		n, err := s.ReplayEvents(ctx, tenant, ids, time.Now())
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%d dead events will be delivered again\n", n)
		return err
	}
	evs, err := s.Events(ctx, store.EventQuery{Tenant: tenant, Failed: failed, Limit: 10000})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for _, e := range evs {
		if err := enc.Encode(eventLine{ID: e.ID, Seq: e.Seq, Tenant: e.TenantID, Customer: e.CustomerID, Type: e.Type,
			CreatedAt: e.CreatedAt, Attempts: e.Attempts, DeliveredAt: e.DeliveredAt, DeadAt: e.DeadAt, LastError: e.LastError}); err != nil {
			return err
		}
	}
	return nil
}
