package admin_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/customerd/customerd/store/storetest"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/customerd/customerd/app/apptest"
	"github.com/customerd/customerd/gen/adminclient"
	"github.com/customerd/customerd/gen/client"
	"github.com/customerd/customerd/store"
)

func TestFindAndListCustomers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		var ids []string
		for i, body := range []client.UpsertCustomerJSONRequestBody{
			{Email: ptr("jane.doe@example.com"), PhoneNumber: ptr("06 12 34 56 78")},
			{Email: ptr("ann@example.com")},
			{Email: ptr("bob@example.com")},
		} {
			res, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, body)
			if err != nil || res.StatusCode() != http.StatusOK {
				t.Fatalf("create %d: %v %d %s", i, err, res.StatusCode(), res.Body)
			}
			ids = append(ids, res.JSON200.Id.String())
		}
		find := func(p adminclient.ListCustomersParams) []string {
			t.Helper()
			res, err := c.ListCustomersWithResponse(ctx, "demo", &p)
			if err != nil || res.StatusCode() != http.StatusOK {
				t.Fatalf("list %+v: %v %d %s", p, err, res.StatusCode(), res.Body)
			}
			var out []string
			for _, it := range res.JSON200.Items {
				out = append(out, it.Id)
			}
			return out
		}
		if got := find(adminclient.ListCustomersParams{Email: ptr(" Jane.Doe@EXAMPLE.com ")}); !slices.Equal(got, ids[:1]) {
			t.Fatalf("by email: %v", got)
		}
		if got := find(adminclient.ListCustomersParams{PhoneNumber: ptr("+33 6 12 34 56 78")}); !slices.Equal(got, ids[:1]) {
			t.Fatalf("by phone: %v", got)
		}
		if got := find(adminclient.ListCustomersParams{Email: ptr("jane@example.com")}); len(got) != 0 {
			t.Fatalf("an exact match only: %v", got)
		}
		// Every customer, two at a time.
		first, _ := c.ListCustomersWithResponse(ctx, "demo", &adminclient.ListCustomersParams{Limit: ptr(2)})
		if len(first.JSON200.Items) != 2 || first.JSON200.NextCursor == nil {
			t.Fatalf("first page: %s", first.Body)
		}
		second, _ := c.ListCustomersWithResponse(ctx, "demo", &adminclient.ListCustomersParams{Limit: ptr(2), Cursor: first.JSON200.NextCursor})
		if len(second.JSON200.Items) != 1 || second.JSON200.NextCursor != nil {
			t.Fatalf("second page: %s", second.Body)
		}
		var all []string
		for _, it := range append(first.JSON200.Items, second.JSON200.Items...) {
			all = append(all, it.Id)
		}
		if slices.Sort(all); !slices.Equal(all, slices.Sorted(slices.Values(ids))) {
			t.Fatalf("pages %v, want %v", all, ids)
		}
		// Only what changed since a time.
		since := time.Now()
		for time.Now().Truncate(time.Millisecond).Equal(since.Truncate(time.Millisecond)) {
			time.Sleep(time.Millisecond)
		}
		tok := env.SignIn(t, "demo", "bob@example.com")
		if r, _ := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{FirstName: ptr("Bob")}, apptest.Bearer(tok)); r.StatusCode() != http.StatusOK {
			t.Fatalf("update: %d %s", r.StatusCode(), r.Body)
		}
		if got := find(adminclient.ListCustomersParams{UpdatedSince: &since}); !slices.Equal(got, ids[2:]) {
			t.Fatalf("updated since: %v, want %v", got, ids[2:])
		}
		got, err := c.GetCustomerByIdWithResponse(ctx, "demo", ids[2])
		if err != nil || got.StatusCode() != http.StatusOK || got.JSON200.AdditionalProperties["firstName"] != "Bob" {
			t.Fatalf("get: %v %s", err, got.Body)
		}
		for name, call := range map[string]func() int{
			"an unknown customer": func() int { r, _ := c.GetCustomerByIdWithResponse(ctx, "demo", "nope"); return r.StatusCode() },
			"an unknown tenant":   func() int { r, _ := c.ListCustomersWithResponse(ctx, "nope", nil); return r.StatusCode() },
			"a cursor never given": func() int {
				r, _ := c.ListCustomersWithResponse(ctx, "demo", &adminclient.ListCustomersParams{Cursor: ptr("Zm9v")})
				return r.StatusCode()
			},
			"an email that is none": func() int {
				r, _ := c.ListCustomersWithResponse(ctx, "demo", &adminclient.ListCustomersParams{Email: ptr("jane@")})
				return r.StatusCode()
			},
			"a limit out of range": func() int {
				r, _ := c.ListCustomersWithResponse(ctx, "demo", &adminclient.ListCustomersParams{Limit: ptr(0)})
				return r.StatusCode()
			},
		} {
			want := http.StatusBadRequest
			if strings.HasPrefix(name, "an unknown") {
				want = http.StatusNotFound
			}
			if code := call(); code != want {
				t.Errorf("%s: %d, want %d", name, code, want)
			}
		}
	})
}

