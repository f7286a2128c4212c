package server_test

import (
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"testing"

	"github.com/customerd/customerd/app/apptest"
)

// The access log's remote is the TCP peer unless the peer is a configured
// trusted proxy: a client cannot name itself with X-Forwarded-For.
func TestClientAddress(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		for _, tc := range []struct {
			name    string
			proxies string // the trustedProxies setting
			header  []string
			remote  string
		}{
			{"X-Forwarded-For from a client that is no proxy is ignored", "",
				[]string{"X-Forwarded-For", "1.2.3.4"}, "127.0.0.1"},
			{"X-Real-IP is never read", "",
				[]string{"X-Real-IP", "1.2.3.4"}, "127.0.0.1"},
			{"loopback is not trusted unless configured", "[10.0.0.0/8]",
				[]string{"X-Forwarded-For", "1.2.3.4"}, "127.0.0.1"},
			{"a trusted proxy names the client", "[127.0.0.1/32]",
				[]string{"X-Forwarded-For", "1.2.3.4"}, "1.2.3.4"},
			{"a trusted proxy given as an address names the client", "[127.0.0.1]",
				[]string{"X-Forwarded-For", "1.2.3.4"}, "1.2.3.4"},
			{"the nearest untrusted hop is the client, not what it was told", "[127.0.0.0/8, 10.0.0.0/8]",
				[]string{"X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.1.2.3"}, "1.2.3.4"},
			{"a malformed hop behind a trusted proxy leaves the peer", "[127.0.0.1/32]",
				[]string{"X-Forwarded-For", "1.2.3.4, not-an-address"}, "127.0.0.1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				yaml := "tenants:\n  demo: {}\n" // a file declares its tenants
				if tc.proxies != "" {
					yaml += "trustedProxies: " + tc.proxies + "\n"
				}
				env := apptest.Start(t, dbURL, yaml)
				r := rawCall(t, env, http.MethodGet, "/healthz", nil, tc.header...)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("healthz → %d", r.StatusCode)
				}
				id := r.Header.Get("X-Request-Id")
				found := false
				for _, line := range env.Logs.Lines() {
					if line["msg"] == "request" && line["request_id"] == id {
						found = true
						if line["remote"] != tc.remote {
							t.Errorf("remote %v, want %s", line["remote"], tc.remote)
						}
					}
				}
				if !found {
					t.Fatalf("no access log line for request %s", id)
				}
			})
		}
	})
}
