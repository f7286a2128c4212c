package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/customerd/customerd/admin"
	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
)

const adminKeyCreateHelp = `
Prints the new key once, on a line of its own: customerd keeps only its
SHA-256, so store it where the callers of the admin API read it. A key with
--scope '*' manages every tenant (and sees the whole audit log); one with
--scope acme,shop manages these tenants only, and gets 403 for any other.
Calls carry it as 'Authorization: Bearer cdk_…' on adminAddr.`

func adminKeyCreateCommand(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	scope := fs.String("scope", "", "`'*'` for every tenant, or tenant ids separated by commas (required)")
	name := fs.String("name", "", "a `NAME` for the key in 'admin-key list' (who holds it)")
	return func(ctx context.Context, e *env, _ []string) error {
		if *scope == "" {
			return usagef("--scope is required: '*' or tenant ids separated by commas")
		}
		sc, err := admin.ParseScope(*scope)
		if err != nil {
			return usagef("%v", err)
		}
		keys, done, err := openKeys(ctx, e)
		if err != nil {
			return err
		}
		defer done()
		id, key, err := admin.CreateKey(ctx, keys, sc, *name, time.Now())
		if err != nil {
			return err
		}
		if err := app.AuditCLI(ctx, keys, "", "admin-key.create", id); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "admin key %s (scope %s) made; it is shown once:\n", id, *scope)
		if _, err := fmt.Fprintln(e.stdout, key); err != nil {
			return err
		}
		// A tenant named that is nowhere yet is likely a typo: said, not refused
		// (the key may be made before its tenant).
		cfg, err := e.config()
		if err != nil {
			return err
		}
		ids, err := tenantIDs(ctx, cfg, keys)
		if err != nil {
			return nil // the key is made; the notes are a courtesy
		}
		for _, t := range sc.Tenants {
			if !slices.Contains(ids, t) {
				fmt.Fprintf(e.stderr, "note: there is no tenant %q yet; the key manages it once it is created\n", t)
			}
		}
		return nil
	}
}

// keyLine is one admin key as `customerd admin-key list` prints it (JSON lines).
type keyLine struct {
	ID        string     `json:"id"`
	Name      string     `json:"name,omitempty"`
	Scope     any        `json:"scope"` // "*", or the tenant ids
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

const adminKeyListHelp = `
One JSON object a line, oldest key first: id (the part of the key after
cdk_ that names it), name, scope ('*' or a JSON array of tenant ids),
createdAt, and revokedAt for a revoked key. Never a key itself.`

func adminKeyListCommand(*flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, _ []string) error {
		keys, done, err := openKeys(ctx, e)
		if err != nil {
			return err
		}
		defer done()
		all, err := keys.AdminKeys(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(e.stdout)
		for _, k := range all {
			// A scope of tenants is listed as a JSON array, not as a string holding one.
			var scope any = k.Scope
			if sc, err := admin.StoredScope(k.Scope); err == nil && !sc.All {
				scope = sc.Tenants
			}
			if err := enc.Encode(keyLine{ID: k.ID, Name: k.Name, Scope: scope, CreatedAt: k.CreatedAt.UTC(), RevokedAt: k.RevokedAt}); err != nil {
				return err
			}
		}
		return nil
	}
}

const adminKeyRevokeHelp = `
The key answers 401 from its next call on, on every replica (keys are read
from the database at every call).`

func adminKeyRevokeCommand(*flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("want one key id (admin-key list shows them), got %d arguments", len(args))
		}
		keys, done, err := openKeys(ctx, e)
		if err != nil {
			return err
		}
		defer done()
		id := strings.TrimPrefix(args[0], "cdk_")
		if i := strings.IndexByte(id, '_'); i > 0 {
			id = id[:i] // a whole key names its id too
		}
		if err := keys.RevokeAdminKey(ctx, id, time.Now()); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no live admin key %q ('customerd admin-key list' lists them)", id)
		} else if err != nil {
			return err
		}
		if err := app.AuditCLI(ctx, keys, "", "admin-key.revoke", id); err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "admin key %s revoked\n", id)
		return err
	}
}

// keyStore keeps the admin keys and records who changed them.
type keyStore interface {
	admin.KeyStore
	app.Auditor
	tenantRows
}

// openKeys opens the configured database's admin keys.
func openKeys(ctx context.Context, e *env) (keyStore, func(), error) {
	cfg, err := e.config()
	if err != nil {
		return nil, nil, err
	}
	s, err := openExisting(ctx, cfg, logger(cfg.Log, e.stderr))
	if err != nil {
		return nil, nil, err
	}
	keys, ok := s.(keyStore)
	if !ok {
		_ = s.Close()
		return nil, nil, fmt.Errorf("database: %T keeps no admin keys", s)
	}
	return keys, func() { _ = s.Close() }, nil
}

