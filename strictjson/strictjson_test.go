package strictjson_test

import (
	"slices"
	"testing"

	"github.com/customerd/customerd/strictjson"
)

func TestCheckNumber(t *testing.T) {
	for lit, ok := range map[string]bool{
		"0": true, "-0": true, "0e-999999": true, "0.000": true, "5e-324": true, "1.7976931348623157e308": true, "12345678901234567890": true,
		"1e999": false, "-1.8e308": false, "2e-324": false, "0.1e-999999": false, "-1e-400": false,
	} {
		if err := strictjson.CheckNumber(lit); (err == nil) != ok {
			t.Errorf("CheckNumber(%s) = %v, want ok %v", lit, err, ok)
		}
	}
}

// Two strings encoding/json reads as one are refused: the bytes of another
// encoding than UTF-8 and half a surrogate pair, which both become U+FFFD.
func TestTextThatEncodingJSONWouldAlterIsRefused(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"subject":"müller"}`:                  true,
		`{"subject":"m\u00fcller"}`:             true,
		`{"s":"\ud83d\ude00","\uD83D\uDE00":1}`: true,
		`"\\ud800"`:                             true, // a backslash, then "ud800"
		`"\\\ud83d\ude00"`:                      true,
		`"\u00"`:                                true, // no escape Text reads; Check refuses it as JSON
		"{\"subject\":\"m\xfcller\"}":           false,
		"{\"subject\":\"m\xe4ller\"}":           false,
		`{"subject":"m\ud800ller"}`:             false,
		`{"subject":"m\udc00ller"}`:             false,
		`"\ud800"`:                              false,
		`"\ud800\ud800\udc00"`:                  false, // the first high half has no low one after it
		`"\ud800\n\udc00"`:                      false,
		`"\ud83d\\\ude00"`:                      false,
		`"\\\ud800"`:                            false,
		`"\uDBFF"`:                              false,
	} {
		if err := strictjson.Text([]byte(body)); (err == nil) != ok {
			t.Errorf("Text(%s) = %v, want ok %v", body, err, ok)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"subject":"ada","claims":{"email":"a@example.com"}}`, true},
		{`{"subject":"ada","subject":"eve"}`, false},
		{`{"subject":"ada","claims":{"email":"a@example.com","EMAIL":"v@example.com"}}`, false},
		{`{"subject":"ada","ſubject":"eve"}`, false},
		{`{"subject":"ada","\u0073ubject":"eve"}`, false},
		{`{"a":{"x":1},"b":{"x":1}}`, true}, // one name in two objects
		{`{"subject":"m\ud800"}`, false},
		{`{"subject":"ada"} {"subject":"eve"}`, false},
		{``, false},
		{`{"subject":"ada"`, false},
	} {
		if _, err := strictjson.Check([]byte(c.body)); (err == nil) != c.ok {
			t.Errorf("Check(%s) = %v, want ok %v", c.body, err, c.ok)
		}
	}
	found, err := strictjson.Check([]byte(`{"a":"x\u0000","b":[1e999],"c":1e-400,"d":1}`))
	if err != nil || !found.NUL || !slices.Equal(found.Numbers, []string{"b", "c"}) {
		t.Errorf("Check = %+v, %v; want a NUL and the numbers of b and c", found, err)
	}
}
