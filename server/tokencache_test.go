package server_test

import (
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
)

// A cached token stands for a verified signature, never for the account:
// the account read that follows decides, so a deleted account's token is a
// 401 even when the cache knows it. The cache's hits show on /metrics.
func TestATokenInTheCacheIsNotTheAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "cached@example.com")
		for range 3 {
			customerOf(t, env, "demo", tok)
		}
		c := stored(t, env, "demo", "cached@example.com")
		if err := env.App.Store.DeleteCustomer(ctx, "demo", c.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		r := rawCall(t, env, http.MethodGet, "/api/demo/customer", nil, "Authorization", "Bearer "+tok)
		mustProblem(t, r, http.StatusUnauthorized, tok)

		rec := metricsOf(t, env)
		for _, m := range []string{"customerd_token_cache_hits_total 3", "customerd_token_cache_entries 1", "customerd_token_cache_bytes"} {
			if !strings.Contains(rec, m) {
				t.Errorf("/metrics lacks %q", m)
			}
		}
	})
}

// metricsOf is what the metrics listener serves.
func metricsOf(t *testing.T, env *apptest.Env) string {
	t.Helper()
	w := httptest.NewRecorder()
	env.App.Metrics.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return w.Body.String()
}
