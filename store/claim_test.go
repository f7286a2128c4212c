package store

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The outbox poll reads the undelivered events by their partial index on
// SQLite, never the whole table: every delivered event stays in it, and the
// poll runs on the one writer every second.
func TestClaimingEventsReadsOnlyUndeliveredOnes(t *testing.T) {
	plan := sqlitePlan(t, tempSQLite(t), claimDue, "2026-01-01", "2026-01-01", 32)
	if len(plan) == 0 || !strings.Contains(plan[0], "USING INDEX events_due") {
		t.Fatalf("the claim reads events by %q, want the events_due index; plan:\n%s", plan, strings.Join(plan, "\n"))
	}
	for _, step := range plan {
		if strings.HasPrefix(step, "SCAN") {
			t.Fatalf("the claim scans the events table:\n%s", strings.Join(plan, "\n"))
		}
	}
	// An earlier undelivered event of the same customer is looked up by the
	// customer's id, the first column of events_customer.
	if !slices.ContainsFunc(plan, func(step string) bool {
		return strings.Contains(step, "USING INDEX events_customer (customer_id=? AND seq<?)")
	}) {
		t.Fatalf("the claim does not find a customer's earlier events by events_customer; plan:\n%s", strings.Join(plan, "\n"))
	}
}

// tempSQLite is a new SQLite store in a temporary folder, closed with the test.
func tempSQLite(t *testing.T) *db {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*db)
}

// sqlitePlan is SQLite's plan of query with args, a step a line.
func sqlitePlan(t *testing.T, s *db, query string, args ...any) []string {
	t.Helper()
	r, _ := s.r.DB()
	rows, err := r.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return plan
}

// The janitor's statements find what they delete by index, a batch at a
// time, never by reading a whole table: on SQLite they hold the one writer,
// and a scan of 30 days of delivered events held it for 0.4 s at 600,000
// of them, every hour, with nothing to delete.
func TestThePurgeReadsByIndexABatchAtATime(t *testing.T) {
	s := tempSQLite(t)
	for _, q := range purges(Cutoffs{CounterDays: "2026-01-01"}) {
		if !strings.Contains(q.sql, "LIMIT ?") {
			t.Errorf("%s is not a batch:\n%s", q.table, q.sql)
		}
		plan := sqlitePlan(t, s, q.sql, q.before, purgeBatch)
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") {
				t.Errorf("the purge of %s scans a table:\n%s\n%s", q.table, q.sql, strings.Join(plan, "\n"))
			}
		}
	}
	// The delivered events' walk goes by seq, a range at a time.
	for _, q := range []struct {
		sql  string
		args []any
	}{{purgeWalk, []any{0, purgeBatch}}, {purgeDeliveredRange, []any{0, 1000, time.Now(), time.Now()}}} {
		plan := sqlitePlan(t, s, q.sql, q.args...)
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") {
				t.Errorf("the walk of the delivered events scans a table:\n%s\n%s", q.sql, strings.Join(plan, "\n"))
			}
		}
		// A contact change's earlier events are its customer's, by events_customer.
		if q.sql == purgeDeliveredRange && !slices.ContainsFunc(plan, func(step string) bool {
			return strings.Contains(step, "USING INDEX events_customer (customer_id=? AND seq<?)")
		}) {
			t.Errorf("the purge does not find a contact change's earlier events by events_customer; plan:\n%s", strings.Join(plan, "\n"))
		}
	}
}
