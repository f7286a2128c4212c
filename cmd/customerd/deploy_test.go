package main_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A publicURL over plain http on a host other than loopback is what tokens'
// iss name and what verifiers fetch the keys from (/.well-known/jwks.json):
// config check and serve say so.
func TestAPlainHTTPPublicURLIsWarnedAbout(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "tenants:\n  acme: {}\n")
	for _, c := range []struct {
		url  string
		warn bool
	}{{"http://id.shop.example", true}, {"http://203.0.113.7:8080", true}, {"https://id.shop.example", false}, {"http://localhost:8080", false}, {"http://127.0.0.1:8080", false}} {
		r := customerd(t, dir, map[string]string{"CUSTOMERD_PUBLIC_URL": c.url}, "config", "check", "--config", cfg)
		if warned := strings.Contains(r.stdout, "warning: publicURL"); r.code != 0 || warned != c.warn {
			t.Errorf("publicURL %s: exit %d, warned %v, want %v\n%s%s", c.url, r.code, warned, c.warn, r.stdout, r.stderr)
		}
	}
	env := serveEnv(dir)
	env["CUSTOMERD_PUBLIC_URL"] = "http://id.shop.example"
	s, _ := startServe(t, dir, env, "--config", cfg)
	if !strings.Contains(s.log(), `"msg":"publicURL`) {
		t.Fatalf("serve does not warn about an http publicURL:\n%s", s.log())
	}
}

// config check shows every listener, the admin API's included, and which
// settings the environment set over the file.
func TestConfigCheckShowsTheAdminListenerAndTheEnvironmentsSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "adminAddr: 127.0.0.1:8081\ntenants:\n  acme: {}\n")
	r := customerd(t, dir, map[string]string{"CUSTOMERD_ADMIN_ADDR": "0.0.0.0:8081", "CUSTOMERD_SECRET": secret}, "config", "check", "--config", cfg)
	if r.code != 0 || !regexp.MustCompile(`(?m)^  admin +0\.0\.0\.0:8081 \(CUSTOMERD_ADMIN_ADDR\)`).MatchString(r.stdout) || strings.Contains(r.stdout, secret) {
		t.Fatalf("config check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// smtpRelay answers like Postfix: a recipient it refuses is quoted in its
// reply ("550 5.1.1 <jane@…>: Recipient address rejected").
func smtpRelay(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 relay ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.ToUpper(strings.TrimSpace(line))
					switch {
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						fmt.Fprint(c, "250-relay\r\n250 8BITMIME\r\n")
					case strings.HasPrefix(cmd, "RCPT"):
						to := strings.TrimSpace(line[strings.Index(line, ":")+1:])
						fmt.Fprintf(c, "550 5.1.1 %s: Recipient address rejected: User unknown in local recipient table\r\n", to)
					case strings.HasPrefix(cmd, "QUIT"):
						fmt.Fprint(c, "221 bye\r\n")
						return
					default:
						fmt.Fprint(c, "250 ok\r\n")
					}
				}
			}(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// A shopper who mistypes their address: the relay refuses it, quoting it,
// and the log at info level must not keep the address a stranger typed.
func TestARefusedRecipientStaysOutOfTheLog(t *testing.T) {
	dir := t.TempDir()
	port := smtpRelay(t)
	cfg := writeConfig(t, dir, fmt.Sprintf(`tenants:
  acme:
    senders:
      email:
        type: smtp
        smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Acme <no-reply@acme.example>", allowPrivateNetwork: true}
`, port))
	s, line := startServe(t, dir, serveEnv(dir), "--config", cfg)
	api, _ := line["api"].(string)
	res, err := http.Post(api+"/api/acme/customer/authenticate?provider=otp", "application/json",
		strings.NewReader(`{"email":"jane.doe@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("authenticate: %d %s", res.StatusCode, body)
	}
	time.Sleep(200 * time.Millisecond) // the access log line follows the answer
	if log := s.log(); strings.Contains(log, "jane.doe@example.com") {
		t.Fatalf("the full address is in the log at info level:\n%s", log)
	}
}

// docker-compose.yml is committed and copied: it must not carry a secret
// every reader knows (it seals the signing keys and keys the code hashes).
func TestComposeCarriesNoSecret(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || strings.HasPrefix(k, "#") || k != "CUSTOMERD_SECRET" {
			continue
		}
		if v = strings.TrimSpace(v); v != "" && !strings.HasPrefix(v, "${") {
			t.Errorf("docker-compose.yml sets CUSTOMERD_SECRET to %s in clear", v)
		}
	}
}

// A demo run on a database (no configuration file: the demo tenant, codes in
// the log) leaves its tenant there; once the real configuration is given,
// the start-up log says that tenant still writes codes to the log.
func TestADemoTenantLeftInTheDatabaseIsWarnedAbout(t *testing.T) {
	dir := t.TempDir()
	env := serveEnv(dir)
	demo, _ := startServe(t, dir, env)
	_ = demo.cmd.Process.Kill()
	demo.wait(t)
	port := smtpRelay(t)
	cfg := writeConfig(t, dir, fmt.Sprintf(`tenants:
  acme:
    senders:
      email:
        type: smtp
        smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Acme <no-reply@acme.example>", allowPrivateNetwork: true}
      sms:
        type: webhook
        countries: [FR]
        webhook: {url: "https://sms.acme.example/send", secret: %s}
`, port, secret))
	s, line := startServe(t, dir, env, "--config", cfg)
	if line["tenants"] != 2.0 {
		t.Fatalf("start-up line: %v", line)
	}
	for _, m := range s.lines("log sender: one-time codes are written to the log; never use it in production") {
		if m["tenant"] == "demo" {
			return
		}
	}
	t.Fatalf("the demo tenant serves with codes in the log, unsaid:\n%s", s.log())
}
