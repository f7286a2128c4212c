package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/customerd/customerd/config"
)

const configCheckHelp = `
Judges every setting as serve would at start-up, the providers' and senders'
included, and prints every problem with its path, its bad value (secrets
excepted) and where the value came from (FILE:LINE or the environment
variable). It opens no database and calls nothing on the network. Exit status
0 when the configuration is valid, 1 otherwise.`

// warnLogSenders says, for each channel whose codes tenant id's sender
// writes to the log, that they go there (config check, tenants apply).
func warnLogSenders(w io.Writer, id string, t *config.Tenant) {
	for _, ch := range t.LogChannels() {
		fmt.Fprintf(w, "warning: tenants.%s.senders.%s: type log writes one-time codes to the log; never in production\n", id, ch)
	}
}

func configCheckCommand(*flag.FlagSet) func(context.Context, *env, []string) error {
	return func(_ context.Context, e *env, _ []string) error {
		name := e.configPath
		if name == "" {
			name = "no configuration file"
		}
		cfg, err := e.config()
		var problems config.Problems
		if errors.As(err, &problems) {
			fmt.Fprintf(e.stdout, "%s: %d problem%s\n", name, len(problems), plural(len(problems)))
			for _, p := range problems {
				fmt.Fprintf(e.stdout, "  %s\n", p)
			}
			return errReported
		}
		if err != nil {
			return err
		}
		// Each setting the environment set over the file says so; the secret
		// says where it comes from, never what it is.
		from := func(path string) string {
			if v := cfg.Env[path]; v != "" {
				return " (" + v + ")"
			}
			return ""
		}
		secret := "generated once into secretFile " + cfg.SecretFile
		if cfg.Secret != "" {
			secret = "set" + from("secret")
		}
		fmt.Fprintf(e.stdout, "%s: valid\n  tenants   %d: %s\n  database  %s%s\n  api       %s%s (publicURL %s%s)\n  metrics   %s%s\n  admin     %s%s\n  secret    %s\n",
			name, len(cfg.Tenants), strings.Join(cfg.TenantIDs(), ", "), cfg.Database.Redacted(), from("database.url"),
			cfg.Addr, from("addr"), cfg.PublicURL, from("publicURL"), cfg.MetricsAddr, from("metricsAddr"),
			cfg.AdminAddr, from("adminAddr"), secret)
		if cfg.PlainPublicURL() {
			fmt.Fprintf(e.stdout, "warning: %s\n", config.PlainPublicURLWarning)
		}
		if cfg.Demo {
			fmt.Fprintln(e.stdout, "note: the demo set-up: one tenant, demo, whose one-time codes are written to the log")
			return nil
		}
		for _, id := range cfg.TenantIDs() {
			warnLogSenders(e.stdout, id, cfg.Tenants[id])
		}
		if cfg.Secret != "" && !config.VariedSecret(cfg.Secret) {
			fmt.Fprintf(e.stdout, "warning: %s\n", config.WeakSecretWarning)
		}
		for _, id := range cfg.UnguardedSMS() {
			fmt.Fprintf(e.stdout, "warning: tenants.%s.senders.sms: %s\n", id, config.SMSPumpingWarning)
		}
		return nil
	}
}
