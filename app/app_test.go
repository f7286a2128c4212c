package app_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/app/apptest"
)

func TestABadProviderSettingStopsStartUp(t *testing.T) {
	for _, c := range []struct{ name, providers, want string }{
		{"unknown type", "x: {type: pigeon}", `tenants.shop.providers.x.type: unknown provider type "pigeon", have [apple facebook google line oidc otp webhook]`},
		{"no client ids", "google: {type: google}", "tenants.shop.providers.google.clientIds: required"},
		{"unknown setting", "google: {type: google, clientIds: [a], clientID: a}", `tenants.shop.providers.google.settings: json: unknown field "clientID"`},
		{"generic without issuer", "corp: {type: oidc, clientIds: [a]}", "tenants.shop.providers.corp.issuer: required"},
		{"plain http issuer", "corp: {type: oidc, clientIds: [a], issuer: 'http://idp.example'}", "tenants.shop.providers.corp.issuer:"},
		{"channel secret outside line", "google: {type: google, clientIds: [a], channelSecret: s}", "tenants.shop.providers.google.channelSecret"},
		{"app secret outside facebook", "line: {type: line, clientIds: [a], appSecret: s}", "tenants.shop.providers.line.appSecret"},
		{"webhook without secret", "brand: {type: webhook, url: 'https://brand.example/auth'}", "tenants.shop.providers.brand.secret"},
		{"webhook over plain http", "brand: {type: webhook, url: 'http://brand.example/auth', secret: 0123456789abcdef0123456789abcdef}", "tenants.shop.providers.brand.url"},
		{"webhook timeout above 5s", "brand: {type: webhook, url: 'https://brand.example/auth', secret: 0123456789abcdef0123456789abcdef, timeout: 10s}", "tenants.shop.providers.brand.timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := apptest.Config(t, "", "tenants:\n  shop:\n    providers:\n      "+c.providers+"\n")
			a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				_ = a.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want one naming %q", err, c.want)
			}
		})
	}
}
