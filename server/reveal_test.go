package server_test

import (
	"net/http"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// Under checkInPolicy none (the default) a preregistration for an address
// that has an account answers 200 with the account: the brand accepts that
// its form tells whether an address is known, not what the account holds.
// The answer showed the whole profile (the phone number, the postal
// address, the birth date, the consents) to anyone who knows the email;
// it shows the account's id, the address sent, whether it is proven and
// whether the account is still a prospect.
func TestAPreregistrationShowsNothingOfAnExistingAccountButWhatItNames(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "owner@example.com")
		r := post(t, env, "/api/demo/customer", `{"firstName":"Olive","lastName":"Owner",
			"address":"1 rue de la Paix","postcode":"75002","birthDate":"1990-04-01","consents_email":true,"loyaltyTier":"gold"}`,
			"Authorization", "Bearer "+tok)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("the owner's update: %d %s", r.StatusCode, r.body)
		}
		owner := decodeObject(t, post(t, env, "/api/demo/customer", `{}`, "Authorization", "Bearer "+tok))

		r = post(t, env, "/api/demo/customer?flow=preregistration", `{"email":"owner@example.com"}`)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("a stranger's preregistration for the owner's address: %d %s", r.StatusCode, r.body)
		}
		got := decodeObject(t, r)
		if got["id"] != owner["id"] || got["email"] != "owner@example.com" || got["emailVerified"] != true {
			t.Errorf("the answer does not name the account it found: %s", r.body)
		}
		for _, field := range []string{"firstName", "lastName", "phoneNumber", "address", "postcode", "city", "birthDate",
			"consents_email", "loyaltyTier"} {
			if v, ok := got[field]; ok {
				t.Errorf("a stranger read the owner's %s (%v): %s", field, v, r.body)
			}
		}
	})
}
