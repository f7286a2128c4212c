package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// Every answer a stranger gets about a shopper's address, under each
// check-in policy: anonymous POST /customer with each flow the service
// ships (and none), with and without the other contact, the same with an
// Idempotency-Key, the same from a token holder of another account, and
// otp sign-in starts and wrong codes. None shows anything of the shopper's
// profile: their name, postal address, birth date, free-form properties or
// phone number.
func TestNoStrangerReadsAShoppersProfile(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, `
tenants:
  none: {checkInPolicy: none}
  partial: {checkInPolicy: partial, checkInPage: "https://shop.example/check-in"}
  full: {checkInPolicy: full}
`)
		const phone = "+33612345678"
		secrets := []string{"Olive", "Paix", "1990-04-01", "gold", "612345678"}
		for _, tenant := range []string{"none", "partial", "full"} {
			base := "/api/" + tenant + "/customer"
			owner := env.SignIn(t, tenant, "owner@example.com")
			r := post(t, env, base, `{"firstName":"Olive","address":"1 rue de la Paix","birthDate":"1990-04-01",
				"loyaltyTier":"gold","phoneNumber":"`+phone+`"}`, withToken(owner)...)
			complete(t, env, tenant, challengeID(t, r), phone)
			stranger := env.SignIn(t, tenant, "stranger@example.com")
			check := func(what string, r rawReply) {
				t.Helper()
				for _, s := range secrets {
					if strings.Contains(string(r.body), s) {
						t.Errorf("%s: %s: %d shows the owner's %q: %s", tenant, what, r.StatusCode, s, r.body)
					}
				}
			}
			for _, flow := range []string{"", "?flow=preregistration", "?flow=activation"} {
				for _, body := range []string{
					`{"email":"owner@example.com"}`,
					`{"email":"OWNER@example.com","phoneNumber":"` + phone + `"}`,
					`{"email":"owner@example.com","firstName":"X","lastName":"Y","phoneNumber":"+33600000001"}`,
					`{"email":"new.` + strings.TrimPrefix(flow, "?flow=") + `@example.com","phoneNumber":"` + phone + `"}`,
				} {
					check("anonymous "+flow+" "+body, post(t, env, base+flow, body))
					check("anonymous, keyed "+flow+" "+body, post(t, env, base+flow, body, "Idempotency-Key", "k"+tenant))
					check("another account's token "+flow+" "+body, post(t, env, base+flow, body, withToken(stranger)...))
					env.Clock.Advance(61 * time.Second)
				}
			}
			for _, body := range []string{`{"email":"owner@example.com"}`, `{"phoneNumber":"` + phone + `"}`} {
				r := post(t, env, "/api/"+tenant+"/customer/authenticate?provider=otp", body)
				check("sign-in "+body, r)
				if r.StatusCode == http.StatusAccepted {
					check("a wrong code for "+body, exchange(t, env, tenant, challengeID(t, r), "000000"))
				}
				env.Clock.Advance(61 * time.Second)
			}
			check("another account's profile", rawCall(t, env, http.MethodGet, base, nil, withToken(stranger)...))
		}
	})
}
