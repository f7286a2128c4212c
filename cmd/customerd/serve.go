// Command customerd serves the customer identity API and manages its
// database: `customerd --help` lists the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
)

const serveHelp = `
Checks the whole configuration first (as 'customerd config check' does), then
binds addr, metricsAddr and adminAddr, then applies the database migrations, so that a
bad setting or a port in use stops it before anything is written. With no
configuration file it serves the demo tenant, whose one-time codes are
written to the log, on ./data/customerd.db. SIGINT (Ctrl-C) or SIGTERM
lets the requests in flight finish (shutdownTimeout) before it exits; one
during start-up (a database that does not answer) stops it there, exit
status 1; a second one ends the process at once.`

func serveCommand(*flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, _ []string) error {
		cfg, err := e.config()
		if err != nil {
			return err
		}
		return serve(ctx, cfg, logger(cfg.Log, e.stderr))
	}
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// Every port before the migrations: one in use stops start-up before anything is written.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: %w (another customerd running? set addr or CUSTOMERD_ADDR; make run ADDR=:9090)", err)
	}
	defer ln.Close()
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metricsAddr: %w (set metricsAddr or CUSTOMERD_METRICS_ADDR)", err)
	}
	defer mln.Close()
	aln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("adminAddr: %w (set adminAddr or CUSTOMERD_ADMIN_ADDR)", err)
	}
	defer aln.Close()
	if cfg.PlainPublicURL() {
		log.Warn(config.PlainPublicURLWarning, "publicURL", cfg.PublicURL)
	}
	if cfg.Demo {
		log.Warn("demo mode: no configuration file, so the demo tenant serves with one-time codes written to the log; give --config FILE for real tenants")
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if !cfg.Demo {
		// The file's tenants, and a demo tenant an earlier run left in the
		// database: it writes its codes to the log as much as the file's.
		tenants, err := a.Served(ctx)
		if err != nil {
			return err
		}
		served := &config.Config{Tenants: tenants}
		for _, tenant := range served.TenantIDs() {
			for _, ch := range tenants[tenant].LogChannels() {
				log.Warn(sender.LogWarning, "tenant", tenant, "channel", string(ch))
			}
		}
		for _, tenant := range served.UnguardedSMS() {
			log.Warn(config.SMSPumpingWarning, "tenant", tenant)
		}
	}
	srv, msrv, asrv := a.HTTPServer(), a.MetricsServer(), a.AdminServer()
	// The janitor and the tenants' watch stop, and are waited for, before
	// the database closes (a.Close, deferred above, runs after this).
	janitorCtx, stopJanitor := context.WithCancel(context.Background())
	var background sync.WaitGroup
	defer func() { stopJanitor(); background.Wait() }()
	background.Go(func() { a.Janitor(janitorCtx, time.Hour) })
	// Tenants other replicas (or `customerd tenants apply`) change reach this one.
	background.Go(func() { a.Watch(janitorCtx) })
	// Deliveries stop with the signal; an event in flight is delivered again
	// after its lease, by this replica on restart or by another one.
	dctx, stopEvents := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go func() { a.Events.Run(dctx); close(dispatched) }()
	defer func() { stopEvents(); <-dispatched }()

	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- msrv.Serve(mln) }()
	go func() { errc <- asrv.Serve(aln) }()
	api := listenURL(ln.Addr())
	log.Info("customerd listening", "api", api, "docs", api+"/docs", "metrics", listenURL(mln.Addr())+"/metrics",
		"admin", listenURL(aln.Addr())+"/admin", "publicURL", cfg.PublicURL, "database", cfg.Database.Redacted(),
		"tenants", a.Tenants())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// All three at once: one after another, the admin and metrics listeners
	// took new requests for as long as the API drained.
	servers := []*http.Server{srv, msrv, asrv}
	errs := make([]error, len(servers))
	var shutdown sync.WaitGroup
	for i, hs := range servers {
		shutdown.Go(func() { errs[i] = hs.Shutdown(sctx) })
	}
	shutdown.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// listenURL is the address a person on this machine opens for a listener:
// localhost when it listens on every interface.
func listenURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

const migrateHelp = `
PostgreSQL: replicas take turns under an advisory lock, so any number may
run it at once. SQLite: it creates the database file, in a folder that must
exist. serve applies the migrations too.`

