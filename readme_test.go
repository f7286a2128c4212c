package customerd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/signature"
	"github.com/customerd/customerd/store"
)

// The README's recipes run here as the README writes them, so that they
// cannot drift from what works. The Go client and TypeScript recipes need
// the module proxy and the SDK's node_modules: they run with
// CUSTOMERD_TEST_RECIPES=1 (make recipes, in .ci/run).

// block is one fenced code block of README.md.
type block struct {
	lang, text, section string
}

// readme returns the code blocks of README.md under the heading section.
func readme(t *testing.T, section string) []block {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []block
		heading string
		cur     *block
	)
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &block{lang: strings.TrimPrefix(trimmed, "```"), section: heading}
		case cur != nil && trimmed == "```":
			if cur.section == section {
				out = append(out, *cur)
			}
			cur = nil
		case cur != nil:
			cur.text += line
		}
	}
	if len(out) == 0 {
		t.Fatalf("README.md has no code under %q", section)
	}
	return out
}

// only returns the one block of lang among blocks that contains marker.
func only(t *testing.T, blocks []block, lang, marker string) string {
	t.Helper()
	var found []string
	for _, b := range blocks {
		if b.lang == lang && strings.Contains(b.text, marker) {
			found = append(found, b.text)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README.md: %d %s blocks with %q in %q, want 1", len(found), lang, marker, blocks[0].section)
	}
	return found[0]
}

func recipes(t *testing.T) {
	if os.Getenv("CUSTOMERD_TEST_RECIPES") == "" {
		t.Skip("CUSTOMERD_TEST_RECIPES is not set (make recipes sets it)")
	}
}

// run runs a shell command line in dir and returns its output.
func run(t *testing.T, dir string, env []string, line string) string {
	t.Helper()
	cmd := exec.Command("bash", "-ec", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s (in %s): %v\n%s", line, dir, err, out)
	}
	return string(out)
}

// runSteps runs each line of a README sh block in dir, as rewrite makes it
// fit the test ("": skip the line).
func runSteps(t *testing.T, dir string, env []string, steps string, rewrite func(string) string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(steps), "\n") {
		if line = rewrite(line); line != "" {
			run(t, dir, env, line)
		}
	}
}

// pinned is the version tools/go.mod or a package.json pins for name.
func pinned(t *testing.T, file, pattern string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(pattern).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s: no %s", file, pattern)
	}
	return string(m[1])
}

func TestREADMEGoClientRecipe(t *testing.T) {
	recipes(t)
	blocks := readme(t, "Go")
	cfg := only(t, blocks, "yaml", "# customerd/client.cfg.yaml")
	steps := only(t, blocks, "sh", "go get -tool")
	program := only(t, blocks, "go", "package main")
	if want := pinned(t, "tools/go.mod", `oapi-codegen/oapi-codegen/v2 (v\S+)`); !strings.Contains(steps, "oapi-codegen@"+want) {
		t.Fatalf("the README installs another oapi-codegen than tools/go.mod's %s:\n%s", want, steps)
	}
	module := regexp.MustCompile(`"(\S+)/customerd"`).FindStringSubmatch(program)
	if module == nil {
		t.Fatalf("the program imports no …/customerd package:\n%s", program)
	}
	dir := t.TempDir()
	env := []string{"GOFLAGS=-mod=mod", "GOWORK=off"}
	run(t, dir, env, "go mod init "+module[1]+" && mkdir customerd")
	write(t, filepath.Join(dir, "customerd", "client.cfg.yaml"), cfg)
	repo, _ := os.Getwd()
	runSteps(t, dir, env, steps, func(line string) string {
		if strings.HasPrefix(line, "curl ") {
			// The contract a running customerd serves is this one.
			return "cp " + filepath.Join(repo, "openapi.yaml") + " customerd/openapi.yaml"
		}
		return line
	})
	write(t, filepath.Join(dir, "main.go"), program)
	run(t, dir, env, "go mod tidy && go vet ./...")

	svc := apptest.Start(t, "", "")
	out := run(t, dir, append(env, "CUSTOMERD_URL="+svc.Server.URL), "go run .")
	if !strings.HasPrefix(out, "code sent to j***@e***.com for challenge ") {
		t.Fatalf("the program says %q", out)
	}
	if svc.Logs.Code("jane.doe@example.com") == "" {
		t.Fatal("no code was sent")
	}

	t.Run("does not follow a redirect", func(t *testing.T) {
		tr := redirectTrap(t)
		cmd := exec.Command("go", "run", ".")
		cmd.Dir, cmd.Env = dir, append(os.Environ(), append(env, "CUSTOMERD_URL="+tr.url)...)
		out, _ := cmd.CombinedOutput() // refused or answered 307, as long as nothing went elsewhere
		tr.check(t, string(out))
	})
}

