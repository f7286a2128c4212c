package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to count rows
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", to count rows

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/token"
	"github.com/customerd/customerd/token/jwtcheck"
)

// rawReply is an answer with its body read.
type rawReply struct {
	*http.Response
	body []byte
}

// rawCall sends a request through env.HTTP (which checks the answer against
// openapi.yaml). header is pairs of name, value; a body goes as
// application/json unless a Content-Type is given.
func rawCall(t *testing.T, env *apptest.Env, method, path string, body io.Reader, header ...string) rawReply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, env.Server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := env.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return rawReply{Response: res, body: b}
}

// leakWords must never appear in a problem, whatever the request was.
var leakWords = []string{"sql", "select", "panic", "goroutine", "runtime.", strings.ToLower(apptest.Secret)}

// mustProblem checks that r is an RFC 9457 problem with status, and that it
// leaks nothing: no SQL, stack, secret, nor any of the strings in sent.
func mustProblem(t *testing.T, r rawReply, status int, sent ...string) map[string]any {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s → %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem is not a JSON object: %v: %s", err, r.body)
	}
	for _, k := range []string{"type", "title", "instance", "requestId"} {
		if s, _ := p[k].(string); s == "" {
			t.Errorf("problem has no %s: %s", k, r.body)
		}
	}
	if p["status"] != float64(status) {
		t.Errorf("problem status %v, want %d", p["status"], status)
	}
	if p["instance"] != r.Request.URL.EscapedPath() {
		t.Errorf("problem instance %v, want %s", p["instance"], r.Request.URL.EscapedPath())
	}
	if id := r.Header.Get("X-Request-Id"); id == "" || p["requestId"] != id {
		t.Errorf("problem requestId %v, X-Request-Id %q", p["requestId"], id)
	}
	lower := strings.ToLower(string(r.body))
	for _, w := range leakWords {
		if strings.Contains(lower, w) {
			t.Errorf("problem contains %q: %s", w, r.body)
		}
	}
	for _, s := range sent {
		if s != "" && strings.Contains(string(r.body), s) {
			t.Errorf("problem echoes what was sent (%.40s…): %s", s, r.body)
		}
	}
	return p
}

// problemFields are the field names of a validation problem's errors.
func problemFields(p map[string]any) map[string]bool {
	out := map[string]bool{}
	errs, _ := p["errors"].(map[string]any)
	for k, v := range errs {
		if msgs, ok := v.([]any); ok && len(msgs) > 0 {
			out[k] = true
		}
	}
	return out
}

// rowCounts counts the accounts and challenges of the database behind dbURL,
// straight from its tables.
func rowCounts(t *testing.T, dbURL string) (customers, challenges int) {
	t.Helper()
	driver, dsn := "pgx", dbURL
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		driver, dsn = "sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []struct {
		table string
		n     *int
	}{{"customers", &customers}, {"challenges", &challenges}} {
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+q.table).Scan(q.n); err != nil {
			t.Fatalf("count %s: %v", q.table, err)
		}
	}
	return customers, challenges
}

// mustNotExist checks that no account of tenant has email.
func mustNotExist(t *testing.T, env *apptest.Env, tenant, email string) {
	t.Helper()
	if c, err := env.App.Store.CustomerByEmail(ctx, tenant, email); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an account with %s exists after a refused request: %v %+v", email, err, c)
	}
	if n := env.Logs.Sent(email); n != 0 {
		t.Errorf("%d codes were sent to %s by a refused request", n, email)
	}
}

// b64 is base64url without padding, as JOSE wants.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// tokenPayload decodes the claims of a compact JWS.
func tokenPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// signingInput is the first two segments of a JWS with header and claims.
func signingInput(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(c)
}

// signES256 signs a JWS with key (r||s, 32 bytes each, as RFC 7518 wants),
// in the low-S form customerd signs and accepts only.
func signES256(t *testing.T, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	in := signingInput(t, header, claims)
	sum := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	jwtcheck.LowSSignature(sig)
	return in + "." + b64(sig)
}

// flipLastChar changes the last character of tok to another one that keeps
// the base64url canonical (the last character of a 64-byte signature carries
// 2 bits), so that the signature itself, not its encoding, is what fails.
func flipLastChar(tok string) string {
	last := tok[len(tok)-1]
	for _, c := range []byte("AQgw") {
		if c != last {
			return tok[:len(tok)-1] + string(c)
		}
	}
	panic("unreachable")
}

// noLength hides the length of a body, so that it goes chunked.
type noLength struct{ r io.Reader }

func (n noLength) Read(p []byte) (int, error) { return n.r.Read(p) }