func migrateCommand(*flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, _ []string) error {
		cfg, err := e.config()
		if err != nil {
			return err
		}
		log := logger(cfg.Log, e.stderr)
		if path, ok := cfg.Database.SQLitePath(); ok {
			if _, err := os.Stat(filepath.Dir(path)); err != nil {
				return fmt.Errorf("database %s: its folder%s does not exist: create it, or run migrate where the service runs", cfg.Database.URL, fromWorkingDir(filepath.Dir(path)))
			}
		}
		s, err := store.Open(ctx, cfg.Database.URL, store.Options{Logger: log})
		if err != nil {
			return fmt.Errorf("database %s: %w", cfg.Database.Redacted(), err)
		}
		log.Info("database is up to date", "database", cfg.Database.Redacted())
		return s.Close()
	}
}

// openExisting opens the configured database for a command other than serve
// and migrate: it must exist, so that a command run in the wrong folder
// says so instead of creating an empty database there.
func openExisting(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	if err := requireDatabase(cfg); err != nil {
		return nil, err
	}
	s, err := store.Open(ctx, cfg.Database.URL, store.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Database.Redacted(), err)
	}
	return s, nil
}

// tenantRows reads which tenants the database holds.
type tenantRows interface {
	TenantVersions(ctx context.Context) (map[string]store.TenantStamp, error)
}

// tenantIDs are the tenants known, sorted: the configuration file's and the
// database's, where the admin API and tenants apply make them at runtime (a
// tenant deleted and created again included). rotate-key, which writes to
// the tenant, asks the database alone.
func tenantIDs(ctx context.Context, cfg *config.Config, s tenantRows) ([]string, error) {
	stored, err := s.TenantVersions(ctx)
	if err != nil {
		return nil, err
	}
	ids := slices.AppendSeq(cfg.TenantIDs(), maps.Keys(stored))
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func requireDatabase(cfg *config.Config) error {
	path, ok := cfg.Database.SQLitePath()
	if !ok {
		return nil // PostgreSQL databases are never created by customerd
	}
	if _, err := os.Stat(path); err != nil {
		where := "the file" + fromWorkingDir(path)
		if _, derr := os.Stat(filepath.Dir(path)); derr != nil {
			where = "its folder" + fromWorkingDir(filepath.Dir(path))
		}
		return fmt.Errorf("database %s: %s does not exist: run the command where the service runs, or set --config or CUSTOMERD_DATABASE_URL (serve and migrate create it)", cfg.Database.URL, where)
	}
	return nil
}

// fromWorkingDir is where a relative SQLite path leads from the working
// directory, which reads it (not the configuration file's folder): " /srv/data".
func fromWorkingDir(path string) string {
	if filepath.IsAbs(path) {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	return " " + abs
}

const rotateKeyHelp = `
The tenant's new key signs every token from now on. Tokens signed by the
previous keys stay valid until they expire, and the tenant's JWKS
(/api/TENANT/.well-known/jwks.json) lists every key meanwhile. Replicas pick
the new key up on their next signing-key read.

After a key has leaked, --retire-previous retires every previous key at
once: the tokens they signed (forged ones too) are refused from then on, on
every replica within a minute, and every shopper signs in again.`

func rotateKeyCommand(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	retire := fs.Bool("retire-previous", false, "also retire every previous key: the tokens they signed are refused (after a leak)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("want one tenant id, got %d arguments", len(args))
		}
		cfg, err := e.config()
		if err != nil {
			return err
		}
		tenant := args[0]
		if err := requireDatabase(cfg); err != nil {
			return err
		}
		log := logger(cfg.Log, e.stderr)
		a, err := app.New(ctx, cfg, log, app.ExistingSecret(), app.WithoutConfigTenants())
		if err != nil {
			return err
		}
		defer a.Close()
		// The file's tenants and those made at runtime alike.
		if _, err := a.Catalog.Get(ctx, tenant); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unknown tenant %q in the database (serve and tenants apply write the configuration's tenants there)", tenant)
		} else if err != nil {
			return err
		}
		kid, err := a.Tokens.Rotate(ctx, tenant)
		if err != nil {
			return err
		}
		if err := a.Audit(ctx, tenant, "tenant.rotate-key", kid); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(e.stdout, "tenant %s signs with the new key %s\n", tenant, kid); err != nil || !*retire {
			return err
		}
		n, err := a.Tokens.RetirePrevious(ctx, tenant, kid)
		if err != nil {
			return err
		}
		if err := a.Audit(ctx, tenant, "tenant.retire-keys", kid); err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "retired %d previous keys: the tokens they signed are refused\n", n)
		return err
	}
}
