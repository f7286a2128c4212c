package config_test

import (
	"strings"
	"testing"
)

func TestAnEventWebhookIsPublicHTTPSUnlessItSaysOtherwise(t *testing.T) {
	endpoint := func(url, extra string) string {
		return "tenants:\n  acme:\n    webhooks:\n      endpoints: [{url: '" + url + "', secret: 0123456789abcdef" + extra + "}]\n"
	}
	const allow = ", allowPrivateNetwork: true"
	for _, c := range []struct {
		name, yaml string
		ok         bool
	}{
		{"the cloud metadata service over http is refused", endpoint("http://169.254.169.254/latest/meta-data/", ""), false},
		{"the cloud metadata service over https is refused", endpoint("https://169.254.169.254/latest/meta-data/", ""), false},
		{"a private address is refused", endpoint("https://10.0.0.8/hooks", ""), false},
		{"localhost is refused", endpoint("https://localhost:9000/hooks", ""), false},
		{"plain http to a named host is refused", endpoint("http://crm.example/hooks", ""), false},
		{"plain http to a public address is refused even with the setting", endpoint("http://203.0.113.9/hooks", allow), false},
		{"https to a named host is accepted", endpoint("https://crm.example/hooks", ""), true},
		{"a local receiver that says so is accepted", endpoint("http://127.0.0.1:9000/hooks", allow), true},
		{"a receiver inside the brand's network that says so is accepted", endpoint("https://10.0.0.8/hooks", allow), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml, nil)
			switch {
			case c.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !c.ok && err == nil:
				t.Fatal("accepted")
			case !c.ok && !strings.Contains(err.Error(), "tenants.acme.webhooks.endpoints[0].url"):
				t.Fatalf("error %q does not name the URL's setting", err)
			}
		})
	}
	t.Run("the refusal of the metadata service names allowPrivateNetwork", func(t *testing.T) {
		_, err := load(t, endpoint("http://169.254.169.254/", ""), nil)
		if err == nil || !strings.Contains(err.Error(), "allowPrivateNetwork: true") {
			t.Fatalf("error %v does not name the setting", err)
		}
	})
}

// A partial check-in link carries a challenge id and its code in its query,
// and goes into the email: a page over plain http hands both to whoever is
// on the shopper's network, who signs in with them (found by an audit).
func TestACheckInPageIsHTTPS(t *testing.T) {
	// Partial check-in sends the page's links, and so does a flow's link
	// step under any policy.
	tenant := func(policy, page string) string {
		return "tenants:\n  acme:\n    checkInPolicy: " + policy + "\n    checkInPage: '" + page + "'\n" +
			"    flows:\n      optin: [{challenge: link}]\n      signup: [{checkIn: partial}]\n"
	}
	for _, c := range []struct {
		name, policy, page string
		ok                 bool
	}{
		{"an https page is accepted", "partial", "https://shop.example/check-in?brand=acme", true},
		{"a plain http page is refused", "partial", "http://shop.example/check-in", false},
		{"a plain http page on localhost is refused too", "partial", "http://localhost:3000/check-in", false},
		{"a page without a host is refused", "partial", "https:///check-in", false},
		{"a relative page is refused", "partial", "/check-in", false},
		{"partial check-in needs a page", "partial", "", false},
		{"a plain http page is refused under full", "full", "http://shop.example/check-in", false},
		{"a plain http page is refused under none", "none", "http://shop.example/check-in", false},
		{"an https page is accepted under full", "full", "https://shop.example/check-in", true},
		{"no page under none sends codes", "none", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, tenant(c.policy, c.page), nil)
			switch {
			case c.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !c.ok && err == nil:
				t.Fatal("accepted")
			case !c.ok && (!strings.Contains(err.Error(), "tenants.acme.checkInPage") || !strings.Contains(err.Error(), "https")):
				t.Fatalf("error %q does not name the setting and https", err)
			}
		})
	}
}
