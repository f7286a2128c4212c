package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/challenge"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/events"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/sender"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

// served is one tenant as this replica serves it: what the HTTP server and
// the webhook dispatcher read. It is built once per version of its settings
// and never changed after.
type served struct {
	tenant *tenant.Tenant
	hooks  events.Tenant
}

// builder opens live tenants from their settings.
type builder struct {
	registry *providers.Registry
	senders  *sender.Registry
	counter  sender.Counter
	log      *slog.Logger
	// demo: the demo set-up, whose one start-up line says where the demo
	// tenant's codes go.
	demo bool
}

// build judges tc (filled) by the configuration's rules, then opens its
// senders, providers and flows: the live tenant, or config.Problems naming
// every bad setting by its path in the file.
func (b *builder) build(id string, tc *config.Tenant) (*served, error) {
	ps := tc.Problems(id)
	hook := events.Tenant{MaxAge: tc.Webhooks.MaxAge, RetryBase: tc.Webhooks.RetryBase, RetryMax: tc.Webhooks.RetryMax}
	for _, ep := range tc.Webhooks.Endpoints {
		hook.Endpoints = append(hook.Endpoints, events.Endpoint{URL: ep.URL, Secret: ep.Secret, Types: ep.Events,
			AllowPrivateNetwork: ep.AllowPrivateNetwork})
	}
	t := &tenant.Tenant{
		ID: id, DefaultCountry: tc.DefaultCountry, DefaultLanguage: tc.DefaultLanguage, PhoneRegion: tc.PhoneRegion,
		Identifier: tc.Identifier, RequiredFields: tc.RequiredFields, TokenLifetime: tc.TokenLifetime,
		OTP: challenge.Limits{Lifetime: tc.OTP.CodeLifetime, MaxAttempts: tc.OTP.MaxAttempts,
			ResendInterval: tc.OTP.ResendInterval, MaxFailuresPerDay: tc.OTP.MaxFailuresPerDay},
		Senders:       map[sender.Channel]sender.Sender{},
		Providers:     map[string]providers.Provider{},
		Subscribed:    hook.Wants,
		CheckInPage:   tc.CheckInPage,
		CheckInPolicy: tc.CheckInPolicy,
	}
	if reg, err := flows.Build(tc.Flows, tc.FlowDefaults()); err == nil { // a bad flow is one of the problems
		t.Flows = reg
	}
	for _, ch := range slices.Sorted(maps.Keys(tc.Senders)) {
		if judged(ps, "tenants."+id+".senders."+string(ch)) {
			continue
		}
		snd, err := b.senders.Open(tc.Senders[ch], b.log)
		if err != nil {
			ps = append(ps, config.ProblemAt("tenants."+id+".senders."+string(ch), err))
			continue
		}
		t.Senders[ch] = tc.Senders[ch].Guard(snd, b.counter)
	}
	for _, name := range slices.Sorted(maps.Keys(tc.Providers)) {
		pc := tc.Providers[name]
		if pc.Type == "" {
			continue // one of the problems
		}
		p, err := b.registry.Open(name, pc.Type, pc.Settings, providers.Deps{Tenant: id, Logger: b.log})
		if err != nil {
			ps = append(ps, providerProblem(id, name, err))
			continue
		}
		t.Providers[name] = p
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &served{tenant: t, hooks: hook}, nil
}

// live builds tenant id for the replica to serve, and warns, as serve does
// at start-up about the file's tenants, about each channel whose codes it
// writes to the log: a tenant that tenants apply or another replica's admin
// API wrote is warned about on every replica, once for each version built.
func (b *builder) live(id string, tc *config.Tenant) (*served, error) {
	s, err := b.build(id, tc)
	if err != nil {
		return nil, err
	}
	if b.demo && id == config.DemoTenant {
		return s, nil
	}
	for _, ch := range tc.LogChannels() {
		b.log.Warn(sender.LogWarning, "tenant", id, "channel", string(ch))
	}
	return s, nil
}

// judged reports whether a problem of ps is at path or inside it.
func judged(ps config.Problems, path string) bool {
	return slices.ContainsFunc(ps, func(p config.Problem) bool {
		return p.Path == path || strings.HasPrefix(p.Path, path+".") || strings.HasPrefix(p.Path, path+"[")
	})
}

// applyConfig writes the configuration file's tenants to the database, as
// `customerd tenants apply` would. The demo set-up (no configuration file)
// applies its demo tenant only to a database without tenants.
func applyConfig(ctx context.Context, cfg *config.Config, cat *catalog.Catalog, live *catalog.Live[*served], audit Auditor, log *slog.Logger) error {
	if cfg.Demo && live.Len() > 0 {
		return nil
	}
	for _, id := range cfg.TenantIDs() {
		ch, err := cat.Apply(ctx, id, cfg.Tenants[id], false)
		var invalid *catalog.InvalidError
		if errors.As(err, &invalid) {
			return err // names the settings as the file does
		} else if err != nil {
			return fmt.Errorf("tenants.%s: %w", id, err)
		}
		if ch.Action != "none" {
			log.Info("tenant applied from the configuration", "tenant", id, "action", ch.Action, "settings", len(ch.Lines))
			// In the audit log as `customerd tenants apply` records it: a
			// start-up that undoes an admin API change leaves a trace (the
			// demo set-up's tenant, on an empty database, is no change).
			if !cfg.Demo {
				if err := AuditCLI(ctx, audit, id, auditAction(ch), id); err != nil {
					return err
				}
			}
			if err := live.Changed(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveTenants is the server's and the dispatcher's view of the live set.
type liveTenants struct{ live *catalog.Live[*served] }

func (l liveTenants) Tenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	t, err := l.live.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return t.tenant, nil
}

func (l liveTenants) hooks(ctx context.Context, id string) (events.Tenant, error) {
	t, err := l.live.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return events.Tenant{}, events.ErrTenantGone // dead: replayable once it is back
	}
	if err != nil {
		return events.Tenant{}, err
	}
	return t.hooks, nil
}

// auditAction is the audit log's action of an applied change.
func auditAction(ch *catalog.Change) string {
	if ch.Action == "update" {
		return "tenant.replace"
	}
	return "tenant.create"
}

// CLIKey is the audit log's key id of the command line: `customerd tenants
// apply`, `rotate-key`, `admin-key create` and `revoke`, and serve applying
// the configuration file's tenants.
const CLIKey = "cli"

// Auditor records audit log entries (the store).
type Auditor interface {
	AddAudit(context.Context, *store.AuditEntry) error
}

// AuditCLI records a change the command line made, once it is made (a
// command interrupted then still records it).
func AuditCLI(ctx context.Context, audit Auditor, tenant, action, target string) error {
	return audit.AddAudit(context.WithoutCancel(ctx), &store.AuditEntry{At: time.Now(), KeyID: CLIKey, TenantID: tenant,
		Action: action, Target: target})
}

// Audit records a change the command line made through a (see AuditCLI).
func (a *App) Audit(ctx context.Context, tenant, action, target string) error {
	return AuditCLI(ctx, a.audit, tenant, action, target)
}

// ApplyTenant makes tenant id's stored settings t's (see catalog.Apply),
// tells this process's live set, and records a change in the audit log as
// made by the command line.
func (a *App) ApplyTenant(ctx context.Context, id string, t *config.Tenant, dryRun bool) (*catalog.Change, error) {
	ch, err := a.Catalog.Apply(ctx, id, t, dryRun)
	if err != nil || dryRun || ch.Action == "none" {
		return ch, err
	}
	if err := a.Audit(ctx, id, auditAction(ch), id); err != nil {
		return nil, err
	}
	return ch, a.live.Changed(ctx, id)
}

// Served are the settings serve warns about: the configuration file's
// tenants, and the demo tenant when an earlier run without a configuration
// file left it in the database (it writes its codes to the log). The other
// tenants of the database are warned about as they are written (the admin
// API, tenants apply) and as a replica builds them; reading them all would
// cost start-up a read and an unsealing each.
func (a *App) Served(ctx context.Context) (map[string]*config.Tenant, error) {
	out := maps.Clone(a.Config.Tenants)
	if out == nil {
		out = map[string]*config.Tenant{}
	}
	if _, declared := out[config.DemoTenant]; declared {
		return out, nil
	}
	t, _, err := a.Catalog.Settings(ctx, config.DemoTenant)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return out, nil
	case err != nil:
		return nil, err
	}
	out[config.DemoTenant] = t
	return out, nil
}
