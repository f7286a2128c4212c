package admin_test

import (
	"net/http"
	"testing"

	"github.com/customerd/customerd/store/storetest"
)

// README, Limits: "a Content-Encoding other than identity is 415": the
// admin listener reads bodies too (tenant settings, with their secrets).
func TestTheAdminListenerReadsNoBodyUnderAContentCoding(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, _ := start(t, dbURL, "")
		a := env.Admin(t)
		key := a.Key(t, "*")
		res, _ := call(t, a.HTTP, http.MethodPost, a.Server.URL+"/admin/tenants", `{"id":"gz","settings":{}}`,
			"Content-Encoding", "gzip", "Authorization", "Bearer "+key)
		if res.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("a body sent as gzip that is not: %d, want 415 (read as identity)", res.StatusCode)
		}
	})
}

// README, Security model: "Every answer but the contract, its reference and
// the public keys carries Cache-Control: no-store". The admin API answers
// tenants' settings and customers' profiles and exports.
func TestAdminAnswersAreNotStored(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, _ := start(t, dbURL, "")
		a := env.Admin(t)
		res, _ := call(t, a.HTTP, http.MethodGet, a.Server.URL+"/admin/tenants/demo", "", "Authorization", "Bearer "+a.Key(t, "*"))
		if cc := res.Header.Get("Cache-Control"); res.StatusCode != http.StatusOK || cc != "no-store" {
			t.Fatalf("GET /admin/tenants/demo: %d, Cache-Control %q, want no-store", res.StatusCode, cc)
		}
	})
}
