package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/server"
)

// The contract alone says how long a field may be: a copy of openapi.yaml
// with another maxLength changes what the service accepts, from a request
// and from a provider's claims, with no other edit.
func TestTheContractAloneSetsTheLengths(t *testing.T) {
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	five := uint64(5)
	spec.Components.Schemas["Customer"].Value.Properties["firstName"].Value.MaxLength = &five
	brand := brandEndpoint(t)
	cfg := apptest.Config(t, "", fmt.Sprintf(`
tenants:
  shop:
    providers:
      otp: {type: otp}
      brand: {type: webhook, url: %q, secret: %q, timeout: 300ms, allowPrivateNetwork: true}
`, brand.URL, brandSecret))
	env := apptest.StartConfig(t, cfg, app.WithSpec(spec))

	r := post(t, env, "/api/shop/customer", `{"email":"long@example.com","firstName":"Abcdef"}`)
	if p := mustProblem(t, r, http.StatusPreconditionFailed); !problemFields(p)["firstName"] {
		t.Fatalf("a firstName past the copy's maxLength: %s", r.body)
	} else if msg := fmt.Sprint(p["errors"].(map[string]any)["firstName"]); !strings.Contains(msg, "at most 5 characters") {
		t.Errorf("the refusal says %s, not the copy's maxLength", msg)
	}
	postOK(t, env, "/api/shop/customer", `{"email":"short@example.com","firstName":"Abcde"}`)
	// The brand's endpoint names its members "Member" (6 characters): kept no more.
	me := customerOf(t, env, "shop", mustToken(t, authenticate(t, env, "shop", "brand", map[string]any{"login": "len", "password": "right"})))
	if me["firstName"] != nil || me["email"] != "len@example.com" {
		t.Fatalf("a claim past the copy's maxLength: %v", me)
	}
}

// The account rules check a language's canonical form against the
// contract's length, which they cannot read: the two must agree.
func TestTheLanguageRuleKeepsTheContractsLength(t *testing.T) {
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	if got := server.Lengths(spec)["language"]; got != account.MaxLanguage {
		t.Fatalf("openapi.yaml's language maxLength is %d, account.MaxLanguage %d", got, account.MaxLanguage)
	}
}
