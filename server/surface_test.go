package server_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
)

// plainCall is one request through a client that validates nothing (the
// answers here may be ones the contract does not list: HEAD, 405).
func plainCall(t *testing.T, base, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// HEAD is GET without the body (RFC 9110 9.3.2: every general-purpose
// server supports it: load balancers' health checks and link checkers send
// it), and a method a path does not take is 405 with Allow, not 404 (which
// tells a client the path does not exist).
func TestHeadAndMethodNotAllowed(t *testing.T) {
	env := apptest.Start(t, "", "")
	base := env.Server.URL

	for _, path := range []string{"/healthz", "/readyz", "/docs", "/openapi.json", "/api/demo/.well-known/jwks.json"} {
		t.Run("HEAD "+path, func(t *testing.T) {
			g, _ := plainCall(t, base, http.MethodGet, path, nil)
			h, body := plainCall(t, base, http.MethodHead, path, nil)
			if h.StatusCode != http.StatusOK || len(body) != 0 {
				t.Fatalf("HEAD %s → %d (%d bytes), want 200 with no body", path, h.StatusCode, len(body))
			}
			if h.Header.Get("Content-Type") != g.Header.Get("Content-Type") {
				t.Errorf("HEAD Content-Type %q, GET's %q", h.Header.Get("Content-Type"), g.Header.Get("Content-Type"))
			}
		})
	}
	t.Run("HEAD of an unknown tenant is still 404", func(t *testing.T) {
		if h, _ := plainCall(t, base, http.MethodHead, "/api/nope/.well-known/jwks.json", nil); h.StatusCode != http.StatusNotFound {
			t.Errorf("→ %d, want 404", h.StatusCode)
		}
	})
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/healthz", "GET"},
		{http.MethodPut, "/api/demo/customer", "POST"},
		{http.MethodPost, "/openapi.json", "GET"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			res, body := plainCall(t, base, c.method, c.path, []byte(`{}`), "Content-Type", "application/json")
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("→ %d, want 405: %s", res.StatusCode, body)
			}
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("Content-Type %q, want a problem", res.Header.Get("Content-Type"))
			}
			if allow := res.Header.Get("Allow"); !strings.Contains(allow, c.allow) {
				t.Errorf("Allow %q, want it to name %s", allow, c.allow)
			}
		})
	}
	t.Run("an unknown path is still 404", func(t *testing.T) {
		if res, _ := plainCall(t, base, http.MethodDelete, "/nowhere", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("→ %d, want 404", res.StatusCode)
		}
	})
}

// A token, a profile or a challenge is the caller's alone: no cache on the
// way (a proxy, a CDN in front of the service, the browser's disk) may keep
// it (RFC 6749 5.1 asks no-store of every token answer). The contract and
// the public keys stay cacheable.
func TestSecretAnswersAreNotStored(t *testing.T) {
	env := apptest.Start(t, "", "")
	base := env.Server.URL
	noStore := func(t *testing.T, what string, res *http.Response) {
		t.Helper()
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%s → %d: Cache-Control %q, want no-store", what, res.StatusCode, cc)
		}
	}

	res, _ := plainCall(t, base, http.MethodPost, "/api/demo/customer/authenticate?provider=otp",
		[]byte(`{"email":"cache@example.com"}`), "Content-Type", "application/json")
	noStore(t, "ask for a code (a challenge)", res)
	tok := env.SignIn(t, "demo", "cache2@example.com")
	// The token answer itself: a second code for the same journey.
	res, _ = plainCall(t, base, http.MethodPost, "/api/demo/customer/authenticate?provider=otp",
		[]byte(`{"email":"cache3@example.com"}`), "Content-Type", "application/json")
	if res.StatusCode == http.StatusAccepted {
		code := env.Logs.Code("cache3@example.com")
		res, body := plainCall(t, base, http.MethodPost, "/api/demo/customer/authenticate?provider=otp",
			[]byte(`{"email":"cache3@example.com","code":"`+code+`"}`), "Content-Type", "application/json")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("exchange the code → %d: %s", res.StatusCode, body)
		}
		noStore(t, "the token answer", res)
	}
	res, _ = plainCall(t, base, http.MethodGet, "/api/demo/customer", nil, "Authorization", "Bearer "+tok)
	noStore(t, "GET the profile", res)
	res, _ = plainCall(t, base, http.MethodPost, "/api/demo/customer", []byte(`{"firstName":"C"}`),
		"Authorization", "Bearer "+tok, "Content-Type", "application/json")
	noStore(t, "update the profile", res)
	res, _ = plainCall(t, base, http.MethodPost, "/api/demo/customer", []byte(`{"email":"anon-cache@example.com"}`),
		"Content-Type", "application/json")
	noStore(t, "create an account", res)

	if res, _ := plainCall(t, base, http.MethodGet, "/api/demo/.well-known/jwks.json", nil); !strings.Contains(res.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("the public keys: Cache-Control %q, want them cacheable", res.Header.Get("Cache-Control"))
	}
}

