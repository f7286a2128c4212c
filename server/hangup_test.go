package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// Found by an audit: a client that hangs up before its answer cancels its
// request's context, and what was waiting on it (the database, the tenant's
// first build) failed with context.Canceled: a 503 logged at error level and
// counted with the server's failures. Anyone could fill the error log and
// the 5xx series (and their alerts) with one connection a request. The
// client's own doing is logged at debug level and counted as 499.
func TestAClientThatHangsUpIsNoServerFailure(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		gone, hangUp := context.WithCancel(context.Background())
		hangUp()
		for _, r := range []*http.Request{
			httptest.NewRequest(http.MethodGet, "/readyz", nil),
			httptest.NewRequest(http.MethodPost, "/api/demo/customer/authenticate?provider=otp", strings.NewReader(`{"email":"gone@example.com"}`)),
		} {
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			env.App.Handler.ServeHTTP(w, r.WithContext(gone))
			if w.Code < 500 {
				continue // answered before anything waited on the context
			}
			if w.Code != http.StatusServiceUnavailable {
				t.Errorf("%s %s: %d, want 503 (which nobody reads)", r.Method, r.URL, w.Code)
			}
		}
		for _, l := range env.Logs.Lines() {
			if l["level"] == "ERROR" {
				t.Errorf("a client that hung up is logged as a failure: %v", l)
			}
		}
		m := metricsOf(t, env)
		if strings.Contains(m, `code="503"`) {
			t.Errorf("a client that hung up is counted as a 503:\n%s", grepLines(m, `code="503"`))
		}
		if !strings.Contains(m, `code="499"`) {
			t.Errorf("a client that hung up is not counted as 499")
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
