// Command customerd serves the customer identity API.
//
//	customerd [--config FILE]                  serve (the default)
//	customerd migrate [--config FILE]          apply the database migrations and exit
//	customerd rotate-key TENANT [--config FILE] add a new signing key to a tenant
//	customerd events list [--failed] [--tenant T]   list customer events (JSON lines); --failed: the dead ones
//	customerd events replay [--tenant T] [ID...]    deliver dead events again (all of them without IDs)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "customerd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	sub := ""
	if cmd == "events" && len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("customerd "+cmd, flag.ContinueOnError)
	path := fs.String("config", os.Getenv("CUSTOMERD_CONFIG"), "YAML configuration file (CUSTOMERD_CONFIG)")
	var (
		failed *bool
		tenant *string
	)
	if cmd == "events" {
		failed = fs.Bool("failed", false, "events list: only the dead events")
		tenant = fs.String("tenant", "", "only this tenant's events")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log)
	case "migrate":
		s, err := store.Open(ctx, cfg.Database.URL, store.Options{Logger: log})
		if err != nil {
			return err
		}
		log.Info("database is up to date")
		return s.Close()
	case "rotate-key":
		if fs.NArg() != 1 {
			return errors.New("usage: customerd rotate-key TENANT")
		}
		tenant := fs.Arg(0)
		if _, ok := cfg.Tenants[tenant]; !ok {
			return fmt.Errorf("unknown tenant %q", tenant)
		}
		a, err := app.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		kid, err := a.Tokens.Rotate(ctx, tenant)
		if err != nil {
			return err
		}
		log.Info("signing key added", "tenant", tenant, "kid", kid)
		return nil
	case "events":
		return events(ctx, cfg, log, sub, *tenant, *failed, fs.Args(), os.Stdout)
	}
	return fmt.Errorf("unknown command %q, have [events migrate rotate-key serve]", cmd)
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("addr: %w", err)
	}
	srv := a.HTTPServer()
	janitorCtx, stopJanitor := context.WithCancel(context.Background())
	defer stopJanitor()
	go a.Janitor(janitorCtx, time.Hour)
	// Deliveries stop with the signal; an event in flight is delivered again
	// after its lease, by this replica on restart or by another one.
	dctx, stopEvents := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go func() { a.Events.Run(dctx); close(dispatched) }()
	defer func() { stopEvents(); <-dispatched }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("customerd listening", "addr", ln.Addr().String(), "database", redactURL(cfg.Database.URL), "tenants", cfg.TenantIDs())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// redactURL drops the password of a database URL for the log.
func redactURL(raw string) string {
	if u, err := urlParse(raw); err == nil {
		return u
	}
	return "(unparsable)"
}
