package config_test

import (
	"strings"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, env, err string
	}{
		{"a CIDR and an address are taken", "trustedProxies: [10.0.0.0/8, '::1']\ntenants: {acme: {}}", "", ""},
		{"the environment sets them, comma-separated", "", "10.0.0.0/8, 192.168.1.1", ""},
		{"a word is refused, naming the setting", "trustedProxies: [10.0.0.0/8, proxy]", "", "trustedProxies[1]"},
		{"a bad mask is refused", "trustedProxies: [10.0.0.0/33]", "", "trustedProxies[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.yaml, map[string]string{"CUSTOMERD_TRUSTED_PROXIES": tc.env})
			if tc.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if nets := cfg.TrustedNets(); len(nets) != 2 {
					t.Errorf("TrustedNets %v, want 2 ranges", nets)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one naming %s", err, tc.err)
			}
		})
	}
}

func TestNoTrustedProxiesByDefault(t *testing.T) {
	cfg, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TrustedNets()) != 0 {
		t.Fatalf("TrustedNets %v by default, want none", cfg.TrustedNets())
	}
}
