package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// laughs is a tenants file of a few KB whose aliases expand to n³ settings:
// n tenants, each the same n webhook endpoints, each the same n event types.
func laughs(n int) string {
	var b strings.Builder
	b.WriteString("tenants:\n  t0: &t\n    webhooks:\n      endpoints:\n")
	b.WriteString("        - &ep {url: \"https://hooks.example.com/x\", secret: \"0123456789abcdef0123\", events: [" +
		strings.TrimSuffix(strings.Repeat("Customer:Created,", n), ",") + "]}\n")
	for range n - 1 {
		b.WriteString("        - *ep\n")
	}
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  t%d: *t\n", i)
	}
	return b.String()
}

// A YAML file whose aliases expand without bound (a "billion laughs") is
// refused as the YAML decoder refuses it, at the cost of reading the file:
// the settings check must not walk every expansion first. At n=120 the file
// is 4 KB; at n=1000 (31 KB) the walk would take 10⁹ steps and every byte of
// memory, for serve, config check and tenants apply alike.
func TestAliasesDoNotExpandBeforeTheCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, []byte(laughs(120)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, load := range []struct {
		name string
		fn   func() error
	}{
		{"tenants apply", func() error { _, err := LoadTenants(path); return err }},
		{"serve", func() error { _, err := Load(path, func(string) string { return "" }); return err }},
	} {
		t.Run(load.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := load.fn()
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), "aliasing") {
				t.Errorf("error %v, want excessive aliasing", err)
			}
			if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 32 {
				t.Errorf("reading a 4 KB file allocated %d MB", mb)
			}
		})
	}
}

// A file with two tenants: blocks is not YAML that serve reads (a key
// defined twice); tenants apply must not quietly apply the second one only.
func TestATenantsFileWithTwoTenantsBlocksIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	doc := "tenants:\n  shop:\n    defaultCountry: BE\ntenants:\n  shop:\n    defaultCountry: FR\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, func(string) string { return "" }); err == nil {
		t.Fatalf("serve reads the file")
	}
	if tenants, err := LoadTenants(path); err == nil {
		t.Fatalf("tenants apply reads the file: shop.defaultCountry %s", tenants["shop"].DefaultCountry)
	}
}