// The admin API shows a shopper's numbers with the digits the customer API
// stored and answers: never rounded to a float64's (a member number of 23
// digits came out 1.2345678901234568e+22), in the account as in the
// events the export says webhooks received.
func TestTheAdminAPIShowsAShoppersNumbersAsStored(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		const memberNo, nested = "12345678901234567890123", `{"points":98765432109876543210.5}`
		tok := env.SignIn(t, "demo", "member@example.com")
		up, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
			AdditionalProperties: map[string]json.RawMessage{"memberNo": json.RawMessage(memberNo), "loyalty": json.RawMessage(nested)}}, apptest.Bearer(tok))
		if err != nil || up.StatusCode() != http.StatusOK || !strings.Contains(string(up.Body), memberNo) || !strings.Contains(string(up.Body), nested) {
			t.Fatalf("update: %v %d %s", err, up.StatusCode(), up.Body)
		}
		id := up.JSON200.Id.String()
		get, err := c.GetCustomerByIdWithResponse(ctx, "demo", id)
		if err != nil || get.StatusCode() != http.StatusOK {
			t.Fatalf("get: %v %s", err, get.Body)
		}
		list, err := c.ListCustomersWithResponse(ctx, "demo", &adminclient.ListCustomersParams{Email: ptr("member@example.com")})
		if err != nil || list.StatusCode() != http.StatusOK {
			t.Fatalf("list: %v %s", err, list.Body)
		}
		export, err := c.ExportCustomerWithResponse(ctx, "demo", id)
		if err != nil || export.StatusCode() != http.StatusOK {
			t.Fatalf("export: %v %s", err, export.Body)
		}
		for name, body := range map[string][]byte{"get": get.Body, "list": list.Body, "export": export.Body} {
			if !strings.Contains(string(body), `"memberNo":`+memberNo) || !strings.Contains(string(body), `"loyalty":`+nested) {
				t.Errorf("%s does not show the numbers as stored: %s", name, body)
			}
		}
		// The export's events too, as webhooks received them.
		var doc struct {
			Events []struct {
				Payload struct{ Data map[string]json.RawMessage }
			}
		}
		if err := json.Unmarshal(export.Body, &doc); err != nil {
			t.Fatal(err)
		}
		shown := 0
		for _, e := range doc.Events {
			if n, ok := e.Payload.Data["memberNo"]; ok {
				if string(n) != memberNo {
					t.Errorf("an event shows memberNo %s, want %s", n, memberNo)
				}
				shown++
			}
		}
		if shown == 0 {
			t.Fatalf("no exported event shows memberNo: %s", export.Body)
		}
	})
}

func TestRevokedSessionsAnswer401(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		tok := env.SignIn(t, "demo", "jane@example.com")
		me, _ := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok))
		res, err := c.RevokeCustomerSessionsWithResponse(ctx, "demo", me.JSON200.Id.String())
		if err != nil || res.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %v %d %s", err, res.StatusCode(), res.Body)
		}
		if r, _ := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok)); r.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("GET with a revoked token: %d", r.StatusCode())
		}
		if r, _ := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{FirstName: ptr("X")}, apptest.Bearer(tok)); r.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("POST with a revoked token: %d %s", r.StatusCode(), r.Body)
		}
		if r, _ := env.Client.DeleteCustomerWithResponse(ctx, "demo", apptest.Bearer(tok)); r.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("DELETE with a revoked token: %d", r.StatusCode())
		}
		// Tokens carry whole seconds: one of the revocation's second is refused too.
		got, _ := c.GetCustomerByIdWithResponse(ctx, "demo", me.JSON200.Id.String())
		for !time.Now().Truncate(time.Second).After(*got.JSON200.SessionsRevokedAt) {
			time.Sleep(20 * time.Millisecond)
		}
		env.Clock.Advance(61 * time.Second) // past the resend interval
		fresh := env.SignIn(t, "demo", "jane@example.com")
		if r, _ := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(fresh)); r.StatusCode() != http.StatusOK {
			t.Fatalf("a new sign-in: %d %s", r.StatusCode(), r.Body)
		}
		if r, _ := c.RevokeCustomerSessionsWithResponse(ctx, "demo", "nope"); r.StatusCode() != http.StatusNotFound {
			t.Fatalf("an unknown customer: %d", r.StatusCode())
		}
	})
}

// hooks is a webhook receiver that keeps every delivery.
type hooks struct {
	mu   sync.Mutex
	seen []map[string]any
	srv  *httptest.Server
}

func receiver(t *testing.T) *hooks {
	h := &hooks{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &e)
		h.mu.Lock()
		h.seen = append(h.seen, e)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hooks) types(customer string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.seen {
		if e["customerId"] == customer {
			out = append(out, e["type"].(string))
		}
	}
	return out
}

