package config_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/customerd/customerd/config"
)

// endpoints is a tenant whose webhooks are urls, each with its own secret.
func endpoints(urls ...string) string {
	var b strings.Builder
	b.WriteString("tenants:\n  acme:\n    webhooks:\n      endpoints:\n")
	for i, u := range urls {
		fmt.Fprintf(&b, "        - {url: '%s', secret: 0123456789abcdef-%d}\n", u, i)
	}
	return b.String()
}

// Every event is posted to every endpoint at once: endpoints without number
// made one shopper's sign-up thousands of requests (found by an audit).
func TestATenantHasAtMostTenWebhookEndpoints(t *testing.T) {
	var urls []string
	for i := range 11 {
		urls = append(urls, fmt.Sprintf("https://crm.example/hooks/%d", i))
	}
	if _, err := load(t, endpoints(urls[:10]...), nil); err != nil {
		t.Fatalf("ten endpoints: %v", err)
	}
	_, err := load(t, endpoints(urls...), nil)
	if err == nil || !strings.Contains(err.Error(), "tenants.acme.webhooks.endpoints: 11 endpoints, at most 10") {
		t.Fatalf("eleven endpoints: %v, want a problem naming webhooks.endpoints", err)
	}
}

// Two endpoints of one URL make every event two requests to one receiver;
// one endpoint lists every type it wants.
func TestTwoWebhookEndpointsCannotShareAURL(t *testing.T) {
	_, err := load(t, endpoints("https://crm.example/hook", "https://crm.example/other", "https://crm.example/hook"), nil)
	if err == nil || !strings.Contains(err.Error(), "tenants.acme.webhooks.endpoints[2].url: the url of webhooks.endpoints[0]") {
		t.Fatalf("a url twice: %v, want a problem naming the second one", err)
	}
	if strings.Contains(err.Error(), "crm.example") {
		t.Fatalf("the problem quotes the url, where a receiver may take its credential: %v", err)
	}
}

// A stored block vouches for one block of the new document: a key of one
// tenant sending the operator's private endpoint back twice, or more, asks
// for a private endpoint of its own, and a secret is kept by one copy only
// (found by an audit: each copy passed as the operator's, with its secret).
func TestAStoredBlockVouchesForOneBlockOnly(t *testing.T) {
	private := func() map[string]any {
		return map[string]any{"url": "http://10.0.0.7/hook", "allowPrivateNetwork": true}
	}
	doc := func(eps ...map[string]any) map[string]any {
		list := make([]any, len(eps))
		for i, e := range eps {
			list[i] = e
		}
		return map[string]any{"webhooks": map[string]any{"endpoints": list}}
	}
	stored := doc(private())
	if got := config.NewPrivateBlocks(doc(private()), stored); len(got) != 0 {
		t.Fatalf("the stored endpoint sent back: new private blocks %v", got)
	}
	if got := config.NewPrivateBlocks(doc(private(), private()), stored); !slices.Equal(got, []string{"webhooks.endpoints[]"}) {
		t.Fatalf("the stored endpoint sent twice: new private blocks %v, want the copy", got)
	}
	if got := config.NewPrivateBlocks(doc(private(), private()), doc(private(), private())); len(got) != 0 {
		t.Fatalf("two stored copies sent back: new private blocks %v", got)
	}

	withSecret := private()
	withSecret["secret"] = "0123456789abcdef"
	next := doc(private(), private())
	config.KeepSecrets(next, doc(withSecret), doc(private(), private()))
	var kept int
	for _, e := range next["webhooks"].(map[string]any)["endpoints"].([]any) {
		if e.(map[string]any)["secret"] != nil {
			kept++
		}
	}
	if kept != 1 {
		t.Fatalf("the stored secret was kept by %d copies, want 1", kept)
	}
}
