// Package app wires customerd together from its configuration: the store,
// the secret-derived keys, the tenants with their senders and providers, and
// the HTTP server. main, the HTTP-level tests and the load benchmark all
// start the service through it.
package app

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customerd/customerd/account"
	"github.com/customerd/customerd/admin"
	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/events"
	"github.com/customerd/customerd/gen/api"
	"github.com/customerd/customerd/privacy"
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
	// AdminHandler serves the administration API, on its own listener (adminAddr).
	AdminHandler http.Handler
	// Catalog reads and writes the tenants of the database.
	Catalog *catalog.Catalog
	// AdminKeys keeps the admin API keys.
	AdminKeys admin.KeyStore
	live      *catalog.Live[*served]
	audit     admin.Store
	reconcile time.Duration
	log       *slog.Logger
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
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := int64(math.MaxInt64) // Go's default: none
		if cfg.MemoryLimitMiB > 0 {
			limit = int64(cfg.MemoryLimitMiB) << 20
		}
		debug.SetMemoryLimit(limit)
	}
	secret, written, err := loadSecret(cfg, log, o.existing)
	if err != nil {
		return nil, err
	}
	var keys derived
	for _, k := range []struct {
		into    *[]byte
		purpose string
	}{
		{&keys.seal, "customerd signing-key seal v1"},
		{&keys.code, "customerd one-time code hash v1"},
		{&keys.tenants, "customerd tenant secrets seal v1"},
	} {
		if *k.into, err = derive(secret, k.purpose); err != nil {
			return nil, err
		}
	}
	st, err := store.Open(ctx, cfg.Database.URL, store.Options{MaxOpenConns: cfg.Database.MaxOpenConns, SQLiteMmap: int64(cfg.Database.SQLiteMmapMiB) << 20, Logger: log, QueryTracer: o.tracer, NoMigrate: o.noMigrate})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Database.Redacted(), err)
	}
	a, err := wire(ctx, cfg, st, log, keys, o)
	if err != nil {
		_ = st.Close()
		if written != nil && errors.Is(err, store.ErrWrongSecret) {
			forgetSecret(cfg.SecretFile, written) // the database's is elsewhere: not this one
		}
		return nil, err
	}
	return a, nil
}

// derived are the keys derived from the secret, one per purpose.
type derived struct {
	seal    []byte // signing keys at rest
	code    []byte // one-time code hashes
	tenants []byte // tenants' secrets at rest
}

// Option changes how New wires the service.
type Option func(*options)

type options struct {
	spec      *openapi3.T
	now       func() time.Time
	existing  bool
	reconcile time.Duration
	tracer    pgx.QueryTracer
	// noConfigTenants: the configuration file's tenants are not written (a command other than serve).
	noConfigTenants bool
	// noMigrate: no migration is applied (store.ErrSchemaBehind when one is pending).
	noMigrate bool
}

// WithoutMigrating opens a database whose schema is current and applies no
// migration: a command that must write nothing (a dry run) fails with
// store.ErrSchemaBehind instead.
func WithoutMigrating() Option { return func(o *options) { o.noMigrate = true } }

// WithSpec validates requests against spec instead of openapi.yaml as
// generated (a test shows that the contract alone decides).
func WithSpec(spec *openapi3.T) Option { return func(o *options) { o.spec = spec } }

// WithClock makes challenges and accounts read the time from now (tests move it forward).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithReconcile sets how often Watch reads every tenant's version again
// (reconcileEvery by default).
func WithReconcile(every time.Duration) Option { return func(o *options) { o.reconcile = every } }

// WithQueryTracer shows tracer every statement sent to PostgreSQL (tests
// count and EXPLAIN what requests send).
func WithQueryTracer(tracer pgx.QueryTracer) Option { return func(o *options) { o.tracer = tracer } }

// ExistingSecret refuses to generate the secret into secretFile: a command
// other than serve must use the one the service seals its keys with.
func ExistingSecret() Option { return func(o *options) { o.existing = true } }