// shopper leaves every kind of personal data customerd keeps: a profile, a
// verified email and phone, a linked identity, events, challenges (used,
// wrong and pending), counters and throttles of its contacts, and a stored
// idempotent answer. It returns the customer id and a token.
func shopper(t *testing.T, env *apptest.Env, tenant string) (string, string) {
	t.Helper()
	tok := env.SignIn(t, tenant, "jane.doe@example.com")
	up, err := env.Client.UpsertCustomerWithResponse(ctx, tenant, nil, client.UpsertCustomerJSONRequestBody{
		FirstName: ptr("Janette"), LastName: ptr("Doelittle"), Address: ptr("12 rue des Lilas"), Postcode: ptr("75001"),
		AdditionalProperties: map[string]json.RawMessage{"loyaltyCard": json.RawMessage(`"CARD-778899"`)}}, apptest.Bearer(tok), idempotencyKey("key-jane-1"))
	if err != nil || up.StatusCode() != http.StatusOK {
		t.Fatalf("update: %v %d %s", err, up.StatusCode(), up.Body)
	}
	id := up.JSON200.Id.String()
	// A phone number, verified by a code sent to it (one wrong code first).
	ch, err := env.Client.UpsertCustomerWithResponse(ctx, tenant, nil, client.UpsertCustomerJSONRequestBody{PhoneNumber: ptr("+33698765432")}, apptest.Bearer(tok))
	if err != nil || ch.StatusCode() != http.StatusAccepted {
		t.Fatalf("add a phone: %v %d %s", err, ch.StatusCode(), ch.Body)
	}
	cid := ch.JSON202.ChallengeId.String()
	wrong := "000000"
	if env.Logs.Code("+33698765432") == wrong {
		wrong = "111111"
	}
	for _, code := range []string{wrong, env.Logs.Code("+33698765432")} {
		_, _ = env.Client.AuthenticateCustomerWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: ptr("otp")},
			client.AuthenticateCustomerJSONRequestBody{ChallengeId: &cid, Code: ptr(code)})
	}
	// The brand's own sign-in links its member to the account (the same verified email).
	r, err := env.Client.AuthenticateCustomerWithBodyWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: ptr("brand")},
		"application/json", strings.NewReader(`{"login":"jane"}`))
	if err != nil || r.StatusCode() != http.StatusOK {
		t.Fatalf("brand sign-in: %v %d %s", err, r.StatusCode(), r.Body)
	}
	// An anonymous caller names the account: a challenge holding a change, still live.
	held, err := env.Client.UpsertCustomerWithResponse(ctx, tenant, nil, client.UpsertCustomerJSONRequestBody{
		Email: ptr("jane.doe@example.com"), AdditionalProperties: map[string]json.RawMessage{"nickname": json.RawMessage(`"JD-held-nick"`)}})
	if err != nil || held.StatusCode() != http.StatusAccepted {
		t.Fatalf("held change: %v %d %s", err, held.StatusCode(), held.Body)
	}
	return id, tok
}

// squatter makes, before the shopper proves it, an account that holds the
// shopper's phone number unverified: created anonymously (under an
// Idempotency-Key, whose stored answer shows the number) with an email of
// the squatter's own, which the squatter then proves. It returns the squatter's account id.
func squatter(t *testing.T, env *apptest.Env, tenant string) string {
	t.Helper()
	res, err := env.Client.UpsertCustomerWithResponse(ctx, tenant, nil, client.UpsertCustomerJSONRequestBody{
		Email: ptr("squatter@example.com"), PhoneNumber: ptr("+33698765432")}, idempotencyKey("key-squatter-1"))
	if err != nil || res.StatusCode() != http.StatusOK {
		t.Fatalf("the squatter's account: %v %d %s", err, res.StatusCode(), res.Body)
	}
	tok := env.SignIn(t, tenant, "squatter@example.com")
	if id := res.JSON200.Id.String(); id != subject(t, env, tenant, tok) {
		t.Fatalf("the squatter signed into another account than %s", id)
	}
	return res.JSON200.Id.String()
}

// subject is the id of the account tok opens.
func subject(t *testing.T, env *apptest.Env, tenant, tok string) string {
	t.Helper()
	me, err := env.Client.GetCustomerWithResponse(ctx, tenant, apptest.Bearer(tok))
	if err != nil || me.JSON200 == nil {
		t.Fatalf("read the account: %v %s", err, me.Body)
	}
	return me.JSON200.Id.String()
}

func idempotencyKey(k string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Idempotency-Key", k)
		return nil
	}
}

// brandMember is a brand sign-in that proves the member jane with her verified email.
func brandMember(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"subject":"member-jane-4242","claims":{"email":"jane.doe@example.com","email_verified":true}}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func shopConfig(t *testing.T, hook string) string {
	return fmt.Sprintf(`
tenants:
  shop:
    otp: {resendInterval: 1ms}
    providers:
      otp: {type: otp}
      brand: {type: webhook, url: %q, secret: "0123456789abcdef0123456789abcdef", allowPrivateNetwork: true}
    webhooks:
      endpoints: [{url: %q, secret: "0123456789abcdef", allowPrivateNetwork: true}]
      retryBase: 10ms
      retryMax: 20ms
`, brandMember(t), hook)
}

// personal is what shopper stores that is personal data.
var personal = []string{"jane.doe@example.com", "+33698765432", "Janette", "Doelittle", "12 rue des Lilas", "CARD-778899",
	"JD-held-nick", "member-jane-4242"}