// customerd inflates nothing (no decompression bomb), so a body sent under
// a content coding is refused (RFC 9110 8.4: 415), not read as if it were
// identity: a gateway that inspects the decoded body and customerd must not
// see two different requests.
func TestContentCodedBodiesAreRefused(t *testing.T) {
	env := apptest.Start(t, "", "")
	base := env.Server.URL
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte(`{"email":"gz@example.com"}`))
	_ = w.Close()
	for _, c := range []struct {
		name, coding string
		body         []byte
	}{
		{"gzip", "gzip", gz.Bytes()},
		{"plain JSON labelled gzip", "gzip", []byte(`{"email":"labelled@example.com"}`)},
		{"plain JSON labelled br", "br", []byte(`{"email":"br@example.com"}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, body := plainCall(t, base, http.MethodPost, "/api/demo/customer", c.body,
				"Content-Type", "application/json", "Content-Encoding", c.coding)
			if res.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("→ %d, want 415: %s", res.StatusCode, body)
			}
		})
	}
	t.Run("identity is no coding", func(t *testing.T) {
		res, body := plainCall(t, base, http.MethodPost, "/api/demo/customer", []byte(`{"email":"identity@example.com"}`),
			"Content-Type", "application/json", "Content-Encoding", "identity")
		if res.StatusCode != http.StatusOK {
			t.Errorf("→ %d, want 200: %s", res.StatusCode, body)
		}
	})
}

// every answer of the API's listener says its Content-Type is the one to
// go by (X-Content-Type-Options: nosniff), the problems of routes that do
// not exist and of methods no route takes included: a profile's free-form
// text or a path quoted in a problem is never read as a page by a browser
// that sniffs. Only the reference and its script said so.
func TestNoAnswerIsSniffed(t *testing.T) {
	env := apptest.Start(t, "", "")
	base := env.Server.URL
	tok := env.SignIn(t, "demo", "sniff@example.com")
	for _, c := range []struct {
		method, path string
		body         []byte
		header       []string
	}{
		{http.MethodPost, "/api/demo/customer/authenticate?provider=otp", []byte(`{"email":"sniff2@example.com"}`), []string{"Content-Type", "application/json"}},
		{http.MethodGet, "/api/demo/customer", nil, []string{"Authorization", "Bearer " + tok}},
		{http.MethodGet, "/api/demo/customer", nil, nil},
		{http.MethodPost, "/api/demo/customer", []byte(`<html>`), []string{"Content-Type", "text/html"}},
		{http.MethodGet, "/api/demo/.well-known/jwks.json", nil, nil},
		{http.MethodGet, "/openapi.json", nil, nil},
		{http.MethodGet, "/api/%3Cb%3E/customer", nil, nil},
		{http.MethodGet, "/%3Chtml%3E", nil, nil},
		{http.MethodOptions, "/api/demo/customer", nil, nil},
		{http.MethodTrace, "/api/demo/customer", nil, nil},
	} {
		res, _ := plainCall(t, base, c.method, c.path, c.body, c.header...)
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s → %d %s: X-Content-Type-Options %q, want nosniff", c.method, c.path, res.StatusCode,
				res.Header.Get("Content-Type"), got)
		}
	}
}
