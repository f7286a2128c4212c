package config_test

import (
	"strings"
	"testing"
)

// A trusted range that holds every address trusts whatever a client writes
// in X-Forwarded-For: the access log's remote and the webhook provider's
// X-Customerd-Client-Address become the client's to choose, in the file or
// in CUSTOMERD_TRUSTED_PROXIES alike.
func TestATrustedProxyRangeOfEveryAddressIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, yaml, env, path string }{
		{"0.0.0.0/0 in the file", "trustedProxies: [10.0.0.0/8, 0.0.0.0/0]\ntenants: {acme: {}}", "", "trustedProxies[1]"},
		{"::/0 in the file", "trustedProxies: ['::/0']\ntenants: {acme: {}}", "", "trustedProxies[0]"},
		{"every IPv4 address spelt as IPv6", "trustedProxies: ['::ffff:0:0/96']\ntenants: {acme: {}}", "", "trustedProxies[0]"},
		{"0.0.0.0/0 in the environment", "tenants: {acme: {}}", "0.0.0.0/0", "trustedProxies[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, map[string]string{"CUSTOMERD_TRUSTED_PROXIES": tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("error %v, want one naming %s", err, tc.path)
			}
		})
	}
}
