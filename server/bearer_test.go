package server

import (
	"strings"
	"testing"
)

func TestBearer(t *testing.T) {
	for _, c := range []struct {
		name, header, tok string
		ok, bad           bool
	}{
		{"no header is anonymous", "", "", false, false},
		{"a bearer token", "Bearer abc.def.ghi", "abc.def.ghi", true, false},
		{"the scheme is case-insensitive", "bearer abc.def.ghi", "abc.def.ghi", true, false},
		{"Bearer with nothing after it", "Bearer", "", true, true},
		{"Bearer and a space", "Bearer ", "", true, true},
		{"another scheme", "Basic dXNlcjpwYXNz", "", true, true},
		{"two tokens", "Bearer a.b.c d.e.f", "", true, true},
		{"a comma", "Bearer a.b.c,", "", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, ok, err := bearer(c.header)
			if tok != c.tok || ok != c.ok || (err != nil) != c.bad {
				t.Fatalf("bearer(%q) = %q %v %v", c.header, tok, ok, err)
			}
		})
	}
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer a.b.c", "bearer a", "Basic x", "Bearer a b", "Bearer \t", "Bearer\ta.b.c", "Bearer é.é.é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok, err := bearer(header)
		if header == "" && (ok || err != nil) {
			t.Fatalf("an empty header is anonymous")
		}
		if err == nil && ok && (tok == "" || strings.ContainsAny(tok, " \t,")) {
			t.Fatalf("accepted a malformed token %q from %q", tok, header)
		}
		if err != nil && tok != "" {
			t.Fatalf("returned a token with an error")
		}
	})
}

func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"A":2}`, `[1,2]`, `"x"`, `{"a":{"b":[1,{"c":null}]}}`, `{"a":"\u0000"}`, `{} {}`, `{`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = checkJSON(body) // never panics, whatever the body
	})
}
