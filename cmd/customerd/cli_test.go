package main_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/customerd/customerd/store"
)

var commandNames = []string{"serve", "migrate", "events list", "events replay", "rotate-key", "tenants apply", "admin-key create",
	"admin-key list", "admin-key revoke", "config check", "version", "help"}

func TestHelpListsEveryCommandAndExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"--config", "x.yaml", "--help"}, {"help", "--help"}} {
		r := customerd(t, t.TempDir(), nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("customerd %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, name := range commandNames {
			if !strings.Contains(r.stdout, "\n  "+name) {
				t.Errorf("customerd %v does not list %q:\n%s", args, name, r.stdout)
			}
		}
	}
}

func TestEveryCommandHasItsOwnHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--help"}, "Usage: customerd serve [flags]"},
		{[]string{"migrate", "-h"}, "Usage: customerd migrate [flags]"},
		{[]string{"events", "list", "--help"}, "--failed"},
		{[]string{"--config", "x.yaml", "events", "list", "--help"}, "deadAt"},
		{[]string{"events", "replay", "--help"}, "Usage: customerd events replay [ID…] [flags]"},
		{[]string{"rotate-key", "--help"}, "Usage: customerd rotate-key TENANT [flags]"},
		{[]string{"config", "check", "--help"}, "FILE:LINE"},
		{[]string{"version", "--help"}, "Usage: customerd version [flags]"},
		{[]string{"help", "events", "replay"}, "new retry"},
		{[]string{"tenants", "apply", "--help"}, "\n  -f FILE "},
	} {
		r := customerd(t, t.TempDir(), nil, c.args...)
		if r.code != 0 || !strings.Contains(r.stdout, c.want) || !strings.Contains(r.stdout, "--config FILE") {
			t.Errorf("customerd %v: exit %d, want %q and --config in:\n%s%s", c.args, r.code, c.want, r.stdout, r.stderr)
		}
	}
}

func TestABadCommandLineIsAUsageError(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"evnts", "list"}, `unknown command "evnts", did you mean events?`},
		{[]string{"events"}, "events needs a command: list or replay"},
		{[]string{"events", "list", "--bogus"}, "customerd events list: unknown flag --bogus\n"},
		{[]string{"events", "lst"}, `unknown command "events lst", did you mean events list?`},
		{[]string{"events", "list", "--tenant"}, "--tenant needs a value"},
		{[]string{"events", "list", "--limit", "-1"}, "customerd events list: --limit -1: want at least 1\n"},
		{[]string{"--confg", "x.yaml"}, "customerd: unknown flag --confg, did you mean --config?"},
		{[]string{"tenants", "apply", "-f", "x.yaml", "--dryrun"}, "unknown flag --dryrun, did you mean --dry-run?"},
		{[]string{"rotate-key"}, "customerd rotate-key: want one tenant id, got 0 arguments\n"},
		{[]string{"config", "check", "extra"}, "customerd config check: takes no arguments, got [\"extra\"]\n"},
		{[]string{"--bogus"}, "customerd: unknown flag --bogus\n"},
		{[]string{"help", "nope"}, `unknown command "nope"`},
	} {
		r := customerd(t, t.TempDir(), nil, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "listening") {
			t.Errorf("customerd %v: exit %d, want 2 and %q in:\n%s", c.args, r.code, c.want, r.stderr)
		}
	}
}

func TestVersionComesFromTheBuild(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"version", "--config", "nowhere.yaml"}} {
		r := customerd(t, t.TempDir(), nil, args...)
		if r.code != 0 {
			t.Fatalf("customerd %v: exit %d: %s", args, r.code, r.stderr)
		}
		for _, want := range []string{"customerd ", "module  github.com/customerd/customerd", "go      " + runtime.Version()} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("customerd %v lacks %q:\n%s", args, want, r.stdout)
			}
		}
		// The commit is the checkout's when the build could stamp it (a .git
		// folder: Go does not stamp from a git worktree's .git file).
		if fi, err := os.Stat("../../.git"); err == nil && fi.IsDir() {
			head, err := exec.Command("git", "rev-parse", "HEAD").Output()
			if err == nil && !strings.Contains(r.stdout, "commit  "+strings.TrimSpace(string(head))) {
				t.Errorf("customerd %v does not show commit %s:\n%s", args, head, r.stdout)
			}
		} else if !strings.Contains(r.stdout, "commit  unknown") {
			t.Errorf("customerd %v:\n%s", args, r.stdout)
		}
	}
}