func TestExportHoldsEverythingAboutTheCustomer(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		hook := receiver(t)
		env, c := start(t, dbURL, shopConfig(t, hook.srv.URL))
		id, _ := shopper(t, env, "shop")
		res, err := c.ExportCustomerWithResponse(ctx, "shop", id)
		if err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("export: %v %d %s", err, res.StatusCode(), res.Body)
		}
		doc := res.JSON200
		if doc.Customer.Id != id || *doc.Customer.Email != "jane.doe@example.com" || !*doc.Customer.EmailVerified ||
			*doc.Customer.PhoneNumber != "+33698765432" || !*doc.Customer.PhoneNumberVerified ||
			doc.Customer.AdditionalProperties["loyaltyCard"] != "CARD-778899" {
			t.Fatalf("profile: %s", res.Body)
		}
		if len(doc.Identities) != 1 || doc.Identities[0].Provider != "brand" || doc.Identities[0].Subject != "member-jane-4242" {
			t.Fatalf("identities: %+v", doc.Identities)
		}
		stored, _ := env.App.Store.Events(ctx, storeEvents("shop"))
		want := 0
		for _, e := range stored {
			if e.CustomerID == id {
				want++
			}
		}
		if len(doc.Events) != want || want < 3 {
			t.Fatalf("%d events exported, %d stored", len(doc.Events), want)
		}
		dests := map[string]int{}
		for _, ch := range doc.Challenges {
			dests[ch.Destination]++
		}
		if dests["jane.doe@example.com"] < 2 || dests["+33698765432"] != 1 {
			t.Fatalf("challenges: %+v", doc.Challenges)
		}
		for _, secret := range []string{"codeHash", "code_hash", "pending", env.Logs.Code("+33698765432")} {
			if strings.Contains(string(res.Body), secret) {
				t.Fatalf("the export holds %q: %s", secret, res.Body)
			}
		}
		if !strings.Contains(res.HTTPResponse.Header.Get("Content-Disposition"), "attachment") {
			t.Fatal("no Content-Disposition")
		}
	})
}

// An export holds the codes sent to the customer and to the contacts it
// proved, never those sent to an address merely typed on the account: they
// are the address's owner's (their sign-ins, and when), not the customer's.
func TestAnExportHoldsNoOneElsesCodes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		const typed = "+33611223344" // someone else's number, typed on the account
		created, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
			Email: ptr("typist@example.com"), PhoneNumber: ptr(typed)})
		if err != nil || created.StatusCode() != http.StatusOK {
			t.Fatalf("create: %v %d %s", err, created.StatusCode(), created.Body)
		}
		tok := env.SignIn(t, "demo", "typist@example.com")
		me, err := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(tok))
		if err != nil || me.JSON200 == nil || me.JSON200.PhoneNumber == nil || *me.JSON200.PhoneNumber != typed {
			t.Fatalf("the account with the typed number: %v %s", err, me.Body)
		}
		// The number's owner asks for a code to sign in.
		ask, err := env.Client.AuthenticateCustomerWithResponse(ctx, "demo", &client.AuthenticateCustomerParams{Provider: ptr("otp")},
			client.AuthenticateCustomerJSONRequestBody{PhoneNumber: ptr(typed)})
		if err != nil || ask.StatusCode() != http.StatusAccepted {
			t.Fatalf("the owner's code: %v %d %s", err, ask.StatusCode(), ask.Body)
		}
		res, err := c.ExportCustomerWithResponse(ctx, "demo", me.JSON200.Id.String())
		if err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("export: %v %d %s", err, res.StatusCode(), res.Body)
		}
		for _, ch := range res.JSON200.Challenges {
			if ch.Destination == typed {
				t.Fatalf("the export holds a code sent to the typed number's owner: %+v", ch)
			}
		}
	})
}

