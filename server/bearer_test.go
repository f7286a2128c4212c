package server

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/customerd/customerd/strictjson"
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

// FuzzCheckJSON: checkJSON accepts a body exactly when encoding/json decodes
// it (one value, every number within float64) and it is valid UTF-8, escapes
// no half of a surrogate pair alone, holds no NUL character, no number
// rounded to zero, no object with two member names that encoding/json would
// match to one field (case-insensitively), and nests at most
// strictjson.MaxDepth levels.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"A":2}`, `[1,2]`, `"x"`, `{"a":{"b":[1,{"c":null}]}}`, `{"a":"\u0000"}`, `{} {}`, `{`, "\xff",
		`{"s":1,"\u017f":2}`, `{"k":1,"\u212a":2}`, `{"n":1e999}`, `[1e-400]`, `{"n":0e-999999}`, `-0.0`, `{"a":[{"a":1,"b":2}],"b":{"a":3}}`,
		strings.Repeat("[", strictjson.MaxDepth) + strings.Repeat("]", strictjson.MaxDepth), strings.Repeat("[", strictjson.MaxDepth+1) + strings.Repeat("]", strictjson.MaxDepth+1),
		" \t\n{\"x\":\"\\ud800\"} ", `"\udc00"`, `"\ud800\ud800\udc00"`, `"\ud800\n"`, `"\\ud800"`, `"\\\ud800\udc00"`, `{"\ud83d\ude00":1}`, `"\uD83D\uDE00"`,
		`{"a":1,}`, `{"a" 1}`, `[1,]`, `01`, `"\u00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := checkJSON(body)
		if want := acceptable(body); (err == nil) != want {
			t.Fatalf("checkJSON(%q) = %v; acceptable: %v", body, err, want)
		}
	})
}

// acceptable is the rule of checkJSON, written another way: through
// json.Unmarshal, then one recursive walk of the tokens.
func acceptable(body []byte) bool {
	var v any
	if !utf8.Valid(body) || json.Unmarshal(body, &v) != nil || loneSurrogate.Match(surrogatePair.ReplaceAll(bytes.ReplaceAll(body, []byte(`\\`), []byte("__")), nil)) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return soundValue(dec, 0)
}

// A surrogate escaped alone is what is left of a valid body once its escaped
// backslashes are blanked out and then its escaped pairs taken out, each
// read left to right, as encoding/json reads them.
var (
	surrogatePair = regexp.MustCompile(`\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}`)
	loneSurrogate = regexp.MustCompile(`\\u[dD][89a-fA-F]`)
)

func soundValue(dec *json.Decoder, depth int) bool {
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth+1 > strictjson.MaxDepth {
			return false
		}
		var names []string
		for dec.More() {
			if v == '{' {
				name, _ := dec.Token()
				key := name.(string)
				for _, other := range names {
					if strings.EqualFold(key, other) {
						return false
					}
				}
				if strings.ContainsRune(key, 0) {
					return false
				}
				names = append(names, key)
			}
			if !soundValue(dec, depth+1) {
				return false
			}
		}
		_, err := dec.Token()
		return err == nil
	case string:
		return !strings.ContainsRune(v, 0)
	case json.Number:
		f, _ := strconv.ParseFloat(v.String(), 64)
		m, _, _ := strings.Cut(strings.ToLower(v.String()), "e")
		return f != 0 || !strings.ContainsAny(m, "123456789")
	}
	return true
}
