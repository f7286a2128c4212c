package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store/storetest"
)

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

func TestJourney(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env := apptest.Start(t, dbURL, "")

		created, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
			Email: ptr(" Jane.Doe@Example.COM "), FirstName: ptr("Jane"), Postcode: ptr("75001"),
			AdditionalProperties: map[string]json.RawMessage{"loyaltyTier": json.RawMessage(`"gold"`)},
		})
		if err != nil || created.StatusCode() != http.StatusOK {
			t.Fatalf("create: %v %d %s", err, created.StatusCode(), created.Body)
		}
		c := created.JSON200
		if *c.Email != "jane.doe@example.com" || *c.City != "Paris" || *c.Region != "Île-de-France" || *c.Country != "FR" ||
			*c.Language != "fr" || !*c.IsProspect || *c.ConsentsEmail || *c.EmailVerified || string(c.AdditionalProperties["loyaltyTier"]) != `"gold"` {
			t.Fatalf("created account: %s", created.Body)
		}

		// The same identifier again, anonymously: nothing changes yet, a code goes to the owner,
		// and the challenge holds what the change may fill until the owner completes it.
		again, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
			Email: ptr("jane.doe@example.com"), FirstName: ptr("Mallory"), LastName: ptr("Doe"), ConsentsEmail: ptr(true)})
		if err != nil || again.StatusCode() != http.StatusAccepted || again.JSON202 == nil {
			t.Fatalf("anonymous upsert of an existing account: %v %d %s", err, again.StatusCode(), again.Body)
		}
		if again.JSON202.Destination != "j***@e***.com" || again.JSON202.Channel != "email" {
			t.Fatalf("challenge: %s", again.Body)
		}
		code := env.Logs.Code("jane.doe@example.com")
		id := again.JSON202.ChallengeId.String()
		tokRes, err := env.Client.AuthenticateCustomerWithResponse(ctx, "demo", &client.AuthenticateCustomerParams{Provider: ptr("otp")},
			client.AuthenticateCustomerJSONRequestBody{ChallengeId: &id, Code: &code})
		if err != nil || tokRes.StatusCode() != http.StatusOK {
			t.Fatalf("complete the challenge: %v %d %s", err, tokRes.StatusCode(), tokRes.Body)
		}
		tok := *tokRes.JSON200

		got, err := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok))
		if err != nil || got.StatusCode() != http.StatusOK {
			t.Fatalf("get: %v %d %s", err, got.StatusCode(), got.Body)
		}
		// It filled what was empty, and nothing else: never a value, never a consent.
		if *got.JSON200.FirstName != "Jane" || *got.JSON200.LastName != "Doe" || *got.JSON200.ConsentsEmail ||
			*got.JSON200.Id != *c.Id || !*got.JSON200.EmailVerified || *got.JSON200.Provider != "otp" {
			t.Fatalf("profile after completing the challenge that held a change: %s", got.Body)
		}

		// With the token, the owner updates.
		upd, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
			FirstName: ptr("Janet"), ConsentsSms: ptr(true)}, apptest.Bearer(tok))
		if err != nil || upd.StatusCode() != http.StatusOK || *upd.JSON200.FirstName != "Janet" || !*upd.JSON200.ConsentsSms ||
			*upd.JSON200.City != "Paris" || string(upd.JSON200.AdditionalProperties["loyaltyTier"]) != `"gold"` {
			t.Fatalf("update: %v %d %s", err, upd.StatusCode(), upd.Body)
		}

		// A code for an address no account has: the same 202; the account appears on verification.
		newTok := env.SignIn(t, "demo", "new.shopper@example.com")
		me, _ := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(newTok))
		if me.StatusCode() != http.StatusOK || *me.JSON200.Email != "new.shopper@example.com" || !*me.JSON200.EmailVerified ||
			!*me.JSON200.IsProspect || *me.JSON200.Country != "FR" {
			t.Fatalf("account created on first verification: %s", me.Body)
		}

		jwks, err := env.Client.GetJwksWithResponse(ctx, "demo")
		if err != nil || jwks.StatusCode() != http.StatusOK || len(jwks.JSON200.Keys) != 1 {
			t.Fatalf("jwks: %v %s", err, jwks.Body)
		}
		// /metrics is on the metrics listener, not the API's.
		metrics, err := client.NewClientWithResponses(env.Metrics.URL, client.WithHTTPClient(env.HTTP))
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []func() (int, error){
			func() (int, error) { r, err := env.Client.GetHealthWithResponse(ctx); return r.StatusCode(), err },
			func() (int, error) { r, err := env.Client.GetReadinessWithResponse(ctx); return r.StatusCode(), err },
			func() (int, error) { r, err := metrics.GetMetricsWithResponse(ctx); return r.StatusCode(), err },
		} {
			if status, err := op(); err != nil || status != http.StatusOK {
				t.Fatalf("operations endpoint: %d %v", status, err)
			}
		}
	})
}