func TestErasureLeavesNoPersonalDataInAnyTable(t *testing.T) {
	for _, by := range []string{"admin", "shopper"} {
		t.Run("by the "+by, func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, dbURL string) {
				hook := receiver(t)
				env, c := start(t, dbURL, shopConfig(t, hook.srv.URL))
				// The shopper's phone number sat on another account before she
				// proved it: it left that account, whose events named it.
				squatted := squatter(t, env, "shop")
				id, tok := shopper(t, env, "shop")
				// Someone else's data stays.
				other := env.SignIn(t, "shop", "other.person@example.com")
				if by == "admin" {
					res, err := c.EraseCustomerWithResponse(ctx, "shop", id)
					if err != nil || res.StatusCode() != http.StatusNoContent {
						t.Fatalf("erase: %v %d %s", err, res.StatusCode(), res.Body)
					}
				} else {
					res, err := env.Client.DeleteCustomerWithResponse(ctx, "shop", apptest.Bearer(tok))
					if err != nil || res.StatusCode() != http.StatusNoContent {
						t.Fatalf("delete: %v %d %s", err, res.StatusCode(), res.Body)
					}
				}
				rows := everyRow(t, dbURL)
				for _, p := range personal {
					for _, row := range rows {
						if strings.Contains(row, p) {
							t.Errorf("%q is still stored: %s", p, row)
						}
					}
				}
				if !slices.ContainsFunc(rows, func(r string) bool { return strings.HasPrefix(r, "customers: ") && strings.Contains(r, id) }) {
					t.Error("no tombstone keeps the customer's id")
				}
				for _, kept := range []string{"other.person@example.com", "squatter@example.com"} {
					if !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, kept) }) {
						t.Errorf("another customer's data went too: %s", kept)
					}
				}
				// Every token of the account is refused; the account is gone for the admin API too.
				for _, code := range []int{
					func() int {
						r, _ := env.Client.GetCustomerWithResponse(ctx, "shop", apptest.Bearer(tok))
						return r.StatusCode()
					}(),
					func() int {
						r, _ := env.Client.DeleteCustomerWithResponse(ctx, "shop", apptest.Bearer(tok))
						return r.StatusCode()
					}(),
				} {
					if code != http.StatusUnauthorized {
						t.Errorf("the erased account's token: %d", code)
					}
				}
				for _, code := range []int{
					func() int { r, _ := c.GetCustomerByIdWithResponse(ctx, "shop", id); return r.StatusCode() }(),
					func() int { r, _ := c.ExportCustomerWithResponse(ctx, "shop", id); return r.StatusCode() }(),
					func() int { r, _ := c.EraseCustomerWithResponse(ctx, "shop", id); return r.StatusCode() }(),
				} {
					if code != http.StatusNotFound {
						t.Errorf("the erased account, by id: %d", code)
					}
				}
				if r, _ := env.Client.GetCustomerWithResponse(ctx, "shop", apptest.Bearer(other)); r.StatusCode() != http.StatusOK {
					t.Errorf("another customer: %d", r.StatusCode())
				}
				// The outbox delivers Customer:Deleted after the account's earlier events.
				env.StartEvents()
				eventually(t, 10*time.Second, "Customer:Deleted delivered", func() bool {
					return slices.Contains(hook.types(id), "Customer:Deleted")
				})
				eventually(t, 10*time.Second, "the squatter's contact change delivered", func() bool {
					return slices.Contains(hook.types(squatted), "Customer:ContactChanged")
				})
				got := hook.types(id)
				if got[len(got)-1] != "Customer:Deleted" {
					t.Errorf("deliveries %v: Customer:Deleted is not the last", got)
				}
				// Every event still owed at the erasure, the squatter's included,
				// goes out without the shopper's data.
				hook.mu.Lock()
				for _, e := range hook.seen {
					b, _ := json.Marshal(e)
					for _, p := range personal {
						if strings.Contains(string(b), p) {
							t.Errorf("a delivery after the erasure carries %q: %s", p, b)
						}
					}
				}
				hook.mu.Unlock()
				// Signing in again with the same email starts a new, empty account.
				again := env.SignIn(t, "shop", "jane.doe@example.com")
				me, _ := env.Client.GetCustomerWithResponse(ctx, "shop", apptest.Bearer(again))
				if me.StatusCode() != http.StatusOK || me.JSON200.Id.String() == id || me.JSON200.FirstName != nil {
					t.Errorf("a new sign-in: %s", me.Body)
				}
			})
		})
	}
}

// A contact change withheld because its address is another account's proof
// (checkInPolicy full) is kept under that address: erasing the account
// forgets it too, with the rest of what names the address.
func TestErasureForgetsTheWithheldChangesToTheAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "tenants:\n  full: {checkInPolicy: full}\n")
		const owner = "withheld.owner@example.com"
		tok := env.SignIn(t, "full", owner)
		asker := env.SignIn(t, "full", "withheld.asker@example.com")
		res, err := env.Client.UpsertCustomerWithResponse(ctx, "full", nil, client.UpsertCustomerJSONRequestBody{Email: ptr(owner)}, apptest.Bearer(asker))
		if err != nil || res.StatusCode() != http.StatusAccepted {
			t.Fatalf("the withheld contact change: %v %d %s", err, res.StatusCode(), res.Body)
		}
		me, err := env.Client.GetCustomerWithResponse(ctx, "full", apptest.Bearer(tok))
		if err != nil || me.JSON200 == nil {
			t.Fatalf("the owner's account: %v", err)
		}
		if r, err := c.EraseCustomerWithResponse(ctx, "full", me.JSON200.Id.String()); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("erase: %v", err)
		}
		for _, row := range everyRow(t, dbURL) {
			if strings.Contains(row, owner) {
				t.Errorf("the erased address is still stored: %s", row)
			}
		}
	})
}

// The ownership rule takes a contact off the account where it sat
// unverified when someone else proves it; that account's events named it
// (its Customer:Upserted as data, its Customer:ContactChanged as previous).
// Erasing the prover takes the address out of those events too, delivered
// or not, so that the other account's export holds it no more, and leaves
// the rest of them as they were; and forgets the other account's stored
// idempotent answers that showed it. The email has a character JSON
// writes escaped ("&" as \u0026), as events and answers store it.
func TestErasureTakesTheContactOutOfTheEventsOfTheAccountItLeft(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) { erasesALeftContact(t, dbURL, false) })
}

// The same, when the other account's first event, which named the address,
// died (its webhooks down past maxAge) and its contact change was delivered
// and is older than the janitor keeps: the change, the erasure's only way
// to that account, stays as long as the dead event, which the export shows
// and a replay would send.
func TestErasureTakesTheContactOutOfADeadEventOnceItsContactChangeIsPurged(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) { erasesALeftContact(t, dbURL, true) })
}