// WithoutConfigTenants leaves the configuration file's tenants unwritten: a
// command other than serve (tenants apply, whose dry run wrote them and then
// reported them unchanged, and reverted what the admin API had changed in
// them; rotate-key) changes only what it says.
func WithoutConfigTenants() Option { return func(o *options) { o.noConfigTenants = true } }

func wire(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger, keys derived, o options) (*App, error) {
	metrics := prometheus.NewRegistry()
	now := store.Clock(o.now) // every stored time, as the databases keep it
	// A tenant's token lifetime may change at runtime: keys stay as long as the longest allowed.
	// Tokens read the accounts' clock: a token's time is compared with an
	// account's (sessions revoked at a time).
	tokens, err := token.New(st, token.Options{IssuerBase: cfg.PublicURL, Retention: config.MaxTokenLifetime + 5*time.Minute, Seal: keys.seal,
		Cache:   token.CacheOptions{MaxEntries: max(cfg.TokenCache.MaxEntries, 0), MaxBytes: uint64(cfg.TokenCache.MaxMemoryMiB) << 20},
		Metrics: metrics, Now: now})
	if err != nil {
		return nil, err
	}
	if err := tokens.CheckSeal(ctx); err != nil {
		return nil, err
	}
	challenges := challenge.New(st, keys.code, now, log)
	b := &builder{registry: Registry(log), senders: sender.Builtin(), counter: st, log: log, demo: cfg.Demo}
	db, ok := st.(rooms)
	if !ok {
		return nil, fmt.Errorf("database: %T keeps no tenants", st)
	}
	cat, err := catalog.New(db, keys.tenants, func(id string, t *config.Tenant) error {
		_, err := b.build(id, t)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := cat.CheckSeal(ctx); err != nil {
		return nil, err
	}
	live := catalog.NewLive(cat, b.live, log)
	if err := live.Load(ctx); err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	if !o.noConfigTenants {
		if err := applyConfig(ctx, cfg, cat, live, db, log); err != nil {
			return nil, err
		}
	}
	tenants := liveTenants{live: live}
	accounts := account.NewService(st, challenges, now, log)
	rights := privacy.New(db, now)
	spec := o.spec
	if spec == nil {
		if spec, err = api.GetSpec(); err != nil {
			return nil, err
		}
	}
	e, err := server.New(server.Options{Tenants: tenants, Eraser: rights, Store: st, Accounts: accounts,
		SignIn: signin.New(st, accounts, challenges, server.Lengths(spec)), Tokens: tokens, Logger: log,
		TrustedProxies: cfg.TrustedNets(), Metrics: metrics, Spec: spec})
	if err != nil {
		return nil, err
	}
	dispatcher := events.New(events.Options{Store: st, Tenants: tenants.hooks, PollInterval: cfg.Events.PollInterval,
		Lease: cfg.Events.Lease, Timeout: cfg.Events.Timeout, Logger: log})
	adm, err := admin.New(admin.Options{Store: db, Catalog: cat, Tenants: tenants, Changed: live.Changed,
		Privacy: rights, Logger: log, Now: now})
	if err != nil {
		return nil, err
	}
	return &App{Handler: e, Metrics: server.Metrics(metrics, log), AdminHandler: adm, Store: st, Tokens: tokens, Config: cfg,
		Events: dispatcher, Catalog: cat, AdminKeys: db, live: live, audit: db, reconcile: cmp.Or(o.reconcile, reconcileEvery), log: log}, nil
}

// rooms is the database as the tenant catalog, its watch, the admin API and
// privacy use it, beside store.Store.
type rooms interface {
	catalog.Store
	catalog.Watcher
	admin.Store
	admin.KeyStore
	privacy.Store
}

// reconcileEvery is how often a replica reads every tenant's version again,
// which heals a missed change notification.
const reconcileEvery = 10 * time.Second

// Tenants counts the tenants this replica serves.
func (a *App) Tenants() int { return a.live.Len() }

// Watch keeps this replica's tenants current until ctx ends; run it beside
// the server. A tenant another replica changes is rebuilt at its next
// request, notified at once on PostgreSQL and within reconcileEvery anyway.
func (a *App) Watch(ctx context.Context) {
	a.live.Run(ctx, a.Store.(catalog.Watcher), a.reconcile)
}

// HTTPServer is the API's HTTP server, with the time and size limits it serves under.
func (a *App) HTTPServer() *http.Server { return a.httpServer(a.Handler) }

// MetricsServer is the metrics listener's HTTP server.
func (a *App) MetricsServer() *http.Server { return a.httpServer(a.Metrics) }

// AdminServer is the admin listener's HTTP server.
func (a *App) AdminServer() *http.Server { return a.httpServer(a.AdminHandler) }

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
			if err := a.Store.Purge(ctx, retention(time.Now())); err != nil {
				a.log.Warn("purge", "error", err.Error())
			}
		}
	}
}

