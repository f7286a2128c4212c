package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/customerd/customerd/gen/api"
)

// The request validator reads the contract as OpenAPI 3.0 (kin-openapi
// compiles a JSON Schema 2020-12 validator for every 3.1 request and never
// caches it: getkin/kin-openapi#1186). Both readings must accept and refuse
// the same requests: every case of the bad-input table, and good ones.
func TestTheContractsTwoReadingsAgree(t *testing.T) {
	reading := func(version string) routers.Router {
		spec, err := api.GetSpec()
		if err != nil {
			t.Fatal(err)
		}
		spec.Servers = nil
		if version != "" {
			spec.OpenAPI = version
		}
		r, err := gorillamux.NewRouter(spec)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	as31, as30 := reading(""), reading("3.0.3")
	verdict := func(r routers.Router, method, path, contentType, body string, header []string) (bool, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		route, params, err := r.FindRoute(req)
		if err != nil {
			return false, "no route: " + err.Error()
		}
		err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{Request: req,
			PathParams: params, Route: route, Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
				ExcludeReadOnlyValidations: true, MultiError: true}})
		return err == nil, fields(err)
	}

	type request struct {
		name, path, contentType, body string
		header                        []string
	}
	var requests []request
	tok := "eyJhbGciOiJFUzI1NiJ9." + strings.Repeat("e30", 8) + "." + strings.Repeat("A", 86) // the tokens' shape: the validator does not read them
	for _, tc := range badInputCases(forged{tok, tok, tok, tok, tok, tok}) {
		path := tc.path
		if path == "" {
			path = "/api/demo/customer"
		}
		ct := tc.contentType
		if ct == "" {
			ct = "application/json"
		}
		requests = append(requests, request{tc.name, path, ct, tc.body, tc.header})
	}
	for _, good := range []struct{ path, body string }{
		{"/api/demo/customer", `{"email":"jane@example.com","firstName":"Jane","postcode":"75001","loyaltyCard":"A-123"}`},
		{"/api/demo/customer?flow=activation", `{"email":"jane@example.com","consents_sms":true,"birthDate":"1990-01-01","tiers":[1,2.5,{"a":null}]}`},
		{"/api/demo/customer", `{"id":"not-ours","createdAt":"2000-01-01T00:00:00Z","lastName":"Doe"}`},
		{"/api/demo/customer/authenticate?provider=otp", `{"email":"jane@example.com"}`},
		{"/api/demo/customer/authenticate?provider=otp", `{"challengeId":"0b7a6d0e-3f55-4d1c-9c55-2f7f6f0e6a11","code":"123456"}`},
		{"/api/demo/customer/authenticate?provider=otp", `{"phoneNumber":"+33612345678","code":"123456"}`},
		{"/api/demo/customer/authenticate?provider=google", `{"idToken":"a.b.c","nonce":"n"}`},
		{"/api/demo/customer/authenticate?provider=brand", `{"login":"ada","password":"x","n":[1,2]}`},
	} {
		requests = append(requests, request{"good " + good.body, good.path, "application/json", good.body, nil})
	}
	accepted := 0
	for _, r := range requests {
		ok31, why31 := verdict(as31, http.MethodPost, r.path, r.contentType, r.body, r.header)
		ok30, why30 := verdict(as30, http.MethodPost, r.path, r.contentType, r.body, r.header)
		if ok31 != ok30 || why31 != why30 {
			t.Errorf("%s: 3.1 %v (%s), 3.0 %v (%s)", r.name, ok31, why31, ok30, why30)
		}
		if ok31 {
			accepted++
		}
	}
	if accepted < 8 {
		t.Fatalf("only %d requests accepted: the good ones should all be", accepted)
	}
}

// fields names what a validation error is about: the body's members or the
// parameters, in order.
func fields(err error) string {
	if err == nil {
		return ""
	}
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, x := range e {
				walk(x)
			}
		case *openapi3filter.RequestError:
			if e.Parameter != nil {
				out = append(out, "param:"+e.Parameter.Name)
			}
			walk(e.Err)
		case *openapi3.SchemaError:
			out = append(out, "body:"+strings.Join(e.JSONPointer(), "/"))
		default:
			if err != nil {
				out = append(out, "other")
			}
		}
	}
	walk(err)
	return strings.Join(out, ",")
}
