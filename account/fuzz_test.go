package account_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/strictjson"
)

// FuzzDecode feeds arbitrary bodies to Decode, and what it accepts to Apply,
// on a new account and on a stored one.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"email":" Jane.Doe@Example.COM ","phoneNumber":"06 12 34 56 78","firstName":"Jane","birthDate":"1990-02-01"}`,
		`{"email":"a@example.com","country":"fr","language":"en-gb","nationality":"de","postcode":"75001"}`,
		`{"email":"a@example.com","zipCode":"75001","city":"Paris 1er"}`,
		`{"zipCode":"13001","postcode":"7500","country":"XX"}`,
		`{"firstName":5,"isProspect":"yes","consents_sms":1,"email":{"a":1},"lastName":[]}`,
		`{"firstName":null,"email":null,"phoneNumber":"","city":"   "}`,
		`{"id":"x","createdAt":"2000-01-01T00:00:00Z","emailVerified":true,"provider":"p"}`,
		`{"firstName":"Zoë 山田 🙂","city":"\u00e9\ud83d\ude42","title":"\u0000"}`,
		`{"loyalty":{"tier":"gold","points":12345678901234567890,"tags":["a",{"b":null}]},"n":-1.5e300}`,
		`{"n":1e999,"m":[0.1e-999999],"o":{"p":0e-99999999999999999999},"q":-0.0E+0,"r":1.50e1}`,
		`{"deep":[{"a":[{"a":[{"a":[{"a":[1]}]}]}]}],"s":"[[[[[[[[[[\""}`,
		`{"":1,"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":2}`,
		`{"birthDate":"1895-06-01","country":"RE","postcode":"97400"}`,
		`{"phoneNumber":"+4420794609580000000000","language":"x-private-use-tag-very-long"}`,
		`{"email":"a@b.c","email":"b@c.d"}`,
		"{\"bad utf8\":\"\xff\xfe\",\"\xc3\":1}",
		` [] `, `"text"`, `42`, `null`, `{`, `{"a":}`, `{"a":1}{}`, "\x00", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := account.Decode(body)
		if err != nil {
			var verr *account.ValidationError
			if !errors.Is(err, account.ErrNotObject) && !errors.As(err, &verr) {
				t.Fatalf("Decode error %v (%T) is neither ErrNotObject nor a *ValidationError", err, err)
			}
			return
		}
		for name, v := range in.Set {
			switch v := v.(type) {
			case nil, bool:
			case string:
				if v == "" || v != strings.TrimSpace(v) {
					t.Fatalf("Set[%q] = %q: text is trimmed and never empty", name, v)
				}
			default:
				t.Fatalf("Set[%q] = %#v (%T); want a string, a bool or nil", name, v, v)
			}
		}
		for name, raw := range in.Extras {
			if !json.Valid(raw) {
				t.Fatalf("Extras[%q] = %q is not valid JSON", name, raw)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			for tok, err := dec.Token(); err == nil; tok, err = dec.Token() {
				if n, ok := tok.(json.Number); ok && (strings.ContainsAny(n.String(), "eE") || strictjson.CheckNumber(n.String()) != nil) {
					t.Fatalf("Extras[%q] keeps the number %s: want it in plain decimal, within float64", name, n)
				}
			}
		}
		for _, before := range []*store.Customer{nil, existing()} {
			c, err := account.Apply(frTenant(), before, in, now)
			if err != nil {
				var verr *account.ValidationError
				if !errors.As(err, &verr) || len(verr.Fields) == 0 {
					t.Fatalf("Apply error %v (%T); want a *ValidationError with fields", err, err)
				}
				if c != nil {
					t.Fatalf("Apply returned an account and an error")
				}
				continue
			}
			if c == nil {
				t.Fatal("Apply returned neither an account nor an error")
			}
			if _, err := c.Profile.Value(); err != nil {
				t.Fatalf("the profile cannot be stored: %v", err)
			}
		}
	})
}
