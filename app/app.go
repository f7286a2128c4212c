// Package app wires customerd together from its configuration: the store,
// the secret-derived keys, the tenants with their senders and providers, and
// the HTTP server. main, the HTTP-level tests and the load benchmark all
// start the service through it.
package app

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/events"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/providers/oidc"
	"github.com/customerd/customerd/providers/otp"
	"github.com/customerd/customerd/providers/webhook"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/server"
	"github.com/customerd/customerd/signin"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/token"
)

// App is a wired customerd.
type App struct {
	// Handler serves the API and its documentation.
	Handler http.Handler
	// Metrics serves /metrics, on a listener of its own (metricsAddr).
	Metrics http.Handler
	Store   store.Store
	Tokens  *token.Service
	Config  *config.Config
	// Events delivers the outbox to the tenants' webhooks; Run it beside the server.
	Events *events.Dispatcher
	log    *slog.Logger
}

// Registry is the provider types customerd knows. The OpenID Connect types
// share one JWKS cache: every tenant that trusts an issuer uses its keys.
func Registry(log *slog.Logger) *providers.Registry {
	r := providers.NewRegistry()
	r.Register(otp.Type, otp.Factory)
	r.Register(webhook.Type, webhook.Factory)
	oidc.New(log, nil).Register(r)
	return r
}

// New opens the store (applying migrations) and wires every part.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	secret, err := loadSecret(cfg, log, o.existing)
	if err != nil {
		return nil, err
	}
	sealKey, err := derive(secret, "customerd signing-key seal v1")
	if err != nil {
		return nil, err
	}
	codeKey, err := derive(secret, "customerd one-time code hash v1")
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.Database.URL, store.Options{MaxOpenConns: cfg.Database.MaxOpenConns, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Database.Redacted(), err)
	}
	a, err := wire(cfg, st, log, sealKey, codeKey, o)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return a, nil
}

// Option changes how New wires the service.
type Option func(*options)

type options struct {
	now      func() time.Time
	existing bool
}

// WithClock makes challenges and accounts read the time from now (tests move it forward).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// ExistingSecret refuses to generate the secret into secretFile: a command
// other than serve must use the one the service seals its keys with.
func ExistingSecret() Option { return func(o *options) { o.existing = true } }

