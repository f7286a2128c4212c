package admin_test

import (
	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/store/storetest"
	"net/http"
	"strings"
	"testing"

	"github.com/customerd/customerd/gen/adminclient"
)

func TestEveryAdminWriteIsAudited(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, _ := start(t, dbURL, "")
		a := env.Admin(t)
		rootKey := a.Key(t, "*")
		root := a.Client(t, rootKey)
		create(t, root, "acme", `{"webhooks": {"endpoints": [{"url": "https://crm.acme.example/h", "secret": "audit-secret-0123456789"}]}}`)
		create(t, root, "shop", `{}`)
		if r, _ := root.ReplaceTenantWithResponse(ctx, "acme", nil, settings(t, `{"defaultCountry": "DE"}`)); r.StatusCode() != http.StatusOK {
			t.Fatalf("replace: %s", r.Body)
		}
		tok := env.SignIn(t, "acme", "ann@example.com")
		me, _ := env.Client.GetCustomerWithResponse(ctx, "acme", apptest.Bearer(tok))
		id := me.JSON200.Id.String()
		if r, _ := root.RevokeCustomerSessionsWithResponse(ctx, "acme", id); r.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %s", r.Body)
		}
		if r, _ := root.EraseCustomerWithResponse(ctx, "acme", id); r.StatusCode() != http.StatusNoContent {
			t.Fatalf("erase: %s", r.Body)
		}
		if r, _ := root.DeleteTenantWithResponse(ctx, "shop", nil); r.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %s", r.Body)
		}
		// A failed write is no change: not in the log.
		if r, _ := root.CreateTenantWithResponse(ctx, adminclient.NewTenant{Id: "acme", Settings: settings(t, `{}`)}); r.StatusCode() != http.StatusConflict {
			t.Fatalf("a taken id: %d", r.StatusCode())
		}

		res, err := root.ListAuditEntriesWithResponse(ctx, nil)
		if err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("audit: %v %s", err, res.Body)
		}
		keyID := strings.Split(rootKey, "_")[1]
		var got []string
		for _, e := range res.JSON200.Items {
			if e.KeyId != keyID || e.RequestId == "" || e.At.IsZero() {
				t.Errorf("entry %+v", e)
			}
			got = append(got, e.TenantId+" "+e.Action+" "+e.Target)
		}
		want := []string{"acme tenant.create acme", "shop tenant.create shop", "acme tenant.replace acme",
			"acme customer.revoke-sessions " + id, "acme customer.erase " + id, "shop tenant.delete shop"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("audit log\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, s := range []string{"audit-secret", "ann@example.com", rootKey} {
			if strings.Contains(string(res.Body), s) {
				t.Fatalf("the audit log holds %q", s)
			}
		}
		// Page by page, and a scoped key sees its tenants' entries only.
		page, _ := root.ListAuditEntriesWithResponse(ctx, &adminclient.ListAuditEntriesParams{Limit: ptr(4)})
		rest, _ := root.ListAuditEntriesWithResponse(ctx, &adminclient.ListAuditEntriesParams{Limit: ptr(4), Cursor: page.JSON200.NextCursor})
		if len(page.JSON200.Items) != 4 || len(rest.JSON200.Items) != 2 || rest.JSON200.Items[0].Id <= page.JSON200.Items[3].Id {
			t.Fatalf("pages: %s %s", page.Body, rest.Body)
		}
		shop := a.Client(t, a.Key(t, "shop"))
		mine, _ := shop.ListAuditEntriesWithResponse(ctx, nil)
		if len(mine.JSON200.Items) != 2 || mine.JSON200.Items[0].TenantId != "shop" || mine.JSON200.Items[1].TenantId != "shop" {
			t.Fatalf("a scoped key's audit: %s", mine.Body)
		}
		if r, _ := shop.ListAuditEntriesWithResponse(ctx, &adminclient.ListAuditEntriesParams{TenantId: ptr("acme")}); r.StatusCode() != http.StatusForbidden {
			t.Fatalf("another tenant's audit: %d", r.StatusCode())
		}
	})
}