func TestREADMETypeScriptRecipe(t *testing.T) {
	recipes(t)
	blocks := readme(t, "TypeScript")
	steps := only(t, blocks, "sh", "npx openapi-typescript")
	ours := only(t, blocks, "ts", "@customerd/sdk")
	own := only(t, blocks, "ts", "openapi-fetch")
	upstream := only(t, readme(t, "Upstream-only clients"), "ts", "openapi-fetch")
	// The versions the README installs are the ones the SDK pins and tests with.
	for _, name := range []string{"openapi-fetch", "openapi-typescript", "typescript"} {
		want := pinned(t, "sdk/typescript/package.json", `"`+regexp.QuoteMeta(name)+`": "([^"]+)"`)
		if !strings.Contains(steps, " "+name+"@"+want) {
			t.Errorf("the README installs another %s than the SDK's %s:\n%s", name, want, steps)
		}
	}
	sdk, _ := filepath.Abs("sdk/typescript")
	modules := filepath.Join(sdk, "node_modules")
	if _, err := os.Stat(filepath.Join(sdk, "dist", "src", "index.d.ts")); err != nil {
		t.Fatalf("the SDK is not built (make sdk): %v", err)
	}
	dir := t.TempDir()
	// The project's node_modules: the SDK's packages, and the SDK itself as @customerd/sdk.
	entries, err := os.ReadDir(modules)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		mkLink(t, filepath.Join(modules, e.Name()), filepath.Join(dir, "node_modules", e.Name()))
	}
	mkLink(t, sdk, filepath.Join(dir, "node_modules", "@customerd", "sdk"))
	write(t, filepath.Join(dir, "package.json"), `{"type": "module", "private": true}`)
	write(t, filepath.Join(dir, "tsconfig.json"), `{"compilerOptions": {"target": "ES2022", "module": "NodeNext",
  "moduleResolution": "NodeNext", "lib": ["ES2022", "DOM"], "types": [], "strict": true, "noEmit": true}, "include": ["src"]}`)
	repo, _ := os.Getwd()
	runSteps(t, dir, nil, steps, func(line string) string {
		if !strings.HasPrefix(line, "npx ") {
			return "" // npm install: the packages are the SDK's, linked above
		}
		line, _, _ = strings.Cut(line, "#")
		return "mkdir -p src && " + strings.Replace(line, "https://id.example.com/openapi.yaml", filepath.Join(repo, "openapi.yaml"), 1)
	})
	// The upstream-only client's types, as its recipe's first line makes them.
	gen, _, _ := strings.Cut(strings.TrimPrefix(upstream, "// "), "\n")
	run(t, dir, nil, strings.Replace(gen, "customer-api.openapi.json", filepath.Join(repo, "api", "upstream", "customer-api.openapi.json"), 1))
	// The clients, as written but for where customerd is: a trap each.
	traps := map[string]*trap{"own": redirectTrap(t), "upstream-client": redirectTrap(t)}
	at := func(client, recipe string) string {
		return strings.ReplaceAll(recipe, "https://id.example.com", traps[client].url)
	}
	write(t, filepath.Join(dir, "src", "ours.ts"), ours)
	// What the recipes use and do not show: a token from a sign-in, the typed code.
	write(t, filepath.Join(dir, "src", "own.ts"), "const token: string = \"eyJ.a.b\";\n"+at("own", own))
	write(t, filepath.Join(dir, "src", "upstream-client.ts"),
		"const email = \"jane.doe@example.com\", code = \"719950\";\n"+at("upstream-client", upstream))
	run(t, dir, nil, "node_modules/.bin/tsc -p .")

	t.Run("do not follow a redirect", func(t *testing.T) {
		run(t, dir, nil, "node_modules/.bin/tsc -p . --noEmit false --outDir out")
		for client, tr := range traps {
			// A call that meets the redirect throws: the exit status says nothing.
			out, _ := exec.Command("node", filepath.Join(dir, "out", client+".js")).CombinedOutput()
			tr.check(t, client+".ts: "+string(out))
		}
	})
}

func TestREADMEWebhookReceiver(t *testing.T) {
	recv := startREADMEReceiver(t, false)
	hook, logs := recv.hook, recv.logs

	// A forged delivery is refused.
	body := []byte(`{"id":"x","type":"Customer:Upserted","customerId":"c","data":{}}`)
	req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
	req.Header.Set("X-Customerd-Signature", signature.Sign([]byte("another-secret-entirely"), time.Now(), body))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a forged delivery: %v %v", err, res)
	}

	// customerd's own deliveries are acknowledged and read.
	svc := apptest.Start(t, "", fmt.Sprintf(`
events: {pollInterval: 5ms}
tenants:
  demo:
    webhooks: {endpoints: [{url: %q, secret: %q, allowPrivateNetwork: true}], retryBase: 5ms, retryMax: 50ms}
`, hook, recv.secret))
	svc.StartEvents()
	res, err := svc.HTTP.Post(svc.Server.URL+"/api/demo/customer", "application/json", strings.NewReader(`{"email":"hooked@example.com"}`))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("create: %v %v", err, res)
	}
	_ = res.Body.Close()
	waitUntil(t, "the event acknowledged", func() bool {
		evs, err := svc.App.Store.Events(context.Background(), store.EventQuery{})
		return err == nil && len(evs) == 1 && evs[0].DeliveredAt != nil
	})
	if !strings.Contains(logs.String(), " Customer:Upserted ") || !strings.Contains(logs.String(), "hooked@example.com") {
		t.Fatalf("the receiver logged %q", logs.String())
	}
}