func wire(cfg *config.Config, st store.Store, log *slog.Logger, sealKey, codeKey []byte, o options) (*App, error) {
	longest := time.Duration(0)
	for _, t := range cfg.Tenants {
		longest = max(longest, t.TokenLifetime)
	}
	metrics := prometheus.NewRegistry()
	tokens, err := token.New(st, token.Options{IssuerBase: cfg.PublicURL, Retention: longest + 5*time.Minute, Seal: sealKey,
		Cache:   token.CacheOptions{MaxEntries: max(cfg.TokenCache.MaxEntries, 0), MaxBytes: uint64(cfg.TokenCache.MaxMemoryMiB) << 20},
		Metrics: metrics})
	if err != nil {
		return nil, err
	}
	now := store.Clock(o.now) // every stored time, as the databases keep it
	challenges := challenge.New(st, codeKey, now)
	registry := Registry(log)
	senders := sender.Builtin()
	tenants := map[string]*server.Tenant{}
	hooks := map[string]events.Tenant{}
	for _, id := range cfg.TenantIDs() {
		tc := cfg.Tenants[id]
		hook := events.Tenant{MaxAge: tc.Webhooks.MaxAge, RetryBase: tc.Webhooks.RetryBase, RetryMax: tc.Webhooks.RetryMax}
		for _, ep := range tc.Webhooks.Endpoints {
			hook.Endpoints = append(hook.Endpoints, events.Endpoint{URL: ep.URL, Secret: ep.Secret, Types: ep.Events,
				AllowPrivateNetwork: ep.AllowPrivateNetwork})
		}
		hooks[id] = hook
		t := &server.Tenant{
			Tenant: &account.Tenant{
				ID: id, DefaultCountry: tc.DefaultCountry, DefaultLanguage: tc.DefaultLanguage, PhoneRegion: tc.PhoneRegion,
				Identifier: tc.Identifier, RequiredFields: tc.RequiredFields, TokenLifetime: tc.TokenLifetime,
				OTP: challenge.Limits{Lifetime: tc.OTP.CodeLifetime, MaxAttempts: tc.OTP.MaxAttempts,
					ResendInterval: tc.OTP.ResendInterval, MaxFailuresPerDay: tc.OTP.MaxFailuresPerDay},
				Senders:       map[sender.Channel]sender.Sender{},
				Subscribed:    hook.Wants,
				CheckInPage:   tc.CheckInPage,
				CheckInPolicy: tc.CheckInPolicy,
			},
			Providers: map[string]providers.Provider{},
		}
		reg, err := flows.Build(tc.Flows, tc.FlowDefaults())
		if err != nil {
			return nil, fmt.Errorf("tenants.%s.flows.%w", id, err)
		}
		t.Flows = reg
		for ch, sc := range tc.Senders {
			snd, err := senders.Open(sc, log)
			if err != nil {
				return nil, fmt.Errorf("tenants.%s.senders.%s: %w", id, ch, err)
			}
			t.Senders[ch] = sc.Guard(snd, st)
		}
		for name, pc := range tc.Providers {
			p, err := registry.Open(name, pc.Type, pc.Settings, providers.Deps{Tenant: id, Logger: log})
			if err != nil {
				return nil, config.Problems{providerProblem(id, name, err)}
			}
			t.Providers[name] = p
		}
		tenants[id] = t
	}
	accounts := account.NewService(st, challenges, now)
	e, err := server.New(server.Options{Tenants: tenants, Store: st, Accounts: accounts,
		SignIn: signin.New(st, accounts, challenges), Tokens: tokens, Logger: log, TrustedProxies: cfg.TrustedNets(), Metrics: metrics})
	if err != nil {
		return nil, err
	}
	dispatcher := events.New(events.Options{Store: st, Tenants: hooks, PollInterval: cfg.Events.PollInterval,
		Lease: cfg.Events.Lease, Timeout: cfg.Events.Timeout, Logger: log})
	return &App{Handler: e, Metrics: server.Metrics(metrics, log), Store: st, Tokens: tokens, Config: cfg, Events: dispatcher, log: log}, nil
}

// HTTPServer is the API's HTTP server, with the time and size limits it serves under.
func (a *App) HTTPServer() *http.Server { return a.httpServer(a.Handler) }

// MetricsServer is the metrics listener's HTTP server.
func (a *App) MetricsServer() *http.Server { return a.httpServer(a.Metrics) }

func (a *App) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
}

// Janitor purges expired challenges and counters until ctx ends.
func (a *App) Janitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Store.Purge(ctx, time.Now()); err != nil {
				a.log.Warn("purge", "error", err.Error())
			}
		}
	}
}

// Close closes the store.
func (a *App) Close() error { return a.Store.Close() }

// loadSecret is the configured secret or, for the demo default, one
// generated once and kept in SecretFile (unless existing is set).
func loadSecret(cfg *config.Config, log *slog.Logger, existing bool) ([]byte, error) {
	if cfg.Secret != "" {
		return []byte(cfg.Secret), nil
	}
	raw, err := os.ReadFile(cfg.SecretFile)
	if err == nil {
		s := strings.TrimSpace(string(raw))
		if len(s) < 32 {
			return nil, fmt.Errorf("secretFile: %s holds fewer than 32 characters", cfg.SecretFile)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) || existing {
		return nil, fmt.Errorf("secretFile: %w (set secret or CUSTOMERD_SECRET to the service's)", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	s := hex.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(cfg.SecretFile), 0o700); err != nil {
		return nil, fmt.Errorf("secretFile: %w", err)
	}
	if err := os.WriteFile(cfg.SecretFile, []byte(s+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("secretFile: %w", err)
	}
	log.Warn("generated a secret and kept it in secretFile; set CUSTOMERD_SECRET in production", "secretFile", cfg.SecretFile)
	return []byte(s), nil
}

func derive(secret []byte, purpose string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, purpose, 32)
}