// erasesALeftContact is TestErasureTakesTheContactOutOfTheEventsOfTheAccountItLeft
// on one database; dead: the holder's first event died, the others were
// delivered, and the janitor purged what it no longer keeps before the
// erasure.
func erasesALeftContact(t *testing.T, dbURL string, dead bool) {
	config := "tenants:\n  demo: {}\n  byphone: {identifier: phoneNumber}\n"
	if dead {
		// Webhooks, for events to be undelivered until the dispatcher runs
		// (none subscribed, each is delivered as it is written).
		webhooks := fmt.Sprintf(`webhooks: {endpoints: [{url: %q, secret: "0123456789abcdef", allowPrivateNetwork: true}]}`, receiver(t).srv.URL)
		config = fmt.Sprintf("tenants:\n  demo: {%s}\n  byphone: {identifier: phoneNumber, %s}\n", webhooks, webhooks)
	}
	env, c := start(t, dbURL, config)
	for _, k := range []struct {
		name, tenant, squatted, own string
		squat                       client.UpsertCustomerJSONRequestBody
		signIn                      func(string) string
	}{
		{name: "an email", tenant: "byphone", squatted: "erased&co@example.com", own: "+33655555555",
			squat:  client.UpsertCustomerJSONRequestBody{PhoneNumber: ptr("+33655555555"), Email: ptr("erased&co@example.com")},
			signIn: func(email string) string { return env.SignIn(t, "byphone", email) }},
		{name: "a phone number", tenant: "demo", squatted: "+33666666666", own: "holder.of.phone@example.com",
			squat:  client.UpsertCustomerJSONRequestBody{Email: ptr("holder.of.phone@example.com"), PhoneNumber: ptr("+33666666666")},
			signIn: func(phone string) string { return signInByPhone(t, env, "demo", phone) }},
	} {
		t.Run(k.name, func(t *testing.T) {
			// The other account: created with the address and a contact of its
			// own, which its holder proves.
			res, err := env.Client.UpsertCustomerWithResponse(ctx, k.tenant, nil, k.squat, idempotencyKey("squat-"+k.tenant))
			if err != nil || res.StatusCode() != http.StatusOK {
				t.Fatalf("create: %v %d %s", err, res.StatusCode(), res.Body)
			}
			holder := res.JSON200.Id.String()
			var holderTok string
			if k.tenant == "byphone" {
				holderTok = signInByPhone(t, env, k.tenant, k.own)
			} else {
				holderTok = env.SignIn(t, k.tenant, k.own)
			}
			if subject(t, env, k.tenant, holderTok) != holder {
				t.Fatal("the holder signed into another account")
			}
			// The address's owner proves it: it leaves the holder's account.
			erased := subject(t, env, k.tenant, k.signIn(k.squatted))
			if erased == holder {
				t.Fatal("the owner signed into the holder's account")
			}
			export := func() string {
				t.Helper()
				r, err := c.ExportCustomerWithResponse(ctx, k.tenant, holder)
				if err != nil || r.StatusCode() != http.StatusOK {
					t.Fatalf("export: %v %d %s", err, r.StatusCode(), r.Body)
				}
				return string(r.Body)
			}
			// The address as written and as JSON writes it.
			escaped, _ := json.Marshal(k.squatted)
			forms := []string{k.squatted, strings.Trim(string(escaped), `"`)}
			names := func(s string) bool {
				return slices.ContainsFunc(forms, func(f string) bool { return strings.Contains(s, f) })
			}
			before := export()
			if !names(before) || !strings.Contains(before, "Customer:ContactChanged") {
				t.Fatalf("the holder's events before the erasure: %s", before)
			}
			if dead {
				deadFirstAndPurge(t, env, k.tenant, holder)
			}
			if r, err := c.EraseCustomerWithResponse(ctx, k.tenant, erased); err != nil || r.StatusCode() != http.StatusNoContent {
				t.Fatalf("erase: %v", err)
			}
			after := export()
			if names(after) {
				t.Errorf("the holder's export still holds the erased address: %s", after)
			}
			var doc struct {
				Events []struct {
					Type    string `json:"type"`
					Payload struct {
						Data map[string]any `json:"data"`
					} `json:"payload"`
				} `json:"events"`
			}
			if err := json.Unmarshal([]byte(after), &doc); err != nil {
				t.Fatal(err)
			}
			want := 3
			if dead {
				want = 2 // the dead event and the contact change
			}
			if len(doc.Events) < want {
				t.Fatalf("the holder's events: %s", after)
			}
			for _, e := range doc.Events {
				if b, _ := json.Marshal(e.Payload.Data); !strings.Contains(string(b), k.own) || e.Payload.Data["id"] != holder {
					t.Errorf("a %s of the holder lost the holder's own data: %s", e.Type, b)
				}
			}
			for _, row := range everyRow(t, dbURL) {
				if names(row) {
					t.Errorf("the erased address is still stored: %s", row)
				}
			}
		})
	}
}