// twoTenants is demo (short-lived tokens) and b.
const twoTenants = `
tenants:
  demo:
    tokenLifetime: 1m
  b: {}
`

func TestBadInput(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, twoTenants)
		const path = "/api/demo/customer"

		// A real customer of demo and one of b, whose tokens the cases forge, bend or misuse.
		good := env.SignIn(t, "demo", "owner@example.com")
		otherTenant := env.SignIn(t, "b", "owner@example.com")
		claims := tokenPayload(t, good)

		jwks := rawCall(t, env, http.MethodGet, "/api/demo/.well-known/jwks.json", nil)
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(jwks.body, &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("jwks: %v %s", err, jwks.body)
		}
		var pub struct {
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal(set.Keys[0], &pub); err != nil || pub.Kid == "" {
			t.Fatalf("jwk: %v %s", err, set.Keys[0])
		}

		algNone := signingInput(t, map[string]any{"alg": "none", "typ": "JWT", "kid": pub.Kid}, claims) + "."

		hsInput := signingInput(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": pub.Kid}, claims)
		mac := hmac.New(sha256.New, set.Keys[0])
		mac.Write([]byte(hsInput))
		hsWithPublicKey := hsInput + "." + b64(mac.Sum(nil))

		foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		expiredClaims := map[string]any{}
		for k, v := range claims {
			expiredClaims[k] = v
		}
		now := time.Now().Unix()
		expiredClaims["iat"], expiredClaims["nbf"], expiredClaims["exp"] = now-7200, now-7200, now-3600
		foreignExpired := signES256(t, foreign, map[string]any{"alg": "ES256", "typ": "JWT", "kid": pub.Kid}, expiredClaims)

		// An expired token the tenant really signed: issued with a lifetime already over.
		expired, err := env.App.Tokens.Issue(ctx, "demo", token.Claims{Subject: claims["sub"].(string), Provider: "otp", AMR: []string{"otp"}}, -time.Hour)
		if err != nil {
			t.Fatal(err)
		}

		for _, tc := range badInputCases(forged{good, otherTenant, algNone, hsWithPublicKey, foreignExpired, expired}) {
			t.Run(tc.name, func(t *testing.T) {
				customersBefore, challengesBefore := rowCounts(t, dbURL)
				var body io.Reader = strings.NewReader(tc.body)
				if tc.chunked {
					body = noLength{bytes.NewReader([]byte(tc.body))}
				}
				header := []string{}
				if tc.contentType != "" {
					header = append(header, "Content-Type", tc.contentType)
				}
				if tc.auth != "" {
					header = append(header, "Authorization", tc.auth)
				}
				header = append(header, tc.header...)
				at := path
				if tc.path != "" {
					at = tc.path
				}
				r := rawCall(t, env, http.MethodPost, at, body, header...)
				if tc.chunked && r.Request.ContentLength > 0 {
					// A body of unknown length (ContentLength 0 or -1 with a Body) goes chunked.
					t.Fatalf("the body was sent with a length (%d), not chunked", r.Request.ContentLength)
				}
				secret := strings.TrimSpace(strings.TrimPrefix(tc.auth, "Bearer"))
				p := mustProblem(t, r, tc.status, secret)
				if tc.status == http.StatusUnauthorized {
					if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
						t.Errorf("WWW-Authenticate %q, want Bearer error=\"invalid_token\"", got)
					}
				}
				got := problemFields(p)
				for _, f := range tc.fields {
					if !got[f] {
						t.Errorf("errors has no %s: %s", f, r.body)
					}
				}
				if tc.fields != nil && len(got) != len(tc.fields) {
					t.Errorf("errors %v, want exactly %v", got, tc.fields)
				}

				// Nothing was written.
				mustNotExist(t, env, "demo", tc.email)
				if customers, challenges := rowCounts(t, dbURL); customers != customersBefore || challenges != challengesBefore {
					t.Errorf("rows: %d customers and %d challenges, were %d and %d", customers, challenges, customersBefore, challengesBefore)
				}
				if strings.Contains(tc.email, "@example.com") {
					// The address is still free: an anonymous create takes it (200, not 202).
					created := rawCall(t, env, http.MethodPost, path, strings.NewReader(`{"email":"`+tc.email+`"}`))
					if created.StatusCode != http.StatusOK {
						t.Errorf("create %s afterwards → %d, want 200: %s", tc.email, created.StatusCode, created.body)
					}
				}
			})
		}

		// The owner's account is as signIn left it: no forged token changed it.
		me := rawCall(t, env, http.MethodGet, path, nil, "Authorization", "Bearer "+good)
		var c map[string]any
		if me.StatusCode != http.StatusOK || json.Unmarshal(me.body, &c) != nil || c["email"] != "owner@example.com" {
			t.Fatalf("owner after the table: %d %s", me.StatusCode, me.body)
		}
	})
}

