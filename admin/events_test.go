package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerd/customerd/store/storetest"
)

// A tenant deleted and created again serves its customers and events again
// (README, Tenants): an event still owed to its webhooks when it was deleted
// is not marked delivered meanwhile. It is delivered once the tenant is back,
// or at least stays where `customerd events replay` can reach it.
func TestADeletedTenantsPendingEventsAreNotLost(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		var up atomic.Bool
		var mu sync.Mutex
		var got []string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !up.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var e map[string]any
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &e)
			mu.Lock()
			got = append(got, e["id"].(string))
			mu.Unlock()
		}))
		t.Cleanup(hook.Close)
		env, root := start(t, dbURL, "")
		js := `{"webhooks": {"endpoints": [{"url": "` + hook.URL + `", "secret": "0123456789abcdef", "allowPrivateNetwork": true}],
			"retryBase": "1ms", "retryMax": "2ms"}}`
		create(t, root, "acme", js)
		env.SignIn(t, "acme", "ann@example.com")
		evs, _ := env.App.Store.Events(ctx, storeEvents("acme"))
		if len(evs) == 0 {
			t.Fatal("no event")
		}
		if _, err := env.App.Events.Once(ctx); err != nil { // the receiver is down: retried
			t.Fatal(err)
		}
		if r, _ := root.DeleteTenantWithResponse(ctx, "acme", nil); r.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %s", r.Body)
		}
		time.Sleep(10 * time.Millisecond)
		if _, err := env.App.Events.Once(ctx); err != nil {
			t.Fatal(err)
		}
		create(t, root, "acme", js)
		up.Store(true)
		for range 5 {
			time.Sleep(10 * time.Millisecond)
			if _, err := env.App.Events.Once(ctx); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		after, _ := env.App.Store.Events(ctx, storeEvents("acme"))
		for _, e := range after {
			delivered := false
			for _, id := range got {
				delivered = delivered || id == e.ID
			}
			if !delivered && e.DeadAt == nil && e.DeliveredAt != nil {
				t.Errorf("event %s (%s) is marked delivered at %v, yet no endpoint ever acknowledged it (nor can it be replayed): lost while the tenant was deleted",
					e.ID, e.Type, e.DeliveredAt)
			}
		}
	})
}