// Global flags go before or after the command; either way the command runs
// and nothing listens (the port it would take is held here).
func TestFlagsGoBeforeOrAfterTheCommand(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := writeConfig(t, dir, "addr: "+busy.Addr().String()+"\ndatabase:\n  url: sqlite://"+dir+"/c.db\ntenants:\n  acme: {}\n")
	env := map[string]string{"CUSTOMERD_SECRET": secret}
	if r := customerd(t, dir, env, "migrate", "--config", cfg); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"--config", cfg, "events", "list", "--failed"},
		{"events", "list", "--failed", "--config", cfg},
		{"events", "list", "--config=" + cfg, "--failed", "--tenant", "acme"},
		{"--config", cfg, "events", "replay", "--tenant", "acme"},
		{"events", "replay", "--config", cfg},
	} {
		r := customerd(t, dir, env, args...)
		if r.code != 0 || strings.Contains(r.stderr, "listening") || strings.Contains(r.stderr, "address already in use") {
			t.Errorf("customerd %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	// The file's one tenant is acme: a flag after the command was read.
	r := customerd(t, dir, env, "events", "list", "--tenant", "demo", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, `unknown tenant "demo", have [acme]`) {
		t.Fatalf("--config after the command ignored: %d %s", r.code, r.stderr)
	}
	// CUSTOMERD_CONFIG is the default of --config.
	r = customerd(t, dir, map[string]string{"CUSTOMERD_SECRET": secret, "CUSTOMERD_CONFIG": cfg}, "events", "list", "--tenant", "acme")
	if r.code != 0 {
		t.Fatalf("CUSTOMERD_CONFIG: %d %s", r.code, r.stderr)
	}
}

// A command other than serve and migrate run where there is no database
// says so and creates nothing.
func TestCommandsOtherThanServeNeverCreateADatabase(t *testing.T) {
	for _, args := range [][]string{{"events", "list", "--failed"}, {"events", "replay"}, {"events", "replay", "e1"}, {"rotate-key", "demo"}} {
		for _, withFolder := range []bool{false, true} {
			dir := t.TempDir()
			// A relative path says where it leads from the working directory.
			want := "sqlite://./data/customerd.db: its folder " + filepath.Join(dir, "data") + " does not exist"
			if withFolder {
				if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
					t.Fatal(err)
				}
				want = "sqlite://./data/customerd.db: the file " + filepath.Join(dir, "data", "customerd.db") + " does not exist"
			}
			r := customerd(t, dir, nil, args...)
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("customerd %v (data folder %v): exit %d, want %q in %s", args, withFolder, r.code, want, r.stderr)
			}
			if strings.Contains(r.stderr, "log sender") || strings.Contains(r.stderr, "demo mode") {
				t.Errorf("customerd %v warns as serve does: %s", args, r.stderr)
			}
			var found []string
			_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, _ error) error {
				if !d.IsDir() {
					found = append(found, p)
				}
				return nil
			})
			if len(found) > 0 {
				t.Errorf("customerd %v created %v", args, found)
			}
		}
	}
}

