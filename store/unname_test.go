package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// An erasure looks for the accounts its customer's contacts left in the
// contact changes of its tenant by index, never by reading every event
// (PostgreSQL's plan: app TestRequestPathsUseIndexes).
func TestFindingTheAccountsAContactLeftReadsTheirIndexOnly(t *testing.T) {
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "u.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, _ := s.(*db).r.DB()
	for field, index := range map[string]string{"email": "events_previous_email", "phoneNumber": "events_previous_phone"} {
		rows, err := r.Query("EXPLAIN QUERY PLAN "+leftBy(false, field), "acme", "jane@example.com", "an-id")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if len(plan) == 0 || !strings.Contains(plan[0], "USING INDEX "+index+" (tenant_id=? AND <expr>=?)") {
			t.Errorf("%s: the accounts a contact left are read by %q, want %s", field, plan, index)
		}
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") {
				t.Errorf("%s: the lookup scans the events table:\n%s", field, strings.Join(plan, "\n"))
			}
		}
	}
}