// badInputCase is one request the bad-input table sends to POST /customer
// (or to path): what it sends and what it must answer.
type badInputCase struct {
	name        string
	email       string // must not exist afterwards
	body        string
	chunked     bool
	contentType string
	auth        string // Authorization
	header      []string
	path        string // the upsert path when empty
	status      int
	fields      []string // of a 412 (or of a 400 that names fields)
}

// forged are the tokens the table's cases send.
type forged struct{ good, otherTenant, algNone, hsWithPublicKey, foreignExpired, expired string }

// badInputCases is the bad-input table: every request that must be refused,
// and nothing written.
func badInputCases(tok forged) []badInputCase {
	good, otherTenant, algNone, hsWithPublicKey, foreignExpired, expired := tok.good, tok.otherTenant, tok.algNone, tok.hsWithPublicKey, tok.foreignExpired, tok.expired
	big := `{"email":"%s","pad":"` + strings.Repeat("a", 1<<20) + `"}`
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	return []badInputCase{
		{name: "malformed JSON", email: "c01@example.com", body: `{"email":"c01@example.com",`, status: 400},
		{name: "a JSON array body", email: "c02@example.com", body: `[{"email":"c02@example.com"}]`, status: 400},
		{name: "a JSON string body", email: "c03@example.com", body: `"c03@example.com"`, status: 400},
		{name: "invalid UTF-8", email: "c04@example.com", body: "{\"email\":\"c04@example.com\",\"firstName\":\"Jo\xff\xfe\"}", status: 400},
		{name: "email and Email in one object", email: "c05@example.com", body: `{"Email":"c05b@example.com","email":"c05@example.com"}`, status: 400},
		{name: "duplicate keys", email: "c06@example.com", body: `{"email":"c06b@example.com","email":"c06@example.com"}`, status: 400},
		{name: "nesting deeper than 32", email: "c07@example.com", body: `{"email":"c07@example.com","deep":` + deep + `}`, status: 400},
		{name: "a NUL character in a string", email: "c08@example.com", body: `{"email":"c08@example.com","firstName":"Jo\u0000e"}`, status: 400},
		{name: "a NUL character in a member name", email: "c09@example.com", body: `{"email":"c09@example.com","x\u0000":"y"}`, status: 400},
		{name: "a 1 MiB body", email: "c10@example.com", body: fmt.Sprintf(big, "c10@example.com"), status: 413},
		{name: "a 1 MiB chunked body", email: "c11@example.com", body: fmt.Sprintf(big, "c11@example.com"), chunked: true, status: 413},
		{name: "text/plain", email: "c12@example.com", body: `{"email":"c12@example.com"}`, contentType: "text/plain", status: 415},
		{name: "an empty body", email: "c13@example.com", body: ``, status: 400},
		{name: "trailing data after the object", email: "c14@example.com", body: `{"email":"c14@example.com"} {"email":"c14b@example.com"}`, status: 400},
		{name: "trailing garbage after the object", email: "c15@example.com", body: `{"email":"c15@example.com"}x`, status: 400},
		{name: "an invalid email", email: "c16.example.com", body: `{"email":"c16.example.com","firstName":"Jo"}`, status: 412, fields: []string{"email"}},
		{name: "several bad fields", email: "c17@@example", body: `{"email":"c17@@example","birthDate":"1990-13-45","country":"XX","phoneNumber":"123"}`,
			status: 412, fields: []string{"email", "birthDate", "country", "phoneNumber"}},
		{name: "a number as firstName", email: "c18@example.com", body: `{"email":"c18@example.com","firstName":5}`, status: 412, fields: []string{"firstName"}},
		{name: "a type error and a rule error together", email: "c28.example.com", body: `{"email":"c28.example.com","firstName":5,"country":"XX"}`,
			status: 412, fields: []string{"email", "firstName", "country"}},
		{name: "a token with alg none", email: "c19@example.com", body: `{"email":"c19@example.com"}`, auth: "Bearer " + algNone, status: 401},
		{name: "an HS256 token keyed with the tenant's public key", email: "c20@example.com", body: `{"email":"c20@example.com"}`, auth: "Bearer " + hsWithPublicKey, status: 401},
		{name: "an expired token signed by a foreign key with the tenant's kid", email: "c21@example.com", body: `{"email":"c21@example.com"}`, auth: "Bearer " + foreignExpired, status: 401},
		{name: "an expired token of the tenant", email: "c22@example.com", body: `{"email":"c22@example.com"}`, auth: "Bearer " + expired, status: 401},
		{name: "a token whose signature was altered", email: "c23@example.com", body: `{"email":"c23@example.com"}`, auth: "Bearer " + flipLastChar(good), status: 401},
		{name: "another tenant's token", email: "c24@example.com", body: `{"email":"c24@example.com"}`, auth: "Bearer " + otherTenant, status: 401},
		{name: "a truncated token", email: "c25@example.com", body: `{"email":"c25@example.com"}`, auth: "Bearer " + good[:len(good)-20], status: 401},
		{name: "Bearer with nothing after it", email: "c26@example.com", body: `{"email":"c26@example.com"}`, auth: "Bearer", status: 401},
		{name: "Bearer token and more", email: "c27@example.com", body: `{"email":"c27@example.com"}`, auth: "Bearer " + good + " extra", status: 401},
		{name: "a number that underflows to zero", email: "c29@example.com", body: `{"email":"c29@example.com","n":0.1e-999999}`, status: 412, fields: []string{"n"}},
		{name: "a number beyond float64", email: "c30@example.com", body: `{"email":"c30@example.com","n":1e999}`, status: 412, fields: []string{"n"}},
		{name: "a negative number beyond float64", email: "c31@example.com", body: `{"email":"c31@example.com","n":-17976931348623159e292}`, status: 412, fields: []string{"n"}},
		{name: "an out-of-range number deep in a free-form property", email: "c32@example.com", body: `{"email":"c32@example.com","loyalty":{"tiers":[1,{"points":2e-400}]}}`,
			status: 412, fields: []string{"loyalty"}},
		{name: "zero with an exponent no database keeps", email: "c33@example.com", body: `{"email":"c33@example.com","n":0e-999999}`, status: 412, fields: []string{"n"}},
		{name: "every out-of-range number is named", email: "c34@example.com", body: `{"email":"c34@example.com","n":1e999,"m":[1e-999],"o":1}`, status: 412, fields: []string{"n", "m"}},
		{name: "a free-form value past 4 KiB once its numbers are written out", email: "c35@example.com",
			body: `{"email":"c35@example.com","n":[` + strings.TrimSuffix(strings.Repeat("1e300,", 14), ",") + `]}`, status: 412, fields: []string{"n"}},
		{name: "a NUL character deep in a free-form property", email: "c36@example.com", body: `{"email":"c36@example.com","x":{"y":["a\u0000"]}}`, status: 400},
		{name: "a NUL character in a nested member name", email: "c37@example.com", body: `{"email":"c37@example.com","x":[{"\u0000":1}]}`, status: 400},
		{name: "an Idempotency-Key that is not UTF-8", email: "c38@example.com", body: `{"email":"c38@example.com"}`, header: []string{"Idempotency-Key", "\xff"}, status: 400},
		{name: "an Idempotency-Key that is not UTF-8, with an empty object", body: `{}`, header: []string{"Idempotency-Key", "\xff"}, status: 400},
		{name: "an Idempotency-Key of 256 characters", email: "c39@example.com", body: `{"email":"c39@example.com"}`, header: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 400},
		{name: "an Idempotency-Key with a letter outside ASCII", email: "c40@example.com", body: `{"email":"c40@example.com"}`, header: []string{"Idempotency-Key", "clé"}, status: 400},
		{name: "an Idempotency-Key with a space inside", email: "c41@example.com", body: `{"email":"c41@example.com"}`, header: []string{"Idempotency-Key", "a b"}, status: 400},
		{name: "a tenant id that is not UTF-8", email: "c43@example.com", path: "/api/%ff/customer", body: `{"email":"c43@example.com"}`, status: 404},
		{name: "a NUL character in the tenant id", email: "c44@example.com", path: "/api/%00/customer", body: `{"email":"c44@example.com"}`, status: 404},
		{name: "a tenant id of 10,000 characters", email: "c45@example.com", path: "/api/" + strings.Repeat("t", 10000) + "/customer", body: `{"email":"c45@example.com"}`, status: 404},
		{name: "a flow name that is not UTF-8", email: "c46@example.com", path: "/api/demo/customer?flow=%ff%00", body: `{"email":"c46@example.com"}`, status: 400},
		{name: "a provider name that is not UTF-8", email: "c47@example.com", path: "/api/demo/customer/authenticate?provider=%ff%00", body: `{"email":"c47@example.com"}`, status: 400},
		{name: "a bearer token that is not UTF-8", email: "c48@example.com", body: `{"email":"c48@example.com"}`, auth: "Bearer \xff.\xff.\xff", status: 401},
		{name: "a number beyond float64 in an authenticate body", email: "c42@example.com", path: "/api/demo/customer/authenticate?provider=otp",
			body: `{"email":"c42@example.com","n":1e999}`, status: 400, fields: []string{"n"}},
	}
}