func TestConfigCheckPrintsEveryProblemWithItsSource(t *testing.T) {
	// An issuer that fails the test if anything calls it: the check is offline.
	var calls atomic.Int32
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer issuer.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `database:
  url: mysql://x
tenants:
  acme:
    defaultCountry: FR
    providers:
      google:
        type: google
      corp:
        type: oidc
        issuer: `+issuer.URL+`
        clientIds: [corp-app]
        clientID: corp-app
    senders:
      email:
        type: smtp
        smtp:
          host: smtp.acme.example
          from: not an address
`)
	r := customerd(t, dir, map[string]string{"CUSTOMERD_SECRET": "short"}, "config", "check", "--config", cfg)
	want := cfg + `: 5 problems
  database.url: "mysql://x" is not postgres://… or sqlite://PATH (` + cfg + `:2)
  CUSTOMERD_SECRET: must be at least 32 characters (openssl rand -hex 32 makes one)
  tenants.acme.senders.email.smtp.from: "not an address" is not an RFC 5322 address: mail: no angle-addr (` + cfg + `:19)
  tenants.acme.providers.corp.clientID: unknown setting, did you mean clientIds? (` + cfg + `:13)
  tenants.acme.providers.google.clientIds: required, one per platform (` + cfg + `:7)
`
	if r.code != 1 || r.stdout != want {
		t.Fatalf("config check: exit %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}
	if calls.Load() != 0 {
		t.Fatalf("config check called the issuer %d times", calls.Load())
	}

	// Unknown settings and values of the wrong kind, with their lines.
	bad := writeConfig(t, dir, "tenants:\n  acme:\n    defaultCountyr: FR\n    otp: {maxAttempts: many}\n")
	r = customerd(t, dir, map[string]string{"CUSTOMERD_SECRET": secret}, "--config", bad, "config", "check")
	if r.code != 1 || !strings.Contains(r.stdout, "tenants.acme.defaultCountyr: unknown setting, did you mean defaultCountry? ("+bad+":3)") ||
		!strings.Contains(r.stdout, `tenants.acme.otp.maxAttempts: "many" is not a whole number (`+bad+":4)") {
		t.Fatalf("config check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	good := writeConfig(t, dir, "database:\n  url: postgres://app:hunter2@db.example/app\ntenants:\n  acme: {}\n")
	r = customerd(t, dir, nil, "config", "check", "--config", good)
	if r.code != 0 || !strings.Contains(r.stdout, good+": valid") || strings.Contains(r.stdout, "hunter2") ||
		!strings.Contains(r.stdout, "postgres://app:xxxxx@db.example/app") ||
		!regexp.MustCompile(`warning: tenants.acme.senders.email: type log`).MatchString(r.stdout) {
		t.Fatalf("a valid file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A secret of one repeated character is warned about (not refused: what
	// it sealed opens with it only).
	r = customerd(t, dir, map[string]string{"CUSTOMERD_SECRET": strings.Repeat("a", 32)}, "config", "check", "--config", good)
	if r.code != 0 || !strings.Contains(r.stdout, "warning: secret: fewer than 8 different characters") {
		t.Fatalf("a weak secret: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = customerd(t, dir, map[string]string{"CUSTOMERD_SECRET": secret}, "config", "check", "--config", good); strings.Contains(r.stdout, "warning: secret") {
		t.Fatalf("a varied secret warned about: %s", r.stdout)
	}

	// An SMS gateway with neither countries nor a budget is open to SMS
	// pumping: said (found missing by an audit); with either, not.
	sms := "    senders:\n      sms:\n        type: twilio\n        twilio: {accountSid: AC1, authToken: t, from: '+33700000000'}\n"
	for _, c := range []struct {
		guard string
		warn  bool
	}{{"", true}, {"        countries: [FR]\n", false}, {"        dailyBudget: 1000\n", false}} {
		f := writeConfig(t, dir, "tenants:\n  acme:\n"+sms+c.guard)
		r = customerd(t, dir, nil, "config", "check", "--config", f)
		if warned := strings.Contains(r.stdout, "warning: tenants.acme.senders.sms: sms sender with neither countries nor dailyBudget"); r.code != 0 || warned != c.warn {
			t.Fatalf("sms sender with %q: exit %d, warned %v, want %v\n%s%s", c.guard, r.code, warned, c.warn, r.stdout, r.stderr)
		}
	}
}

// rotate-key adds a key; with --retire-previous it also retires every
// previous one (after a leak), and says how many.
func TestRotateKeyRetiresThePreviousKeysWhenAsked(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "database:\n  url: sqlite://"+dir+"/c.db\ntenants:\n  acme: {}\n")
	env := map[string]string{"CUSTOMERD_SECRET": secret}
	if r := customerd(t, dir, env, "migrate", "--config", cfg); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	if r := customerd(t, dir, env, "rotate-key", "acme", "--config", cfg); r.code != 1 || !strings.Contains(r.stderr, `unknown tenant "acme" in the database`) {
		t.Fatalf("rotate-key before the tenant is written: %d %s", r.code, r.stderr)
	}
	if r := customerd(t, dir, env, "tenants", "apply", "-f", cfg, "--config", cfg); r.code != 0 {
		t.Fatalf("tenants apply: %d %s", r.code, r.stderr)
	}
	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rotate-key", "acme"}, "tenant acme signs with the new key "},
		{[]string{"rotate-key", "acme"}, "tenant acme signs with the new key "},
		{[]string{"rotate-key", "--retire-previous", "acme"}, "retired 2 previous keys: the tokens they signed are refused\n"},
		{[]string{"rotate-key", "acme", "--retire-previous"}, "retired 1 previous keys: the tokens they signed are refused\n"},
	} {
		r := customerd(t, dir, env, append(c.args, "--config", cfg)...)
		if r.code != 0 || !strings.Contains(r.stdout, c.want) {
			t.Fatalf("step %d, customerd %v: %d %q %s, want %q", i, c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
	// Each rotation and retirement is in the audit log, as the command line's.
	st, err := store.Open(context.Background(), "sqlite://"+dir+"/c.db", store.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, ok := st.(interface {
		Audit(context.Context, store.AuditQuery) ([]store.AuditEntry, error)
	})
	if !ok {
		t.Fatalf("%T keeps no audit log", st)
	}
	entries, err := log.Audit(context.Background(), store.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range entries {
		if e.KeyID == "cli" && e.TenantID == "acme" {
			actions[e.Action]++
		}
	}
	if actions["tenant.rotate-key"] != 4 || actions["tenant.retire-keys"] != 2 {
		t.Fatalf("the audit log's rotations: %v", actions)
	}
}

// A dry run applies no migration either: it stops, naming the command that
// does, and the database stays as it was.
func TestTenantsApplyDryRunMigratesNothing(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CUSTOMERD_SECRET": secret, "CUSTOMERD_DATABASE_URL": "sqlite://./customerd.db"}
	cfg := writeConfig(t, dir, "tenants:\n  acme: {defaultCountry: FR}\n")
	r := customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", cfg, "--dry-run")
	if r.code != 1 || !strings.Contains(r.stderr, "the file "+filepath.Join(dir, "customerd.db")+" does not exist") {
		t.Errorf("a dry run without a database: %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "customerd.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dry run made a database: %v", err)
	}

	// A database another program made: the dry run adds no table to it.
	if err := os.WriteFile(filepath.Join(dir, "customerd.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", cfg, "--dry-run")
	if r.code != 1 || !strings.Contains(r.stderr, "the database's schema is behind this customerd's: run `customerd migrate` first: it has no customerd schema") {
		t.Errorf("a dry run on a database never migrated: %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := customerd(t, dir, env, "--config", cfg, "migrate"); r.code != 0 || !strings.Contains(r.stderr, "migration applied") {
		t.Fatalf("migrate after the dry runs applied nothing: %d %s", r.code, r.stderr)
	}
	if r := customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", cfg, "--dry-run"); r.code != 0 || !strings.HasPrefix(r.stdout, "acme: would be created\n") || !strings.Contains(r.stdout, `+ defaultCountry: "FR"`) {
		t.Errorf("a dry run once migrated: %d\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// A dry run writes nothing: not the tenants of the file it previews, nor
// those of the configuration file it runs with. Previewing an edit of the
// configuration file itself (the README's declarative source) must report
// the edit, and leave the database as it was. Found by an audit: every
// command wrote the configuration file's tenants first, so the dry run
// wrote the edit and then reported acme unchanged.
func TestTenantsApplyDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CUSTOMERD_SECRET": secret, "CUSTOMERD_DATABASE_URL": "sqlite://./customerd.db"}
	cfg := writeConfig(t, dir, "tenants:\n  acme: {defaultCountry: FR}\n")
	if r := customerd(t, dir, env, "--config", cfg, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	if r := customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", cfg); r.code != 0 {
		t.Fatalf("apply: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// The operator edits the configuration and previews the edit.
	writeConfig(t, dir, "tenants:\n  acme: {defaultCountry: BE}\n")
	r := customerd(t, dir, env, "--config", cfg, "tenants", "apply", "-f", cfg, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "acme: would be updated") || !strings.Contains(r.stdout, `~ defaultCountry: "FR" -> "BE"`) {
		t.Errorf("the dry run of an edited configuration file: %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// What is stored, seen through a configuration that does not declare acme:
	// the dry run must have left acme as FR.
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte("tenants:\n  other: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := filepath.Join(dir, "before.yaml")
	if err := os.WriteFile(before, []byte("tenants:\n  acme: {defaultCountry: FR}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = customerd(t, dir, env, "--config", other, "tenants", "apply", "-f", before, "--dry-run")
	if r.code != 0 || r.stdout != "acme: unchanged\n" {
		t.Errorf("after a dry run, acme is no longer as it was stored: %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