// deadFirstAndPurge gives up the first event of tenant's account holder as
// undeliverable, delivers every other event, and purges every delivered
// event as the janitor will once they are old enough.
func deadFirstAndPurge(t *testing.T, env *apptest.Env, tenant, holder string) {
	t.Helper()
	evs, err := env.App.Store.Events(ctx, store.EventQuery{Tenant: tenant, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	first := slices.IndexFunc(evs, func(e store.Event) bool { return e.CustomerID == holder })
	if first < 0 || evs[first].Type != "Customer:Upserted" || evs[first].DeliveredAt != nil {
		t.Fatalf("the holder's first event: %+v", evs)
	}
	if err := env.App.Store.EventFailed(ctx, evs[first].ID, time.Now(), true, "gone"); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := env.App.Events.Once(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	now := time.Now()
	if err := env.App.Store.Purge(ctx, store.Cutoffs{ChallengesExpired: now.Add(-time.Hour), CounterDays: "2000-01-01",
		Throttles: now.Add(-time.Hour), IdempotencyKeys: now.Add(-time.Hour), DeliveredEvents: now.Add(time.Hour), Erased: now}); err != nil {
		t.Fatal(err)
	}
}

// A token holder's contact change holds the request that asked for it
// until its code comes back; the request may name the account's other
// contact as it stands, someone else's number sitting unverified there.
// Once that someone proves the number and is erased, no held change names
// it.
func TestErasureLeavesTheContactInNoOtherAccountsHeldChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		const phone = "+33677777777"
		res, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
			Email: ptr("held.holder@example.com"), PhoneNumber: ptr(phone)})
		if err != nil || res.StatusCode() != http.StatusOK {
			t.Fatalf("create: %v %d %s", err, res.StatusCode(), res.Body)
		}
		tok := env.SignIn(t, "demo", "held.holder@example.com")
		// A new email, with the account's phone number as it stands.
		change, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{
			Email: ptr("held.holder.new@example.com"), PhoneNumber: ptr(phone)}, apptest.Bearer(tok))
		if err != nil || change.StatusCode() != http.StatusAccepted {
			t.Fatalf("the contact change: %v %d %s", err, change.StatusCode(), change.Body)
		}
		erased := subject(t, env, "demo", signInByPhone(t, env, "demo", phone))
		if erased == res.JSON200.Id.String() {
			t.Fatal("the number's owner signed into the holder's account")
		}
		if r, err := c.EraseCustomerWithResponse(ctx, "demo", erased); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("erase: %v", err)
		}
		for _, row := range everyRow(t, dbURL) {
			if strings.Contains(row, phone) {
				t.Errorf("the erased number is still stored: %s", row)
			}
		}
		// The holder's change still completes, with the email alone.
		id := change.JSON202.ChallengeId.String()
		done, err := env.Client.AuthenticateCustomerWithResponse(ctx, "demo", &client.AuthenticateCustomerParams{Provider: ptr("otp")},
			client.AuthenticateCustomerJSONRequestBody{ChallengeId: &id, Code: ptr(env.Logs.Code("held.holder.new@example.com"))})
		if err != nil || done.StatusCode() != http.StatusOK {
			t.Fatalf("complete the change: %v %d %s", err, done.StatusCode(), done.Body)
		}
		me, err := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(*done.JSON200))
		if err != nil || me.JSON200 == nil || me.JSON200.Email == nil || *me.JSON200.Email != "held.holder.new@example.com" || me.JSON200.PhoneNumber != nil {
			t.Fatalf("the holder's account after the change: %v %s", err, me.Body)
		}
	})
}

// signInByPhone runs the one-time code journey for phone on tenant and
// returns the token.
func signInByPhone(t *testing.T, env *apptest.Env, tenant, phone string) string {
	t.Helper()
	otp := ptr("otp")
	start, err := env.Client.AuthenticateCustomerWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: otp},
		client.AuthenticateCustomerJSONRequestBody{PhoneNumber: &phone})
	if err != nil || start.StatusCode() != http.StatusAccepted {
		t.Fatalf("ask for a code: %v %d %s", err, start.StatusCode(), start.Body)
	}
	id := start.JSON202.ChallengeId.String()
	res, err := env.Client.AuthenticateCustomerWithResponse(ctx, tenant, &client.AuthenticateCustomerParams{Provider: otp},
		client.AuthenticateCustomerJSONRequestBody{ChallengeId: &id, Code: ptr(env.Logs.Code(phone))})
	if err != nil || res.StatusCode() != http.StatusOK {
		t.Fatalf("exchange the code: %v %d %s", err, res.StatusCode(), res.Body)
	}
	return *res.JSON200
}

