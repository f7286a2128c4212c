package account_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// absent marks a field a case wants missing from the account's view.
type absentT struct{}

var absent = absentT{}

func frTenant() *tenant.Tenant {
	return &tenant.Tenant{ID: "acme", DefaultCountry: "FR", DefaultLanguage: "fr", PhoneRegion: "FR", Identifier: "email"}
}

func ptr[T any](v T) *T { return &v }

// existing is a stored account as an earlier Apply left it.
func existing() *store.Customer {
	created := now.Add(-48 * time.Hour)
	return &store.Customer{
		ID: "cust-1", TenantID: "acme",
		Email: ptr("jane@example.com"), EmailVerified: true,
		Phone: ptr("+33612345678"), PhoneVerified: true,
		Profile: store.Profile{
			"firstName": "Jane", "lastName": "Doe", "country": "FR", "language": "fr",
			"postcode": "75001", "city": "Paris", "region": "Île-de-France",
			"consents_email": true, "consents_sms": false, "consents_post": false, "consents_emailReceipt": false,
			"isProspect": false,
			"loyalty":    map[string]any{"tier": "gold"},
		},
		Version: 3, CreatedAt: created, UpdatedAt: created,
	}
}

// run decodes body and applies it to c for t, the way a request does.
func run(t *testing.T, tn *tenant.Tenant, c *store.Customer, body string) (*store.Customer, error) {
	t.Helper()
	in, err := account.Decode([]byte(body))
	if err != nil {
		return nil, err
	}
	return account.Apply(tn, c, in, now)
}

