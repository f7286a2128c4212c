package apptest

import (
	"context"
	"net/http"
	"testing"

	"github.com/customerd/customerd/gen/client"
)

// Bearer sends tok as the request's bearer token.
func Bearer(tok string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

// SignIn runs the one-time code journey for email on tenant, through the
// generated client, and returns the token.
func (e *Env) SignIn(t testing.TB, tenant, email string) string {
	t.Helper()
	ctx := context.Background()
	otp := "otp"
	start, err := e.Client.AuthenticateCustomerWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: &otp},
		client.AuthenticateCustomerJSONRequestBody{Email: &email})
	if err != nil || start.StatusCode() != http.StatusAccepted || start.JSON202 == nil {
		t.Fatalf("ask for a code: %v %d %s", err, start.StatusCode(), start.Body)
	}
	code := e.Logs.Code(email)
	if code == "" {
		t.Fatalf("no code in the log for %s", email)
	}
	id := start.JSON202.ChallengeId.String()
	res, err := e.Client.AuthenticateCustomerWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: &otp},
		client.AuthenticateCustomerJSONRequestBody{ChallengeId: &id, Code: &code})
	if err != nil || res.StatusCode() != http.StatusOK || res.JSON200 == nil {
		t.Fatalf("exchange the code: %v %d %s", err, res.StatusCode(), res.Body)
	}
	return *res.JSON200
}