// everyRow reads every row of every table of the database, each as
// "table: value | value…".
func everyRow(t *testing.T, dbURL string) []string {
	t.Helper()
	driver, dsn, list := "pgx", dbURL, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	if path, ok := strings.CutPrefix(dbURL, "sqlite://"); ok {
		driver, dsn, list = "sqlite", path, `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, err := db.Query(list)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		_ = names.Scan(&n)
		tables = append(tables, n)
	}
	names.Close()
	if !slices.Contains(tables, "customers") || !slices.Contains(tables, "events") || !slices.Contains(tables, "idempotency_keys") {
		t.Fatalf("tables %v", tables)
	}
	var out []string
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			parts := make([]string, len(vals))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				parts[i] = fmt.Sprint(v)
			}
			out = append(out, table+": "+strings.Join(parts, " | "))
		}
		rows.Close()
	}
	return out
}

// An erasure forgets the stored answers that show the erased customer's
// verified contacts, and only those: another customer's answer whose own
// address merely contains the erased one (mary.jane@ holds jane@) is still
// replayed, so that the retry of that customer's request does not run it
// twice.
func TestErasureKeepsTheStoredAnswersOfAnAddressThatOnlyContainsTheErasedOne(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dbURL string) {
		env, c := start(t, dbURL, "")
		mary := env.SignIn(t, "demo", "mary.jane@example.com")
		update := func(name string, opts ...client.RequestEditorFn) *client.UpsertCustomerResponse {
			t.Helper()
			res, err := env.Client.UpsertCustomerWithResponse(ctx, "demo", nil, client.UpsertCustomerJSONRequestBody{FirstName: ptr(name)},
				append([]client.RequestEditorFn{apptest.Bearer(mary)}, opts...)...)
			if err != nil || res.StatusCode() != http.StatusOK {
				t.Fatalf("update to %s: %v %d %s", name, err, res.StatusCode(), res.Body)
			}
			return res
		}
		update("Mary", idempotencyKey("key-mary-1"))
		erased := subject(t, env, "demo", env.SignIn(t, "demo", "jane@example.com"))
		if r, err := c.EraseCustomerWithResponse(ctx, "demo", erased); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("erase: %v", err)
		}
		update("Maria")
		again := update("Mary", idempotencyKey("key-mary-1"))
		if again.HTTPResponse.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("the retry of Mary's request ran again: %s", again.Body)
		}
		me, err := env.Client.GetCustomerWithResponse(ctx, "demo", apptest.Bearer(mary))
		if err != nil || me.JSON200 == nil || me.JSON200.FirstName == nil || *me.JSON200.FirstName != "Maria" {
			t.Errorf("Mary's account after the retry: %v %s", err, me.Body)
		}
	})
}

// A contact the erased customer proved and changed since is as much theirs
// as the one they hold now: where it sat unverified on another account
// before they proved it, that account's events named it (its
// Customer:Upserted as data, its Customer:ContactChanged as previous), and
// the erasure takes it out of them too, the other account's export and
// stored answers included; the other account's own contacts stay.
func TestErasureTakesAFormerContactOutOfTheEventsOfTheAccountItLeft(t *testing.T) {
	for _, taken := range []bool{false, true} {
		t.Run(fmt.Sprintf("the number taken since: %v", taken), func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, dbURL string) { erasesAFormerContact(t, dbURL, taken) })
		})
	}
}

// erasesAFormerContact is TestErasureTakesAFormerContactOutOfTheEventsOfTheAccountItLeft
// on one database; taken: someone proved the shopper's former number after
// she left it, and it is theirs now: every event and answer naming it stays.
func erasesAFormerContact(t *testing.T, dbURL string, taken bool) {
	const former = "+33698765432"
	hook := receiver(t)
	env, c := start(t, dbURL, shopConfig(t, hook.srv.URL))
	squatted := squatter(t, env, "shop")
	id, tok := shopper(t, env, "shop")
	// The shopper moves to another number, proven by its code.
	const next = "+33687654321"
	ch, err := env.Client.UpsertCustomerWithResponse(ctx, "shop", nil, client.UpsertCustomerJSONRequestBody{PhoneNumber: ptr(next)}, apptest.Bearer(tok))
	if err != nil || ch.StatusCode() != http.StatusAccepted {
		t.Fatalf("change the phone: %v %d %s", err, ch.StatusCode(), ch.Body)
	}
	cid := ch.JSON202.ChallengeId.String()
	if r, err := env.Client.AuthenticateCustomerWithResponse(ctx, "shop", &client.AuthenticateCustomerParams{Provider: ptr("otp")},
		client.AuthenticateCustomerJSONRequestBody{ChallengeId: &cid, Code: ptr(env.Logs.Code(next))}); err != nil || r.StatusCode() != http.StatusOK {
		t.Fatalf("prove the new phone: %v %d %s", err, r.StatusCode(), r.Body)
	}
	export := func(who string) string {
		t.Helper()
		r, err := c.ExportCustomerWithResponse(ctx, "shop", who)
		if err != nil || r.StatusCode() != http.StatusOK {
			t.Fatalf("export: %v %d %s", err, r.StatusCode(), r.Body)
		}
		return string(r.Body)
	}
	if !strings.Contains(export(id), next) || !strings.Contains(export(squatted), "+33698765432") {
		t.Fatal("before the erasure: the shopper's new number, or the squatter's events of the old one, are missing")
	}
	holder := ""
	if taken {
		holder = subject(t, env, "shop", signInByPhone(t, env, "shop", former))
	}
	if r, err := c.EraseCustomerWithResponse(ctx, "shop", id); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("erase: %v", err)
	}
	if taken {
		if !strings.Contains(export(holder), former) || !strings.Contains(export(squatted), former) {
			t.Error("the number's new holder's data, or the events naming it, went with the erasure")
		}
		return
	}
	after := export(squatted)
	if strings.Contains(after, "+33698765432") {
		t.Errorf("the squatter's export still holds the erased customer's former number: %s", after)
	}
	if !strings.Contains(after, "squatter@example.com") {
		t.Errorf("the squatter's own email went too: %s", after)
	}
	// The former number's day of failures and resend wait are the
	// number's, which may be someone else's by now: they expire with
	// the day, as an address merely typed on the account does.
	for _, row := range everyRow(t, dbURL) {
		for _, p := range []string{"+33698765432", next} {
			if strings.Contains(row, p) && !strings.HasPrefix(row, "counters: ") && !strings.HasPrefix(row, "throttles: ") {
				t.Errorf("%s is still stored: %s", p, row)
			}
		}
	}
}