// fieldsOf returns the keys of a *ValidationError, sorted, or fails.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var verr *account.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v (%T); want a *account.ValidationError", err, err)
	}
	keys := make([]string, 0, len(verr.Fields))
	for k, msgs := range verr.Fields {
		if len(msgs) == 0 {
			t.Errorf("field %q has no message", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		set    map[string]any
		extras map[string]string
	}{
		{"an empty object", `{}`, map[string]any{}, map[string]string{}},
		{"text is trimmed", `{"firstName":"  Jane  "}`, map[string]any{"firstName": "Jane"}, nil},
		{"flags are booleans", `{"isProspect":false,"consents_sms":true}`, map[string]any{"isProspect": false, "consents_sms": true}, nil},
		{"null clears a field", `{"firstName":null}`, map[string]any{"firstName": nil}, nil},
		{"an empty string clears a field", `{"lastName":"   "}`, map[string]any{"lastName": nil}, nil},
		{"zipCode is an alias of postcode", `{"zipCode":"75001"}`, map[string]any{"postcode": "75001"}, nil},
		{"postcode wins over zipCode", `{"zipCode":"13001","postcode":"75001"}`, map[string]any{"postcode": "75001"}, nil},
		{"read-only fields are dropped", `{"id":"x","createdAt":"2020-01-01T00:00:00Z","updatedAt":"x","emailVerified":true,"phoneNumberVerified":true,"provider":"p","authenticatedAt":"x","expiresAt":"x","activatedAt":"x"}`, map[string]any{}, map[string]string{}},
		{"free-form properties are kept as sent", `{"loyalty": {"tier": "gold", "points": 12345678901234567890}, "n": 1.50}`, map[string]any{}, map[string]string{"loyalty": `{"tier": "gold", "points": 12345678901234567890}`, "n": `1.50`}},
		{"unicode text", `{"firstName":"Zoë 山田 🙂"}`, map[string]any{"firstName": "Zoë 山田 🙂"}, nil},
		{"100 characters of unicode are 100", `{"firstName":"` + strings.Repeat("é", 100) + `"}`, map[string]any{"firstName": strings.Repeat("é", 100)}, nil},
		{"surrounding whitespace of the body", " \n\t{\"city\":\"Lyon\"}\n ", map[string]any{"city": "Lyon"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := account.Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(in.Set, tt.set) {
				t.Errorf("Set = %#v, want %#v", in.Set, tt.set)
			}
			if tt.extras != nil {
				got := map[string]string{}
				for k, v := range in.Extras {
					got[k] = string(v)
				}
				if !reflect.DeepEqual(got, tt.extras) {
					t.Errorf("Extras = %v, want %v", got, tt.extras)
				}
			}
		})
	}
}

func TestDecodeRefusesWhatIsNotAnObject(t *testing.T) {
	for _, body := range []string{``, `   `, `[]`, `[{"email":"a@b.fr"}]`, `"text"`, `42`, `true`, `null`, `{`, `{"email":}`, `{"a":1}{"b":2}`, `{"a":1} x`, "\x00{}"} {
		t.Run(fmt.Sprintf("%q", body), func(t *testing.T) {
			_, err := account.Decode([]byte(body))
			if !errors.Is(err, account.ErrNotObject) {
				t.Fatalf("Decode = %v; want account.ErrNotObject", err)
			}
			var verr *account.ValidationError
			if errors.As(err, &verr) {
				t.Errorf("a body that is not an object is not a validation error: %v", err)
			}
		})
	}
}

func TestApplyNormalisesAndEnriches(t *testing.T) {
	birth := now.AddDate(-30, 0, 0).Format(time.DateOnly)
	tests := []struct {
		name   string
		tenant func(*tenant.Tenant)
		body   string
		want   map[string]any // in the account's View
	}{
		{"email is trimmed and lower-cased", nil, `{"email":"  Jane.Doe@Example.COM "}`,
			map[string]any{"email": "jane.doe@example.com", "emailVerified": false}},
		{"a French phone number becomes E.164", nil, `{"email":"a@example.com","phoneNumber":"06 12 34 56 78"}`,
			map[string]any{"phoneNumber": "+33612345678", "phoneNumberVerified": false}},
		{"an international phone number keeps its country", nil, `{"email":"a@example.com","phoneNumber":"+44 20 7946 0958"}`,
			map[string]any{"phoneNumber": "+442079460958"}},
		{"the tenant's phone region applies", func(t *tenant.Tenant) { t.PhoneRegion = "BE" }, `{"email":"a@example.com","phoneNumber":"0470 12 34 56"}`,
			map[string]any{"phoneNumber": "+32470123456"}},
		{"a birth date", nil, `{"email":"a@example.com","birthDate":"` + birth + `"}`,
			map[string]any{"birthDate": birth}},
		{"a birth date 130 years ago", nil, `{"email":"a@example.com","birthDate":"` + now.AddDate(-130, 0, 0).Format(time.DateOnly) + `"}`,
			map[string]any{"birthDate": now.AddDate(-130, 0, 0).Format(time.DateOnly)}},
		{"a country is upper-cased", nil, `{"email":"a@example.com","country":"fr"}`,
			map[string]any{"country": "FR"}},
		{"another country", nil, `{"email":"a@example.com","country":"be","postcode":"1000"}`,
			map[string]any{"country": "BE", "postcode": "1000", "city": absent, "region": absent}},
		{"a nationality is upper-cased", nil, `{"email":"a@example.com","nationality":"de"}`,
			map[string]any{"nationality": "DE"}},
		{"a language tag is canonicalised", nil, `{"email":"a@example.com","language":"en-gb"}`,
			map[string]any{"language": "en-GB"}},
		{"a postcode fills city and region", nil, `{"email":"a@example.com","country":"FR","postcode":"75001"}`,
			map[string]any{"postcode": "75001", "city": "Paris", "region": "Île-de-France"}},
		{"zipCode fills city and region too", nil, `{"email":"a@example.com","zipCode":"75001"}`,
			map[string]any{"postcode": "75001", "zipCode": absent, "city": "Paris", "region": "Île-de-France"}},
		{"a city sent by the request is kept", nil, `{"email":"a@example.com","postcode":"75001","city":"Paris 1er"}`,
			map[string]any{"postcode": "75001", "city": "Paris 1er", "region": "Île-de-France"}},
		{"a region sent by the request is kept", nil, `{"email":"a@example.com","postcode":"75001","region":"IDF"}`,
			map[string]any{"city": "Paris", "region": "IDF"}},
		{"an overseas postcode under its own country", nil, `{"email":"a@example.com","country":"RE","postcode":"97400"}`,
			map[string]any{"country": "RE", "city": "Saint-Denis", "region": "La Réunion"}},
		{"defaults on creation", nil, `{"email":"a@example.com"}`,
			map[string]any{"country": "FR", "language": "fr", "consents_email": false, "consents_sms": false,
				"consents_post": false, "consents_emailReceipt": false, "isProspect": true}},
		{"defaults come from the tenant", func(t *tenant.Tenant) { t.DefaultCountry, t.DefaultLanguage = "BE", "nl-BE" }, `{"email":"a@example.com"}`,
			map[string]any{"country": "BE", "language": "nl-BE"}},
		{"sent values win over defaults", nil, `{"email":"a@example.com","isProspect":false,"consents_sms":true,"country":"BE","language":"nl"}`,
			map[string]any{"isProspect": false, "consents_sms": true, "consents_email": false, "country": "BE", "language": "nl"}},
		{"read-only fields change nothing", nil, `{"email":"a@example.com","id":"evil","createdAt":"2000-01-01T00:00:00Z","emailVerified":true,"phoneNumberVerified":true,"provider":"evil"}`,
			map[string]any{"emailVerified": false, "phoneNumberVerified": false, "createdAt": now.Format(time.RFC3339Nano), "provider": absent}},
		{"free-form properties are kept as sent", nil, `{"email":"a@example.com","loyalty":{"tier":"gold","points":12345678901234567890,"tags":["a",{"b":null}],"ratio":1.50}}`,
			map[string]any{"loyalty": map[string]any{"tier": "gold", "points": json.Number("12345678901234567890"),
				"tags": []any{"a", map[string]any{"b": nil}}, "ratio": json.Number("1.50")}}},
		{"a free-form number", nil, `{"email":"a@example.com","score":-0.000000000000000000001}`,
			map[string]any{"score": json.Number("-0.000000000000000000001")}},
		{"50 free-form properties are allowed", nil, `{"email":"a@example.com",` + extras(50, 0) + `}`,
			map[string]any{"x00": json.Number("0"), "x49": json.Number("49")}},
		{"a free-form key of 64 characters", nil, `{"email":"a@example.com","` + strings.Repeat("k", 64) + `":1}`,
			map[string]any{strings.Repeat("k", 64): json.Number("1")}},
		{"a free-form value of 4096 bytes", nil, `{"email":"a@example.com","notes":"` + strings.Repeat("x", 4094) + `"}`,
			map[string]any{"notes": strings.Repeat("x", 4094)}},
		{"free-form values nested 8 deep", nil, `{"email":"a@example.com","deep":` + nested(8) + `}`,
			map[string]any{"email": "a@example.com"}},
		{"brackets inside strings are not nesting", nil, `{"email":"a@example.com","s":"[[[[[[[[[[{{{{{{{{{{\"]"}`,
			map[string]any{"s": `[[[[[[[[[[{{{{{{{{{{"]`}},
		{"the phone number as identifier", func(t *tenant.Tenant) { t.Identifier = "phoneNumber" }, `{"phoneNumber":"+33 6 12 34 56 78"}`,
			map[string]any{"phoneNumber": "+33612345678", "email": absent}},
		{"required fields that are there", func(t *tenant.Tenant) { t.RequiredFields = []string{"firstName", "birthDate"} },
			`{"email":"a@example.com","firstName":"Jane","birthDate":"` + birth + `"}`,
			map[string]any{"firstName": "Jane"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := frTenant()
			if tt.tenant != nil {
				tt.tenant(tn)
			}
			c, err := run(t, tn, nil, tt.body)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if c.ID == "" || c.TenantID != tn.ID || !c.CreatedAt.Equal(now) || !c.UpdatedAt.Equal(now) {
				t.Errorf("new account id %q tenant %q created %v updated %v", c.ID, c.TenantID, c.CreatedAt, c.UpdatedAt)
			}
			view := account.View(c)
			for k, want := range tt.want {
				got, ok := view[k]
				switch {
				case want == absent && ok:
					t.Errorf("%s = %#v, want absent", k, got)
				case want != absent && !reflect.DeepEqual(got, want):
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
		})
	}
}

func TestApplyToAnExistingAccount(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, before, after *store.Customer)
	}{
		{"read-only fields in the input change nothing",
			`{"id":"evil","createdAt":"2000-01-01T00:00:00Z","updatedAt":"2000-01-01T00:00:00Z","emailVerified":false,"phoneNumberVerified":false,"provider":"evil","authenticatedAt":"x","expiresAt":"x","activatedAt":"x"}`,
			func(t *testing.T, before, after *store.Customer) {
				want := *before
				want.UpdatedAt = now
				if !reflect.DeepEqual(after, &want) {
					t.Errorf("got  %+v\nwant %+v", after, &want)
				}
			}},
		{"null clears a field", `{"firstName":null}`,
			func(t *testing.T, before, after *store.Customer) {
				if v, ok := after.Profile["firstName"]; ok {
					t.Errorf("firstName = %v, want cleared", v)
				}
				if after.Profile["lastName"] != "Doe" {
					t.Errorf("lastName = %v; a field not sent changed", after.Profile["lastName"])
				}
			}},
		{"null clears the phone number and its verification", `{"phoneNumber":null}`,
			func(t *testing.T, before, after *store.Customer) {
				if after.Phone != nil || after.PhoneVerified {
					t.Errorf("phone %v verified %v", after.Phone, after.PhoneVerified)
				}
			}},
		{"the same email in another case stays verified", `{"email":"JANE@example.com"}`,
			func(t *testing.T, before, after *store.Customer) {
				if *after.Email != "jane@example.com" || !after.EmailVerified {
					t.Errorf("email %s verified %v", *after.Email, after.EmailVerified)
				}
			}},
		{"another email is not verified", `{"email":"john@example.com"}`,
			func(t *testing.T, before, after *store.Customer) {
				if *after.Email != "john@example.com" || after.EmailVerified {
					t.Errorf("email %s verified %v", *after.Email, after.EmailVerified)
				}
			}},
		{"a free-form null is kept as sent", `{"loyalty":null}`,
			func(t *testing.T, before, after *store.Customer) {
				if v, ok := after.Profile["loyalty"]; !ok || v != nil {
					t.Errorf("loyalty = %v (present %v), want null", v, ok)
				}
			}},
		{"another phone number is not verified", `{"phoneNumber":"06 98 76 54 32"}`,
			func(t *testing.T, before, after *store.Customer) {
				if *after.Phone != "+33698765432" || after.PhoneVerified {
					t.Errorf("phone %s verified %v", *after.Phone, after.PhoneVerified)
				}
			}},
		{"isProspect is not reset on update", `{"firstName":"Janet"}`,
			func(t *testing.T, before, after *store.Customer) {
				if after.Profile["isProspect"] != false || after.Profile["consents_email"] != true {
					t.Errorf("isProspect %v consents_email %v", after.Profile["isProspect"], after.Profile["consents_email"])
				}
			}},
		{"a new postcode replaces the city", `{"postcode":"69001"}`,
			func(t *testing.T, before, after *store.Customer) {
				if after.Profile["city"] != "Lyon" || after.Profile["region"] != "Auvergne-Rhône-Alpes" {
					t.Errorf("city %v region %v", after.Profile["city"], after.Profile["region"])
				}
			}},
		{"the stored account is not changed in place", `{"firstName":"Janet","loyalty":{"tier":"silver"}}`,
			func(t *testing.T, before, after *store.Customer) {
				if !reflect.DeepEqual(before, existing()) {
					t.Errorf("Apply changed its input: %+v", before)
				}
				if after.Profile["firstName"] != "Janet" || after.ID != before.ID || after.Version != before.Version {
					t.Errorf("after %+v", after)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := existing()
			after, err := run(t, frTenant(), before, tt.body)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			tt.check(t, before, after)
		})
	}
}

// extras is n free-form properties x00, x01, … from the first.
func extras(n, from int) string {
	parts := make([]string, n)
	for i := range n {
		parts[i] = fmt.Sprintf(`"x%02d":%d`, from+i, from+i)
	}
	return strings.Join(parts, ",")
}

// nested is a JSON value nesting n levels of objects and arrays.
func nested(n int) string {
	s := `1`
	for i := range n {
		if i%2 == 0 {
			s = `[` + s + `]`
		} else {
			s = `{"a":` + s + `}`
		}
	}
	return s
}

func TestApplyRefuses(t *testing.T) {
	future := now.AddDate(0, 0, 1).Format(time.DateOnly)
	tooOld := now.AddDate(-131, 0, 0).Format(time.DateOnly)
	key65 := strings.Repeat("k", 65)
	tests := []struct {
		name   string
		tenant func(*tenant.Tenant)
		before *store.Customer
		body   string
		fields []string
		msg    string // in the message of the first field, when set
	}{
		{"an invalid email", nil, nil, `{"email":"not-an-email"}`, []string{"email"}, "valid email"},
		{"an email without a dot in its domain", nil, nil, `{"email":"jane@localhost"}`, []string{"email"}, ""},
		{"an email with a display name", nil, nil, `{"email":"Jane <jane@example.com>"}`, []string{"email"}, ""},
		{"an email too long", nil, nil, `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, []string{"email"}, ""},
		{"an invalid phone number", nil, nil, `{"email":"a@example.com","phoneNumber":"12"}`, []string{"phoneNumber"}, "valid phone"},
		{"a phone number of letters", nil, nil, `{"email":"a@example.com","phoneNumber":"call me"}`, []string{"phoneNumber"}, ""},
		{"a birth date in another format", nil, nil, `{"email":"a@example.com","birthDate":"01/02/1990"}`, []string{"birthDate"}, "YYYY-MM-DD"},
		{"a birth date that does not exist", nil, nil, `{"email":"a@example.com","birthDate":"1990-02-30"}`, []string{"birthDate"}, ""},
		{"a birth date in the future", nil, nil, `{"email":"a@example.com","birthDate":"` + future + `"}`, []string{"birthDate"}, "past"},
		{"a birth date 130 years and a day ago", nil, nil, `{"email":"a@example.com","birthDate":"` + now.AddDate(-130, 0, -1).Format(time.DateOnly) + `"}`, []string{"birthDate"}, "130 years"},
		{"a birth date 131 years ago", nil, nil, `{"email":"a@example.com","birthDate":"` + tooOld + `"}`, []string{"birthDate"}, "130 years"},
		{"an unknown country", nil, nil, `{"email":"a@example.com","country":"XX"}`, []string{"country"}, "ISO 3166"},
		{"a country name", nil, nil, `{"email":"a@example.com","country":"France"}`, []string{"country"}, ""},
		{"an unknown nationality", nil, nil, `{"email":"a@example.com","nationality":"ZZ"}`, []string{"nationality"}, ""},
		{"a language that is no tag", nil, nil, `{"email":"a@example.com","language":"not a language"}`, []string{"language"}, "language tag"},
		{"no language at all", nil, nil, `{"email":"a@example.com","language":"und"}`, []string{"language"}, "language tag"},
		{"a private-use language tag", nil, nil, `{"email":"a@example.com","language":"x-klingon"}`, []string{"language"}, "language tag"},
		{"a well-formed but unknown language", nil, nil, `{"email":"a@example.com","language":"zz"}`, []string{"language"}, "language tag"},
		{"a language longer than the contract once canonical", nil, nil, `{"email":"a@example.com","language":"sh-x-aaaaaaaa-bbbbbbbb-cccccccc-ddd"}`, []string{"language"}, "language tag"},
		{"a deprecated country alias", nil, nil, `{"email":"a@example.com","country":"UK"}`, []string{"country"}, "ISO 3166"},
		{"a user-assigned country code", nil, nil, `{"email":"a@example.com","nationality":"XK"}`, []string{"nationality"}, "ISO 3166"},
		{"an exceptionally reserved code", nil, nil, `{"email":"a@example.com","country":"EU"}`, []string{"country"}, "ISO 3166"},
		{"an alpha-3 country code", nil, nil, `{"email":"a@example.com","country":"FRA"}`, []string{"country"}, "ISO 3166"},
		{"a numeric country code", nil, nil, `{"email":"a@example.com","nationality":"250"}`, []string{"nationality"}, "ISO 3166"},
		{"a postcode invalid for France", nil, nil, `{"email":"a@example.com","postcode":"7500"}`, []string{"postcode"}, "FR"},
		{"a zipCode invalid for France", nil, nil, `{"email":"a@example.com","zipCode":"7500"}`, []string{"postcode"}, ""},
		{"a postcode invalid for the country sent", nil, nil, `{"email":"a@example.com","country":"BE","postcode":"75001"}`, []string{"postcode"}, "BE"},
		{"a country the stored postcode does not fit", nil, existing(), `{"country":"BE"}`, []string{"postcode"}, ""},
		{"zipCode in another case", nil, nil, `{"email":"a@example.com","ZipCode":"75001"}`, []string{"ZipCode"}, "send zipCode"},
		{"a string for a number field", nil, nil, `{"email":"a@example.com","firstName":5}`, []string{"firstName"}, "string"},
		{"a string for a flag", nil, nil, `{"email":"a@example.com","isProspect":"yes"}`, []string{"isProspect"}, "true or false"},
		{"an object for text", nil, nil, `{"email":{"a":1}}`, []string{"email"}, ""},
		{"51 free-form properties", nil, nil, `{"email":"a@example.com",` + extras(51, 0) + `}`, []string{"additionalProperties"}, "50"},
		{"51 free-form properties over a stored account", nil, existing(), `{` + extras(51, 0) + `}`, []string{"additionalProperties"}, ""},
		{"a free-form value of 5 KiB", nil, nil, `{"email":"a@example.com","notes":"` + strings.Repeat("x", 5120) + `"}`, []string{"notes"}, "4096"},
		{"free-form values nested 9 deep", nil, nil, `{"email":"a@example.com","deep":` + nested(9) + `}`, []string{"deep"}, "8 levels"},
		{"a free-form key of 65 characters", nil, nil, `{"email":"a@example.com","` + key65 + `":1}`, []string{key65}, "64"},
		{"an empty free-form key", nil, nil, `{"email":"a@example.com","":1}`, []string{""}, ""},
		{"the identifier missing", nil, nil, `{"firstName":"Jane"}`, []string{"email"}, "is required"},
		{"the identifier cleared", nil, existing(), `{"email":null}`, []string{"email"}, "is required"},
		{"the phone identifier missing", func(t *tenant.Tenant) { t.Identifier = "phoneNumber" }, nil, `{"email":"a@example.com"}`, []string{"phoneNumber"}, "is required"},
		{"the tenant's required fields missing", func(t *tenant.Tenant) { t.RequiredFields = []string{"firstName", "birthDate"} },
			nil, `{"email":"a@example.com","firstName":"  "}`, []string{"birthDate", "firstName"}, "is required"},
		{"a required field cleared", func(t *tenant.Tenant) { t.RequiredFields = []string{"lastName"} },
			existing(), `{"lastName":null}`, []string{"lastName"}, "is required"},
		{"everything missing", func(t *tenant.Tenant) { t.RequiredFields = []string{"firstName"} }, nil, `{}`, []string{"email", "firstName"}, "is required"},
		{"several bad types together", nil, nil, `{"email":"a@example.com","firstName":5,"isProspect":"yes","consents_sms":1,"` + key65 + `":1}`,
			[]string{"consents_sms", "firstName", "isProspect", key65}, ""},
		{"several bad values together", func(t *tenant.Tenant) { t.RequiredFields = []string{"lastName"} }, nil,
			`{"email":"bad","phoneNumber":"12","birthDate":"x","country":"XX","language":"!!","nationality":"QQ"}`,
			[]string{"birthDate", "country", "email", "language", "lastName", "nationality", "phoneNumber"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := frTenant()
			if tt.tenant != nil {
				tt.tenant(tn)
			}
			c, err := run(t, tn, tt.before, tt.body)
			if c != nil {
				t.Errorf("a refused change returned an account to write: %+v", c)
			}
			if got := fieldsOf(t, err); !slices.Equal(got, tt.fields) {
				t.Fatalf("fields %q, want %q (%v)", got, tt.fields, err)
			}
			var verr *account.ValidationError
			errors.As(err, &verr)
			for name, msgs := range verr.Fields {
				if len(msgs) != 1 {
					t.Errorf("%s has %d messages %q; want one", name, len(msgs), msgs)
				}
			}
			if msg := verr.Fields[tt.fields[0]][0]; !strings.Contains(msg, tt.msg) {
				t.Errorf("%s: %q does not mention %q", tt.fields[0], msg, tt.msg)
			}
			if !strings.Contains(err.Error(), tt.fields[0]) {
				t.Errorf("Error() = %q does not name %q", err.Error(), tt.fields[0])
			}
			if tt.before != nil && !reflect.DeepEqual(tt.before, existing()) {
				t.Errorf("a refused change modified the stored account: %+v", tt.before)
			}
		})
	}
}

func TestDecodeValidationErrorAndApply(t *testing.T) {
	// Decode reports type errors and limits itself; callers stop there.
	_, err := account.Decode([]byte(`{"firstName":5}`))
	if got := fieldsOf(t, err); !slices.Equal(got, []string{"firstName"}) {
		t.Fatalf("fields %q", got)
	}
	// Apply alone, on what a request could decode to, never writes on error.
	c, err := account.Apply(frTenant(), nil, account.Input{Set: map[string]any{"email": "bad"}}, now)
	if c != nil || fieldsOf(t, err)[0] != "email" {
		t.Fatalf("Apply = %+v, %v", c, err)
	}
}

// What older versions, before one spelling of a name was kept, stored under an
// account field's name in another case (zipcode, FirstName, ActivatedAt) or
// a flow's (OptInConfirmedAt) goes with a null in any spelling of it: every
// stored spelling but the field's or the flow's own, and the account's view
// can then be sent back. Found by a review: the null was refused naming the
// field, so nothing could remove them.
func TestANullRemovesAStoredCaseVariant(t *testing.T) {
	tn := frTenant()
	var err error
	tn.Flows, err = flows.Build(map[string][]flows.StepConfig{"optin": {{Set: map[string]any{"optInConfirmedAt": "$now"}}}},
		flows.Defaults{CheckInPolicy: flows.CheckInNone})
	if err != nil {
		t.Fatal(err)
	}
	before := existing()
	older := map[string]any{"zipcode": "75001", "ZIPCODE": "75002", "FirstName": "Eve", "ActivatedAt": "2019-01-01T00:00:00Z",
		"OptInConfirmedAt": "2019-01-01T00:00:00Z", "activatedAt": "2020-01-01T00:00:00Z", "optInConfirmedAt": "2020-01-01T00:00:00Z"}
	for name, v := range older {
		before.Profile[name] = v
	}
	after, err := run(t, tn, before, `{"zipCODE":null,"firstname":null,"ACTIVATEDAT":null,"optinconfirmedat":null}`)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, name := range []string{"zipcode", "ZIPCODE", "FirstName", "ActivatedAt", "OptInConfirmedAt"} {
		if v, ok := after.Profile[name]; ok {
			t.Errorf("%s = %v is still stored", name, v)
		}
	}
	for _, name := range []string{"firstName", "activatedAt", "optInConfirmedAt"} {
		if after.Profile[name] != before.Profile[name] {
			t.Errorf("%s = %v, was %v", name, after.Profile[name], before.Profile[name])
		}
	}
	view, err := json.Marshal(account.View(after))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, tn, after, string(view)); err != nil {
		t.Errorf("the view sent back: %v", err)
	}

	// Nor is such a null a new property where the account keeps as many as it may.
	full := existing() // loyalty and 99 more
	for i := range 99 {
		full.Profile[fmt.Sprintf("x%02d", i)] = i
	}
	if _, err := run(t, tn, full, `{"A":1,"ZipCode":null}`); !slices.Equal(fieldsOf(t, err), []string{"A"}) {
		t.Errorf("errors %v, want A", err)
	}
}
