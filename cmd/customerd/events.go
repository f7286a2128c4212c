package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

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
	NextAt      *time.Time `json:"nextAt,omitempty"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
	DeadAt      *time.Time `json:"deadAt,omitempty"`
	ReplayedAt  *time.Time `json:"replayedAt,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
}

const eventsListHelp = `
The fields, oldest event first (at most --limit of them):
  id           the event's id: the X-Customerd-Event-Id of its deliveries
  seq          its place in the outbox; one customer's events go out in this order
  tenant, customer, type
  createdAt    when the change happened
  attempts     deliveries tried since it was created or last replayed
  nextAt       when the next attempt is due (undelivered events)
  deliveredAt  when an endpoint acknowledged it (2xx)
  deadAt       when it was given up: webhooks.maxAge after createdAt or replayedAt
  replayedAt   when 'customerd events replay' last made it due again
  lastError    why the last attempt failed`

func eventsListCommand(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	failed := fs.Bool("failed", false, "only the dead events")
	tenant := fs.String("tenant", "", "only this `TENANT`'s events")
	limit := fs.Int("limit", 10000, "at most `N` events")
	return func(ctx context.Context, e *env, _ []string) error {
		if *limit < 1 {
			return usagef("--limit %d: want at least 1", *limit)
		}
		s, err := openEvents(ctx, e, *tenant)
		if err != nil {
			return err
		}
		defer s.Close()
		evs, err := s.Events(ctx, store.EventQuery{Tenant: *tenant, Failed: *failed, Limit: *limit})
		if err != nil {
			return err
		}
		enc := json.NewEncoder(e.stdout)
		for _, ev := range evs {
			line := eventLine{ID: ev.ID, Seq: ev.Seq, Tenant: ev.TenantID, Customer: ev.CustomerID, Type: ev.Type,
				CreatedAt: ev.CreatedAt, Attempts: ev.Attempts, DeliveredAt: ev.DeliveredAt, DeadAt: ev.DeadAt,
				ReplayedAt: ev.ReplayedAt, LastError: ev.LastError}
			if ev.DeliveredAt == nil && ev.DeadAt == nil {
				line.NextAt = &ev.NextAt
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		return nil
	}
}

const eventsReplayHelp = `
Every named event must exist (of --tenant, when given) and be dead, or
nothing is replayed. A replayed event is delivered again with a new retry
window: webhooks.maxAge counts from the replay. Without IDs, every dead
event (of --tenant) is replayed. An event of a customer erased since it was
written stays dead (it would arrive after the Customer:Deleted): the count
printed leaves it out. A running serve picks them up.`

func eventsReplayCommand(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	tenant := fs.String("tenant", "", "only this `TENANT`'s events")
	return func(ctx context.Context, e *env, ids []string) error {
		s, err := openEvents(ctx, e, *tenant)
		if err != nil {
			return err
		}
		defer s.Close()
		if len(ids) > 0 {
			if err := replayable(ctx, s, *tenant, ids); err != nil {
				return err
			}
		}
		n, err := s.ReplayEvents(ctx, *tenant, ids, time.Now())
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%d dead events will be delivered again\n", n)
		return err
	}
}

// replayable fails, naming them, unless every id is a dead event (of tenant).
func replayable(ctx context.Context, s store.Store, tenant string, ids []string) error {
	found, err := s.Events(ctx, store.EventQuery{Tenant: tenant, IDs: ids, Limit: len(ids)})
	if err != nil {
		return err
	}
	var unknown, alive []string
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		i := slices.IndexFunc(found, func(ev store.Event) bool { return ev.ID == id })
		switch {
		case i < 0:
			unknown = append(unknown, id)
		case found[i].DeadAt == nil:
			alive = append(alive, id)
		}
	}
	var problems []string
	if len(unknown) > 0 {
		of := ""
		if tenant != "" {
			of = " of tenant " + tenant
		}
		problems = append(problems, fmt.Sprintf("no such event%s: %s", of, strings.Join(unknown, " ")))
	}
	if len(alive) > 0 {
		problems = append(problems, "not dead (delivered or still being retried): "+strings.Join(alive, " "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing replayed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// openEvents loads the configuration and opens the existing database for an
// events command; tenant, when set, must be the file's or the database's.
func openEvents(ctx context.Context, e *env, tenant string) (store.Store, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	s, err := openExisting(ctx, cfg, logger(cfg.Log, e.stderr))
	if err != nil || tenant == "" {
		return s, err
	}
	rows, ok := s.(tenantRows)
	if !ok {
		_ = s.Close()
		return nil, fmt.Errorf("database: %T keeps no tenants", s)
	}
	ids, err := tenantIDs(ctx, cfg, rows)
	if err == nil && !slices.Contains(ids, tenant) {
		have := fmt.Sprint(ids)
		if len(ids) > 20 {
			have = fmt.Sprintf("%v … (%d in all)", ids[:20], len(ids))
		}
		err = fmt.Errorf("unknown tenant %q, have %s", tenant, have)
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}