const tenantsApplyHelp = `
FILE holds a tenants: block, as the configuration file does (a
configuration file itself will do: its other settings are left alone).
Each tenant is created when the database has none of that id, updated when
a setting differs, and left alone otherwise, so that applying the same file
twice changes nothing; tenants the file does not name are kept. It prints
what differs, tenant by tenant (a secret shows as (secret), a URL by its
scheme, host and path only, with "(query changed)" when only its query
changed); --dry-run prints it and writes nothing. A tenant whose one-time
codes go to the log (a log sender, or senders left out) is warned about on
stderr, as 'customerd config check' warns. A bad setting stops it before
anything is written, named as 'customerd config check' names it. Running
replicas serve the change within seconds (at once on PostgreSQL).`

const tenantsCheckHelp = `
Judges every tenant of the database by this version's rules, as a write
through the admin API or 'customerd tenants apply' would, and prints each
one that breaks a rule, with its settings' paths. A version may refuse a
setting an earlier one stored (an http checkInPage, SMTP without TLS to a
public relay, a flow's set of a read-only field): such a tenant no longer
loads, and every request to it answers 500, until its settings are
replaced. Run it after an upgrade's migrations. It writes nothing. Exit
status 0 when every tenant loads, 1 otherwise.`

func tenantsCheckCommand(*flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, _ []string) error {
		cfg, err := e.config()
		if err != nil {
			return err
		}
		if err := requireDatabase(cfg); err != nil {
			return err
		}
		a, err := app.New(ctx, cfg, logger(cfg.Log, e.stderr), app.ExistingSecret(), app.WithoutConfigTenants(), app.WithoutMigrating())
		if err != nil {
			return err
		}
		defer a.Close()
		rows, ok := a.Store.(tenantRows)
		if !ok {
			return fmt.Errorf("database: %T keeps no tenants", a.Store)
		}
		// Their ids alone: Judge reads each tenant whole, once.
		stamps, err := rows.TenantVersions(ctx)
		if err != nil {
			return err
		}
		bad := 0
		for _, id := range slices.Sorted(maps.Keys(stamps)) {
			err := a.Catalog.Judge(ctx, id)
			if err == nil {
				continue
			}
			bad++
			var problems config.Problems
			if !errors.As(err, &problems) {
				fmt.Fprintf(e.stdout, "%s: %v\n", id, err)
				continue
			}
			fmt.Fprintf(e.stdout, "%s: %d problem%s\n", id, len(problems), plural(len(problems)))
			for _, p := range problems {
				fmt.Fprintf(e.stdout, "  %s\n", p)
			}
		}
		fmt.Fprintf(e.stdout, "%d tenant%s checked, %d no longer loading\n", len(stamps), plural(len(stamps)), bad)
		if bad > 0 {
			return errReported
		}
		return nil
	}
}

func tenantsApplyCommand(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	file := fs.String("f", "", "the YAML `FILE` of the tenants to apply (required)")
	dryRun := fs.Bool("dry-run", false, "print what would change, write nothing")
	return func(ctx context.Context, e *env, _ []string) error {
		if *file == "" {
			return usagef("-f FILE is required")
		}
		tenants, err := config.LoadTenants(*file)
		if err != nil {
			return err
		}
		cfg, err := e.config()
		if err != nil {
			return err
		}
		if err := requireDatabase(cfg); err != nil {
			return err
		}
		opts := []app.Option{app.ExistingSecret(), app.WithoutConfigTenants()}
		if *dryRun {
			opts = append(opts, app.WithoutMigrating())
		}
		a, err := app.New(ctx, cfg, logger(cfg.Log, e.stderr), opts...)
		if err != nil {
			return err
		}
		defer a.Close()
		// Every tenant judged first: a bad one stops the command before anything is written.
		for _, id := range config.SortedIDs(tenants) {
			if _, err := a.ApplyTenant(ctx, id, tenants[id], true); err != nil {
				return err
			}
		}
		for _, id := range config.SortedIDs(tenants) {
			ch, err := a.ApplyTenant(ctx, id, tenants[id], *dryRun)
			if err != nil {
				return err
			}
			verb := map[string]string{"create": "created", "update": "updated", "none": "unchanged"}[ch.Action]
			if *dryRun && ch.Action != "none" {
				verb = "would be " + verb
			}
			fmt.Fprintf(e.stdout, "%s: %s\n", id, verb)
			for _, line := range ch.Lines {
				fmt.Fprintf(e.stdout, "  %s\n", line)
			}
			// As config check says it of the file's: a replica logs it only once it builds the tenant.
			warnLogSenders(e.stderr, id, tenants[id])
		}
		return nil
	}
}
