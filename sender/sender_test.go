package sender_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/customerd/customerd/sender"
)

func validSMTP() *sender.SMTPConfig {
	return &sender.SMTPConfig{
		Host:     "smtp.example.com",
		Username: "mailer",
		Password: "secret",
		From:     "Acme <no-reply@acme.example>",
	}
}

func TestValidate(t *testing.T) {
	smtpWith := func(f func(c *sender.SMTPConfig)) sender.Config {
		c := validSMTP()
		f(c)
		return sender.Config{Type: "smtp", SMTP: c}
	}
	tests := []struct {
		name string
		cfg  sender.Config
		want string // error prefix; "" means valid
	}{
		{"log", sender.Config{Type: "log"}, ""},
		{"log ignores an smtp block", sender.Config{Type: "log", SMTP: &sender.SMTPConfig{}}, ""},
		{"smtp", smtpWith(func(*sender.SMTPConfig) {}), ""},
		{"smtp without auth", smtpWith(func(c *sender.SMTPConfig) { c.Username, c.Password = "", "" }), ""},
		{"implicit tls", smtpWith(func(c *sender.SMTPConfig) { c.TLS = "tls"; c.Port = 465 }), ""},
		{"ipv6 host", smtpWith(func(c *sender.SMTPConfig) { c.Host = "2001:db8::25" }), ""},
		{"a local relay that says so", smtpWith(func(c *sender.SMTPConfig) { c.Host = "::1"; c.AllowPrivateNetwork = true }), ""},
		{"none with auth on loopback", smtpWith(func(c *sender.SMTPConfig) { c.TLS = "none"; c.Host = "127.0.0.1"; c.AllowPrivateNetwork = true }), ""},
		{"none with auth on localhost", smtpWith(func(c *sender.SMTPConfig) { c.TLS = "none"; c.Host = "localhost"; c.AllowPrivateNetwork = true }), ""},
		{"none without auth to a private relay that says so", smtpWith(func(c *sender.SMTPConfig) {
			c.TLS, c.Host, c.Username, c.Password, c.AllowPrivateNetwork = "none", "relay.internal", "", "", true
		}), ""},

		{"no type", sender.Config{}, "type: required"},
		{"unknown type", sender.Config{Type: "x"}, `type: unknown sender type "x", have [log smtp twilio webhook]`},
		{"smtp without block", sender.Config{Type: "smtp"}, "smtp: required"},
		{"no host", smtpWith(func(c *sender.SMTPConfig) { c.Host = "" }), "smtp.host: required"},
		{"host with port", smtpWith(func(c *sender.SMTPConfig) { c.Host = "smtp.example.com:587" }), "smtp.host:"},
		{"host as url", smtpWith(func(c *sender.SMTPConfig) { c.Host = "smtp://smtp.example.com" }), "smtp.host:"},
		{"negative port", smtpWith(func(c *sender.SMTPConfig) { c.Port = -1 }), "smtp.port:"},
		{"port too big", smtpWith(func(c *sender.SMTPConfig) { c.Port = 65536 }), "smtp.port:"},
		{"unknown tls", smtpWith(func(c *sender.SMTPConfig) { c.TLS = "ssl" }), `smtp.tls: unknown mode "ssl", have [starttls tls none]`},
		{"no from", smtpWith(func(c *sender.SMTPConfig) { c.From = "" }), "smtp.from: required"},
		{"bad from", smtpWith(func(c *sender.SMTPConfig) { c.From = "not an address" }), "smtp.from:"},
		{"header injection in from", smtpWith(func(c *sender.SMTPConfig) { c.From = "a@acme.example\r\nBcc: x@evil.example" }), "smtp.from:"},
		{"password without username", smtpWith(func(c *sender.SMTPConfig) { c.Username = "" }), "smtp.username:"},
		{"username without password", smtpWith(func(c *sender.SMTPConfig) { c.Password = "" }), "smtp.password:"},
		// A plain relay is a private network's, and says so: every code
		// to a public one would cross the internet in clear.
		{"none without auth", smtpWith(func(c *sender.SMTPConfig) { c.TLS = "none"; c.Username, c.Password = "", "" }), "smtp.tls: none: plain text goes only to a private network, with allowPrivateNetwork: true"},
		{"none to a public address that claims a private network", smtpWith(func(c *sender.SMTPConfig) {
			c.TLS, c.Host, c.Username, c.Password, c.AllowPrivateNetwork = "none", "203.0.113.25", "", "", true
		}), "smtp.tls: none: 203.0.113.25 is a public address"},
		{"auth without tls to a remote host", smtpWith(func(c *sender.SMTPConfig) { c.TLS = "none"; c.Host = "10.0.0.25"; c.AllowPrivateNetwork = true }), "smtp.username:"},
		{"negative timeout", smtpWith(func(c *sender.SMTPConfig) { c.Timeout = -time.Second }), "smtp.timeout:"},
		{"a timeout above 30s", smtpWith(func(c *sender.SMTPConfig) { c.Timeout = time.Minute }), "smtp.timeout: 1m0s is above 30s"},
		{"a loopback relay without allowPrivateNetwork", smtpWith(func(c *sender.SMTPConfig) { c.Host = "127.0.0.1" }), "smtp.host:"},
		{"a private relay without allowPrivateNetwork", smtpWith(func(c *sender.SMTPConfig) { c.Host = "10.0.0.25" }), "smtp.host:"},
		{"the metadata address", smtpWith(func(c *sender.SMTPConfig) { c.Host = "169.254.169.254" }), "smtp.host:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sender.Builtin().Validate(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want %q", tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("Validate() = %q, want prefix %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate() = %q leaks the password", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	if _, err := sender.Builtin().Open(sender.Config{Type: "x"}, logger); err == nil {
		t.Error("Open of an invalid config: want an error")
	}
	if _, err := sender.Builtin().Open(sender.Config{Type: "log"}, nil); err == nil {
		t.Error("Open with a nil logger: want an error")
	}
	c := validSMTP()
	c.RootCAs = filepath.Join(t.TempDir(), "missing.pem")
	_, err := sender.Builtin().Open(sender.Config{Type: "smtp", SMTP: c}, logger)
	if err == nil || !strings.HasPrefix(err.Error(), "smtp.rootCAs:") {
		t.Errorf("Open with a missing rootCAs file = %v, want an smtp.rootCAs error", err)
	}
}

// smtp.rootCAs is read only from a regular file of at most 1 MiB: a device
// or a FIFO would make building the tenant read without end, or wait for a
// writer.
func TestRootCAsIsARegularFileOfBoundedSize(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero": "/dev/zero is not a regular file",
		fifo:        fifo + " is not a regular file",
		big:         big + " is larger than 1024 KiB",
	} {
		c := validSMTP()
		c.RootCAs = path
		done := make(chan error, 1)
		go func() {
			_, err := sender.Builtin().Open(sender.Config{Type: "smtp", SMTP: c}, slog.New(slog.DiscardHandler))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != "smtp.rootCAs: "+want {
				t.Errorf("rootCAs %s: %v, want smtp.rootCAs: %s", path, err, want)
			}
		case <-time.After(5 * time.Second):
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				_ = w.Close() // lets the read end
			}
			t.Fatalf("rootCAs %s: still reading after 5s", path)
		}
	}
}

func TestDecode(t *testing.T) {
	want := sender.Config{Type: "smtp", SMTP: &sender.SMTPConfig{
		Host: "smtp.example.com", Port: 465, TLS: "tls", Username: "mailer", Password: "secret",
		From: "Acme <no-reply@acme.example>", Timeout: 5 * time.Second,
		InsecureSkipVerify: true, RootCAs: "/etc/ca.pem",
	}}
	check := func(t *testing.T, got sender.Config) {
		t.Helper()
		if got.Type != want.Type || got.SMTP == nil || *got.SMTP != *want.SMTP {
			t.Errorf("decoded %+v %+v, want %+v %+v", got, got.SMTP, want, want.SMTP)
		}
	}

	t.Run("yaml", func(t *testing.T) {
		const doc = `
type: smtp
smtp:
  host: smtp.example.com
  port: 465
  tls: tls
  username: mailer
  password: secret
  from: Acme <no-reply@acme.example>
  timeout: 5s
  insecureSkipVerify: true
  rootCAs: /etc/ca.pem
`
		var got sender.Config
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		check(t, got)
	})
	for name, timeout := range map[string]string{"json": `"5s"`, "json nanoseconds": `5000000000`} {
		t.Run(name, func(t *testing.T) {
			doc := `{"type": "smtp", "smtp": {"host": "smtp.example.com", "port": 465, "tls": "tls",
				"username": "mailer", "password": "secret", "from": "Acme <no-reply@acme.example>",
				"timeout": ` + timeout + `, "insecureSkipVerify": true, "rootCAs": "/etc/ca.pem"}}`
			var got sender.Config
			if err := json.Unmarshal([]byte(doc), &got); err != nil {
				t.Fatal(err)
			}
			check(t, got)
		})
	}
	t.Run("json bad timeout", func(t *testing.T) {
		var got sender.Config
		err := json.Unmarshal([]byte(`{"type": "smtp", "smtp": {"timeout": "soon"}}`), &got)
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("Unmarshal = %v, want a timeout error", err)
		}
	})
}

func TestLogSender(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	s, err := sender.Builtin().Open(sender.Config{Type: "log"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset() // Open warns that codes will be logged

	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	m := sender.Message{
		Tenant: "acme", Channel: sender.SMS, To: "+33612345678", Code: "123456",
		ExpiresAt: expires, Language: "fr",
	}
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want exactly 1:\n%s", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"level": "INFO", "msg": "otp sent", "tenant": "acme", "channel": "sms",
		"to": "+33612345678", "code": "123456", "expiresAt": expires.Format(time.RFC3339),
	} {
		if got[k] != v {
			t.Errorf("log %s = %v, want %v", k, got[k], v)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	buf.Reset()
	if err := s.Send(ctx, m); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a canceled context = %v, want context.Canceled", err)
	}
	if buf.Len() != 0 {
		t.Errorf("Send with a canceled context logged %q", buf.String())
	}
}
