package sender

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/sender/smtptest"
)

// tls: none sends every code in clear: as plain http, only to a relay in a
// private network that says so (allowPrivateNetwork, which a key of some
// tenants cannot set), whatever its name resolves to. The start-up check
// refuses a public address written as one; a name is judged at the dial,
// as the sender opened here past that check stands for.
func TestPlainSMTPGoesToPrivateNetworksOnly(t *testing.T) {
	relay := smtptest.Start(t, smtptest.Plain, "", "")
	local := SMTPConfig{Host: "127.0.0.1", Port: relay.Port, TLS: tlsNone, From: "Acme <no-reply@acme.example>",
		Timeout: 5 * time.Second, AllowPrivateNetwork: true}
	logger := slog.New(slog.DiscardHandler)
	s, err := Builtin().Open(Config{Type: typeSMTP, SMTP: &local}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), emailTo("free@example.com")); err != nil {
		t.Fatalf("a local relay that says so: %v", err)
	}
	if d := relay.Received(t, 0); d.TLS {
		t.Fatal("the local relay was reached over TLS")
	}

	public := local
	public.Host = "203.0.113.25" // TEST-NET-3: never reached
	if err := Builtin().Validate(Config{Type: typeSMTP, SMTP: &public}); err == nil {
		t.Error("a public address in clear passed the start-up check")
	}
	direct, err := newSMTPSender(public, logger)
	if err != nil {
		t.Fatal(err)
	}
	err = direct.Send(context.Background(), emailTo("free@example.com"))
	if !errors.Is(err, egress.ErrRefused) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("plain SMTP to a public address: %v, want refused by the outbound call policy", err)
	}
}
