package server_test

import (
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/app/apptest"
)

// extraProps is n free-form properties p000, p001, … from the first, each
// holding a string of size bytes.
func extraProps(from, n, size int) string {
	parts := make([]string, n)
	for i := range n {
		parts[i] = fmt.Sprintf(`"p%03d":"%s"`, from+i, strings.Repeat("v", size))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// A stored account keeps at most 100 free-form properties and 64 KiB of JSON,
// however many updates it takes to get there; a change that would pass a
// limit is refused whole, naming the field.
func TestBoundedAccounts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const path = "/api/demo/customer"
		update := func(t *testing.T, tok, body string) rawReply {
			t.Helper()
			return rawCall(t, env, http.MethodPost, path, strings.NewReader(body), "Authorization", "Bearer "+tok)
		}
		mustUpdate := func(t *testing.T, tok, body string) {
			t.Helper()
			if r := update(t, tok, body); r.StatusCode != http.StatusOK {
				t.Fatalf("update → %d: %s", r.StatusCode, r.body)
			}
		}
		refused := func(t *testing.T, tok, body, field string) {
			t.Helper()
			before := customerOf(t, env, "demo", tok)
			p := mustProblem(t, update(t, tok, body), http.StatusPreconditionFailed)
			if got := problemFields(p); len(got) != 1 || !got[field] {
				t.Errorf("errors %v, want exactly %s", p["errors"], field)
			}
			if after := customerOf(t, env, "demo", tok); len(after) != len(before) || after["updatedAt"] != before["updatedAt"] {
				t.Errorf("a refused update changed the account: %d properties, were %d", len(after), len(before))
			}
		}

		t.Run("at most 100 free-form properties across updates", func(t *testing.T) {
			tok := env.SignIn(t, "demo", "many@example.com")
			mustUpdate(t, tok, extraProps(0, 45, 8))
			mustUpdate(t, tok, extraProps(45, 45, 8))
			// 90 stored, 15 new: the eleventh new one, p100, is one too many.
			refused(t, tok, extraProps(90, 15, 8), "p100")
			if c := customerOf(t, env, "demo", tok); c["p090"] != nil {
				t.Errorf("p090 was written by a refused update")
			}
			mustUpdate(t, tok, extraProps(90, 10, 8))  // exactly 100
			mustUpdate(t, tok, extraProps(0, 50, 9))   // changing stored ones adds none
			mustUpdate(t, tok, `{"firstName":"Many"}`) // nor do the account fields
			refused(t, tok, extraProps(100, 1, 8), "p100")
			refused(t, tok, `{"P099":"v","A":1}`, "A") // P099 spells p099 anew: not a new one
			if c := customerOf(t, env, "demo", tok); c["p000"] != strings.Repeat("v", 9) || c["firstName"] != "Many" {
				t.Errorf("profile after the updates: %v", c)
			}
		})

		t.Run("at most 64 KiB of JSON across updates", func(t *testing.T) {
			tok := env.SignIn(t, "demo", "big@example.com")
			mustUpdate(t, tok, extraProps(0, 12, 4000)) // about 48 KB, as one body may carry
			refused(t, tok, extraProps(12, 5, 4000), "additionalProperties")
			mustUpdate(t, tok, extraProps(12, 4, 4000)) // about 64.4 KB still fits
			refused(t, tok, extraProps(16, 1, 2000), "additionalProperties")
			mustUpdate(t, tok, extraProps(0, 1, 100)) // shrinking always fits
		})

		t.Run("markup counts as sent, not escaped", func(t *testing.T) {
			tok := env.SignIn(t, "demo", "markup@example.com")
			mustUpdate(t, tok, strings.ReplaceAll(extraProps(0, 15, 4000), "v", "<"))
			if c := customerOf(t, env, "demo", tok); c["p014"] != strings.Repeat("<", 4000) {
				t.Errorf("p014 = %.20v…", c["p014"])
			}
		})

		t.Run("a create is bounded too", func(t *testing.T) {
			// The body is at most 64 KiB, and the defaults the account gets push it past.
			head := `{"email":"fits@example.com","filler":"`
			props := extraProps(0, 16, 4000)[1:]
			body := head + strings.Repeat("f", 65500-len(head)-len(`",`)-len(props)) + `",` + props
			p := mustProblem(t, rawCall(t, env, http.MethodPost, path, strings.NewReader(body)), http.StatusPreconditionFailed)
			if got := problemFields(p); len(got) != 1 || !got["additionalProperties"] {
				t.Errorf("errors %v, want additionalProperties", p["errors"])
			}
			mustNotExist(t, env, "demo", "fits@example.com")
		})

		t.Run("an account stored past the limits may change but not grow", func(t *testing.T) {
			tok := env.SignIn(t, "demo", "legacy@example.com")
			c, err := env.App.Store.CustomerByEmail(ctx, "demo", "legacy@example.com")
			if err != nil {
				t.Fatal(err)
			}
			for i := range 120 {
				c.Profile[fmt.Sprintf("p%03d", i)] = "v"
			}
			if err := env.App.Store.UpdateCustomer(ctx, c); err != nil {
				t.Fatal(err)
			}
			mustUpdate(t, tok, `{"firstName":"Old"}`)
			mustUpdate(t, tok, extraProps(0, 10, 20))
			refused(t, tok, extraProps(120, 1, 1), "p120")
		})
	})
}
