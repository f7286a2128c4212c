package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// A YAML mistake is named by its own line, in the configuration file and in
// a tenants file alike (the parser names where the block around it began:
// line 1 for a key indented wrong on line 40).
func TestAFileThatIsNotYAMLIsNamedByTheLineOfTheMistake(t *testing.T) {
	lines := []string{"tenants:"}
	for i := range 9 {
		lines = append(lines, fmt.Sprintf("  t%d:", i), "    defaultCountry: FR", "    otp:", "      maxAttempts: 5")
	}
	lines = append(lines, "  last:", "    defaultCountry: FR") // lines 38 and 39
	for _, c := range []struct{ name, line40 string }{
		{"a key indented wrong", "   defaultLanguage: fr"},
		{"a tab", "\tdefaultLanguage: fr"},
		{"an unclosed list", "    requiredFields: [firstName"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tenants.yaml")
			doc := strings.Join(append(lines, c.line40, "    tokenLifetime: 24h"), "\n") + "\n"
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			want := regexp.MustCompile(`: not YAML: [^\n]+ \(` + regexp.QuoteMeta(path) + `:40\)$`)
			if _, err := LoadTenants(path); err == nil || !want.MatchString(err.Error()) {
				t.Errorf("tenants apply: %v, want line 40", err)
			}
			if _, err := Load(path, func(string) string { return "" }); err == nil || !want.MatchString(err.Error()) {
				t.Errorf("serve: %v, want line 40", err)
			}
		})
	}
}
