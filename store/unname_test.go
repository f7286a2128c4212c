package store

import (
	"strings"
	"testing"
)

// An erasure looks for the accounts its customer's contacts left in the
// contact changes of its tenant by index, never by reading every event
// (PostgreSQL's plan: app TestRequestPathsUseIndexes).
func TestFindingTheAccountsAContactLeftReadsTheirIndexOnly(t *testing.T) {
	s := tempSQLite(t)
	for field, index := range map[string]string{"email": "events_previous_email", "phoneNumber": "events_previous_phone"} {
		plan := sqlitePlan(t, s, leftBy(false, field), "acme", "jane@example.com", "an-id")
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
