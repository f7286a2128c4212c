package server_test

import (
	"net/http"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// longLegacyTag is 35 characters, the contract's most, and canonicalises to
// sr-Latn-x-… (40): sh is a legacy code for Serbo-Croatian.
const longLegacyTag = "sh-x-aaaaaaaa-bbbbbbbb-cccccccc-ddd"

// postedBack posts the account's answer back as its owner, which must be
// taken: what customerd answers is what it accepts.
func postedBack(t *testing.T, env *apptest.Env, tenant, tok string) map[string]any {
	t.Helper()
	r := rawCall(t, env, http.MethodGet, "/api/"+tenant+"/customer", nil, withToken(tok)...)
	if back := post(t, env, "/api/"+tenant+"/customer", string(r.body), withToken(tok)...); back.StatusCode != http.StatusOK {
		t.Fatalf("posting the answer back: %d %s", back.StatusCode, back.body)
	}
	return decodeObject(t, r)
}

// A language is stored only as a tag the contract allows: its canonical form
// is checked, not the form sent. Found by an audit: a 35-character legacy
// tag was stored canonicalised to 40, and every read of the account broke
// the contract.
func TestALanguageLongerOnceCanonicalIsRefused(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "legacy@example.com")
		before := customerOf(t, env, "demo", tok)["language"] // the tenant's default
		r := post(t, env, "/api/demo/customer", `{"language":"`+longLegacyTag+`"}`, withToken(tok)...)
		if p := mustProblem(t, r, http.StatusPreconditionFailed); !problemFields(p)["language"] {
			t.Fatalf("a language 40 characters long once canonical: %s", r.body)
		}
		if me := postedBack(t, env, "demo", tok); me["language"] != before {
			t.Fatalf("language %v after a refused one, want %v", me["language"], before)
		}
		// A legacy code that stays short is still taken, canonical.
		postOK(t, env, "/api/demo/customer", `{"language":"mo"}`, withToken(tok)...)
		if me := postedBack(t, env, "demo", tok); me["language"] != "ro-MD" {
			t.Fatalf("language mo: stored %v, want ro-MD", me["language"])
		}
	})
}

// A provider's locale claim fills the account's language only where the
// account rules take it; otherwise the tenant's default (fr) stays. Found by an audit: a locale was length-checked
// before it was canonicalised and never checked for a known language, so a
// first sign-in stored sr-Latn-x-… (40 characters) or und, and the owner
// could not post the answer back.
func TestAProvidersLocaleFillsOnlyALanguageTheAccountRulesTake(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		iss, env := startCorp(t, dbURL, "")
		for _, c := range []struct{ locale, want string }{
			{longLegacyTag, "fr"},
			{"und", "fr"},
			{"root", "fr"},
			{"x-klingon", "fr"},
			{"en_US", "en-US"},
			{"mo", "ro-MD"},
		} {
			t.Run(c.locale, func(t *testing.T) {
				claims := iss.Claims("corp-app", "locale-"+c.locale)
				claims["locale"] = c.locale
				tok := mustToken(t, authenticate(t, env, "demo", "corp", map[string]any{"idToken": iss.Key("RS256").Sign(claims)}))
				if got := postedBack(t, env, "demo", tok)["language"]; got != c.want {
					t.Errorf("language %v, want %s", got, c.want)
				}
			})
		}
	})
}
