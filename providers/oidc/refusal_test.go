package oidc

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/providers/oidc/oidctest"
)

// The info line of a refused ID token quotes at most a few hundred bytes of
// the token's own kid (or typ). Found by an audit: anyone could put about
// 12 KB of their own text into the log with every request.
func TestARefusedTokenWritesABoundedLogLine(t *testing.T) {
	iss := oidctest.New(t)
	var logs bytes.Buffer
	f := New(slog.New(slog.NewJSONHandler(&logs, nil)), time.Now)
	p, err := f.open(TypeGeneric, "corp", Config{ClientIDs: []string{"app"}, Issuer: iss.URL(), JWKSURL: iss.JWKSURL(), AllowPrivateNetwork: true},
		providers.Deps{Tenant: "shop", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	k := oidctest.NewKey(t, "RS256", strings.Repeat("A", 11000))
	_ = signIn(p, k.Sign(iss.Claims("app", "u1")))
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "id token refused") && len(line) > 2048 {
			t.Fatalf("one refused token wrote a %d-byte info line", len(line))
		}
	}
}
