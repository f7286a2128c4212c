package server_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
)

// A stranger's held change fills only empty fields: a postcode it fills
// must not rewrite the city and region the owner already has (enrichment
// derived them from the stranger's postcode over the owner's values), and
// the message names every field the change writes.
func TestAStrangersPostcodeDoesNotRewriteTheOwnersCity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")
		const email = "owner.city@example.com"
		owner := env.SignIn(t, "demo", email)
		postOK(t, env, "/api/demo/customer", `{"city":"Lyon","region":"Auvergne-Rhône-Alpes"}`, withToken(owner)...)
		env.Clock.Advance(61 * time.Second)
		id := challengeID(t, post(t, env, "/api/demo/customer", `{"email":"`+email+`","postcode":"75001"}`))
		fills, _ := sentTo(env, email)["fills"].([]any)
		tok := complete(t, env, "demo", id, email)
		me := customerOf(t, env, "demo", tok)
		if me["city"] != "Lyon" || me["region"] != "Auvergne-Rhône-Alpes" {
			t.Fatalf("a stranger's held postcode rewrote the owner's city/region (message named %v): city=%v region=%v postcode=%v",
				fills, me["city"], me["region"], me["postcode"])
		}
		if !reflect.DeepEqual(fills, []any{"postcode"}) {
			t.Errorf("the message names %v, want [postcode]", fills)
		}
	})
}