// trap is a server that answers every request with a 307 to another
// server, as a proxy, a captive portal or a hijacked route might.
type trap struct {
	url                string
	mu                 sync.Mutex
	redirected, landed []string // the requests each server received
}

func redirectTrap(t *testing.T) *trap {
	t.Helper()
	tr := &trap{}
	record := func(into *[]string, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tr.mu.Lock()
		defer tr.mu.Unlock()
		*into = append(*into, fmt.Sprintf("%s %s %s", r.Method, r.URL, body))
	}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(&tr.landed, r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `"eyJhbGciOiJFUzI1NiJ9.e30.forged"`)
	}))
	t.Cleanup(elsewhere.Close)
	// Another host, not only another port: Go's client keeps the body there, not Authorization.
	to := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(&tr.redirected, r)
		http.Redirect(w, r, to+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	tr.url = redirecting.URL
	return tr
}

// check fails t unless a client called the trap and nothing reached the
// other server; out is what the client said.
func (tr *trap) check(t *testing.T, out string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.redirected) == 0 {
		t.Errorf("the client never called the trap:\n%s", out)
	}
	if len(tr.landed) > 0 {
		t.Errorf("the client followed a redirect: another server received %q\n%s", tr.landed, out)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkLink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for range 1000 {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// The walk-through with curl runs as the README writes it, against the demo
// set-up (only the ports differ): each block's answer is the one its text
// promises, and every block of the section is here.
func TestREADMEWalkThroughWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	svc := apptest.Start(t, "", "") // no configuration file: the demo set-up
	api, metrics := strings.TrimPrefix(svc.Server.URL, "http://"), strings.TrimPrefix(svc.Metrics.URL, "http://")
	type step struct {
		marker string   // in the block
		want   []string // in its answer
	}
	steps := []step{
		{`"loyaltyCard":"A-123"}'`, []string{`"city":"Paris"`, `"email":"jane.doe@example.com"`, `"region":"Île-de-France"`}},
		{`-d '{"email":"jane.doe@example.com"}'`, []string{`"challengeId":"`, `"destination":"j***@e***.com"`}},
		{`TOKEN=$(`, nil},
		{`customer -H "Authorization: Bearer $TOKEN"` + "\n", []string{`"provider":"otp"`, `"emailVerified":true`}},
		{`"consents_sms":true}'`, []string{`"lastName":"Doe"`, `"consents_sms":true`}},
		{`"phoneNumber":"06 12 34 56 78"`, []string{`"channel":"sms"`, `"destination":"+33*******78"`}},
		{`"birthDate":"1990-13-01"`, []string{`"status":412`, `"birthDate":["must be a valid date"]`}},
		{`jwks.json`, []string{`"alg":"ES256"`}},
		{`/healthz`, []string{`{"status":"ok"}`, "customerd_http_requests_total"}},
		{`/openapi.yaml`, []string{"openapi: 3.1", `"openapi":"3.1`}},
	}
	blocks := readme(t, "Walk-through with curl")
	var challenge, token string
	ran := 0
	for _, b := range blocks {
		if b.lang != "sh" {
			continue
		}
		i := slices.IndexFunc(steps, func(s step) bool { return strings.Contains(b.text, s.marker) })
		if i < 0 {
			t.Fatalf("a block of the walk-through this test does not know:\n%s", b.text)
		}
		script := strings.NewReplacer("localhost:8080", api, "localhost:9464", metrics).Replace(b.text)
		if steps[i].marker == `TOKEN=$(` {
			code := svc.Logs.Code("jane.doe@example.com")
			script = regexp.MustCompile(`"challengeId":"[^"]+","code":"[0-9]+"`).ReplaceAllString(script,
				fmt.Sprintf(`"challengeId":%q,"code":%q`, challenge, code))
			script += `printf %s "$TOKEN"`
		}
		out := run(t, t.TempDir(), []string{"TOKEN=" + token}, script)
		for _, want := range steps[i].want {
			if !strings.Contains(out, want) {
				t.Errorf("README walk-through:\n%s\nanswered %s\nwithout %s", b.text, out, want)
			}
		}
		switch {
		case steps[i].marker == `TOKEN=$(`:
			if token = out; !strings.HasPrefix(token, "eyJ") {
				t.Fatalf("step 4 gave no token: %q", out)
			}
		case challenge == "":
			if m := regexp.MustCompile(`"challengeId":"([^"]+)"`).FindStringSubmatch(out); m != nil {
				challenge = m[1]
			}
		}
		ran++
	}
	if ran != len(steps) {
		t.Fatalf("ran %d blocks of the walk-through, want %d", ran, len(steps))
	}
}
