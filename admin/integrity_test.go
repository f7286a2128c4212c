package admin_test

// The admin API's authorization and
// integrity (see also scoped_race_test.go).

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store/storetest"
)

// An If-Match read from a tenant that was deleted since and created again
// under the same id names another tenant: the write it guards is refused
// (412), never applied over settings its writer never read (the version
// starts again at 1 on a re-created tenant).
func TestAnETagOfADeletedTenantDoesNotMatchItsSuccessor(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		_, c := start(t, dbURL, "")
		create(t, c, "acme", `{"defaultCountry": "BE"}`)
		old, _ := c.GetTenantWithResponse(ctx, "acme")
		tag := old.HTTPResponse.Header.Get("ETag")
		if del, err := c.DeleteTenantWithResponse(ctx, "acme", nil); err != nil || del.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %v %d %s", err, del.StatusCode(), del.Body)
		}
		create(t, c, "acme", `{"defaultCountry": "FR"}`)
		put, err := c.ReplaceTenantWithResponse(ctx, "acme", &adminclient.ReplaceTenantParams{IfMatch: &tag}, settings(t, `{"defaultCountry": "DE"}`))
		if err != nil || put.StatusCode() != http.StatusPreconditionFailed {
			t.Errorf("replace with the deleted tenant's ETag %s: %v %d %.200s, want 412", tag, err, put.StatusCode(), put.Body)
		}
		del, err := c.DeleteTenantWithResponse(ctx, "acme", &adminclient.DeleteTenantParams{IfMatch: &tag})
		if err != nil || del.StatusCode() != http.StatusPreconditionFailed {
			t.Errorf("delete with the deleted tenant's ETag %s: %v %d %.200s, want 412", tag, err, del.StatusCode(), del.Body)
		}
	})
}

// If-Match compares entity tags strongly (RFC 9110 13.1.1): a weak tag
// never matches, so a write guarded by one is refused; a list of tags
// matches when one of them is current.
func TestIfMatchComparesStrongly(t *testing.T) {
	_, c := start(t, "", "")
	create(t, c, "acme", `{}`)
	weak := `W/"1"`
	res, err := c.ReplaceTenantWithResponse(ctx, "acme", &adminclient.ReplaceTenantParams{IfMatch: &weak}, settings(t, `{"defaultCountry": "DE"}`))
	if err != nil || res.StatusCode() != http.StatusPreconditionFailed {
		t.Errorf("If-Match %s: %v %d %.200s, want 412", weak, err, res.StatusCode(), res.Body)
	}
	got, _ := c.GetTenantWithResponse(ctx, "acme")
	list := `"999", ` + got.HTTPResponse.Header.Get("ETag")
	res, err = c.ReplaceTenantWithResponse(ctx, "acme", &adminclient.ReplaceTenantParams{IfMatch: &list}, settings(t, `{"defaultCountry": "IT"}`))
	if err != nil || res.StatusCode() != http.StatusOK {
		t.Errorf("If-Match %s: %v %d %.200s, want 200", list, err, res.StatusCode(), res.Body)
	}
}

// updatedSince after every stored time keeps no account, on both
// databases, whatever offset it is written with (SQLite compares times
// as text: a UTC time in the year 10000 sorted before every stored one).
func TestUpdatedSinceInTheFutureKeepsNoAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		if res, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{Email: ptr("jane@example.com")}); err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("create: %v", err)
		}
		for _, since := range []time.Time{
			time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
			time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -2*3600)),
		} {
			res, err := c.ListCustomersWithResponse(ctx, "demo", &adminclient.ListCustomersParams{UpdatedSince: &since})
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode() == http.StatusOK && len(res.JSON200.Items) != 0 {
				t.Errorf("updatedSince %s: %d accounts, want none", since.Format(time.RFC3339), len(res.JSON200.Items))
			} else if res.StatusCode() != http.StatusOK && res.StatusCode() != http.StatusBadRequest {
				t.Errorf("updatedSince %s: %d %s", since.Format(time.RFC3339), res.StatusCode(), res.Body)
			}
		}
	})
}

// Cases that hold, kept as tests: a scoped key creates only its tenants,
// reads the audit log of its tenants only, a cursor names nothing of
// another tenant, and bodies past 64 KiB are refused before anything.
func TestAScopedKeyHoldsItsLines(t *testing.T) {
	env, root := start(t, "", "")
	create(t, root, "acme", `{}`)
	a := env.Admin(t)
	acme := a.Client(t, a.Key(t, "acme"))
	if res, _ := acme.CreateTenantWithResponse(ctx, adminclientNewTenant("shop")); res.StatusCode() != http.StatusForbidden {
		t.Errorf("create another tenant: %d %s", res.StatusCode(), res.Body)
	}
	if res, _ := acme.ListAuditEntriesWithResponse(ctx, &adminclient.ListAuditEntriesParams{TenantId: ptr("demo")}); res.StatusCode() != http.StatusForbidden {
		t.Errorf("audit of another tenant: %d %s", res.StatusCode(), res.Body)
	}
	if res, _ := acme.ListCustomersWithResponse(ctx, "demo", nil); res.StatusCode() != http.StatusForbidden {
		t.Errorf("customers of another tenant: %d %s", res.StatusCode(), res.Body)
	}
	big := `{"defaultCountry": "BE", "checkInPage": "` + strings.Repeat("a", 70<<10) + `"}`
	key := a.Key(t, "*")
	if res, body := call(t, a.HTTP, http.MethodPut, a.Server.URL+"/admin/tenants/acme", big, "Authorization", "Bearer "+key); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB body: %d %.200s", res.StatusCode, body)
	}
	if res, body := call(t, a.HTTP, http.MethodOptions, a.Server.URL+"/admin/tenants/acme", "", "Origin", "https://evil.example",
		"Access-Control-Request-Method", "DELETE"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS on the admin listener: %d %v %s", res.StatusCode, res.Header, body)
	}
}