// retention is what the service keeps of what no longer matters: an
// expired challenge a day (to answer "expired", not "unknown"), a day's
// counters two days, Idempotency-Key answers 24 hours (README, Idempotency),
// delivered events 30 days (for events list and replays); nothing bound to
// an account erased in the last two days (the janitor runs every hour).
func retention(now time.Time) store.Cutoffs {
	day := 24 * time.Hour
	return store.Cutoffs{ChallengesExpired: now.Add(-day), CounterDays: now.UTC().Add(-2 * day).Format(time.DateOnly),
		Throttles: now.Add(-day), IdempotencyKeys: now.Add(-day), DeliveredEvents: now.Add(-30 * day), Erased: now.Add(-2 * day)}
}

// Close closes the store.
func (a *App) Close() error { return a.Store.Close() }

// loadSecret is the configured secret or, for the demo default, one
// generated once and kept in SecretFile (unless existing is set); written is
// the file's content when this start wrote it.
func loadSecret(cfg *config.Config, log *slog.Logger, existing bool) (secret, written []byte, err error) {
	if cfg.Secret != "" {
		if !config.VariedSecret(cfg.Secret) {
			log.Warn(config.WeakSecretWarning)
		}
		return []byte(cfg.Secret), nil, nil
	}
	raw, err := os.ReadFile(cfg.SecretFile)
	if errors.Is(err, fs.ErrNotExist) && !existing {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, nil, err
		}
		generated := []byte(hex.EncodeToString(b[:]) + "\n")
		var ours bool
		if raw, ours, err = keepSecret(cfg.SecretFile, generated); err != nil {
			return nil, nil, fmt.Errorf("secretFile: %w", err)
		}
		if ours {
			written = generated
			log.Warn("generated a secret and kept it in secretFile; set CUSTOMERD_SECRET in production", "secretFile", cfg.SecretFile)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("secretFile: %w (set secret or CUSTOMERD_SECRET to the service's)", err)
	}
	s := strings.TrimSpace(string(raw))
	if len(s) < 32 {
		return nil, nil, fmt.Errorf("secretFile: %s holds fewer than 32 characters", cfg.SecretFile)
	}
	if !config.VariedSecret(s) {
		log.Warn(config.WeakSecretWarning, "secretFile", cfg.SecretFile)
	}
	return []byte(s), written, nil
}

// keepSecret puts content at path unless a file is there already, and
// returns what path holds: content (ours), or what another start put there
// first. Starts sharing a folder must seal with one secret, and a crash must
// leave all of it or none: content goes to a temporary file, synced, then
// linked to path (which fails when path exists), the folder synced.
func keepSecret(path string, content []byte) (held []byte, ours bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*") // 0o600
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		held, err := os.ReadFile(path)
		return held, false, err
	} else if err != nil {
		return nil, false, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = d.Close() }()
	return content, true, d.Sync()
}

// forgetSecret removes the secret a start wrote to path, unless path holds
// another since (another start's, or the one an operator put back): that
// one is not this start's to remove.
func forgetSecret(path string, written []byte) {
	if held, err := os.ReadFile(path); err == nil && bytes.Equal(held, written) {
		_ = os.Remove(path)
	}
}

func derive(secret []byte, purpose string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, purpose, 32)
}
