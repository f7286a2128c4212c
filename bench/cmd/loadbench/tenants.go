package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/customerd/customerd/app"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/providers/oidc/oidctest"
	"github.com/customerd/customerd/store"
)

// The tenants scenario: the database holds -tenants tenants besides demo.
// customerd must start within 2 s and idle under 100 MiB, and GET customer
// and code verification on a random tenant must stay within 10 % of the
// demo tenant's rate, measured in turns on the same process.
const (
	tenantsStartTarget = 2 * time.Second
	tenantsIdleTarget  = 100 << 20
	tenantsRateTarget  = 0.90
)

// tenantsReport is the tenants scenario of one database.
type tenantsReport struct {
	tenants   int
	created   time.Duration // writing them through the catalog
	startup   time.Duration // the measured customerd, from its start to /healthz
	idleRSS   uint64
	warm      time.Duration // serving every tenant once (its JWKS)
	warmRSS   uint64        // after it: every tenant built
	get, getD result        // on random tenants, and on demo
	ver, verD result
}

// tenantName is the ith bench tenant.
func tenantName(i int) string { return fmt.Sprintf("bench%05d", i) }

// createTenants writes n tenants (every setting its default) into the
// database through the catalog, as the admin API and `tenants apply` do, and
// gives each its signing key, as its first sign-in would: tenants in service.
func createTenants(ctx context.Context, dbURL string, n int) error {
	env := map[string]string{"CUSTOMERD_DATABASE_URL": dbURL, "CUSTOMERD_SECRET": benchSecret, "CUSTOMERD_PUBLIC_URL": publicURL}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	return parallel(ctx, n, 8, func(ctx context.Context, i int) error {
		_, err := a.Catalog.Create(ctx, tenantName(i), map[string]any{})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		_, err = a.Tokens.JWKS(ctx, tenantName(i))
		return err
	})
}

func measureTenants(ctx context.Context, o options, db *database, bin, dir string, demoSessions []session, codesN int,
	iss *oidctest.Issuer) (*tenantsReport, error) {
	rep := &tenantsReport{tenants: o.tenants}
	progress("%s: writing %d tenants into the database", db.name, o.tenants)
	began := time.Now()
	if err := createTenants(ctx, db.customerdURL, o.tenants); err != nil {
		return nil, fmt.Errorf("create tenants: %w", err)
	}
	rep.created = time.Since(began)
	random := func(int) string { return tenantName(rand.IntN(o.tenants)) }

	codesN = min(codesN, 40000)
	progress("%s: preparing %d customers on random tenants, and %d codes on random tenants and %d on demo", db.name, o.customers, codesN, codesN)
	codes := newCodeBook()
	cd, err := startCustomerd(ctx, customerdOptions{bin: bin, dbURL: db.customerdURL, level: "info", dir: dir, codes: codes, issuer: iss})
	if err != nil {
		return nil, err
	}
	sessions, err := prepareCustomers(ctx, cd.base, codes, o.customers, random)
	var chsRandom, chsDemo []prepared
	if err == nil && o.scenarios["verify"] {
		if chsRandom, err = prepareChallenges(ctx, cd.base, codes, codesN, random, "tverify"); err == nil {
			chsDemo, err = prepareChallenges(ctx, cd.base, codes, codesN, demo, "dverify")
		}
	}
	cd.stop()
	if err != nil {
		return nil, err
	}

	progress("%s: starting customerd at log level warn with %d tenants", db.name, o.tenants+1)
	if cd, err = startCustomerd(ctx, customerdOptions{bin: bin, dbURL: db.customerdURL, level: "warn", dir: dir, issuer: iss}); err != nil {
		return nil, err
	}
	defer cd.stop()
	rep.startup = cd.startup
	select { // idle: what the tenants cost at rest
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	rep.idleRSS = readRSS(cd.pid())
	// Every tenant served once, as in a service that has been running: each
	// is then built, and its keys read, in this process.
	began = time.Now()
	hc := &http.Client{Transport: newTransport(32), Timeout: 30 * time.Second}
	err = parallel(ctx, o.tenants, 32, func(ctx context.Context, i int) error {
		return call(ctx, hc, http.MethodGet, cd.base+"/api/"+tenantName(i)+"/.well-known/jwks.json", "", nil, http.StatusOK, nil)
	})
	hc.CloseIdleConnections()
	if err != nil {
		return nil, fmt.Errorf("serve every tenant once: %w", err)
	}
	rep.warm, rep.warmRSS = time.Since(began), readRSS(cd.pid())

	if o.scenarios["get"] {
		progress("%s: GET customer, a random tenant of %d and demo in turns", db.name, o.tenants)
		res := measure(ctx, o, []*target{
			{name: "GET customer, random tenant", srv: cd, mk: getCustomer(cd.base, sessions)},
			{name: "GET customer, demo", srv: cd, mk: getCustomer(cd.base, demoSessions)},
		}, nil, nil)
		rep.get, rep.getD = res[0], res[1]
	}
	if o.scenarios["verify"] {
		progress("%s: code verification, a random tenant of %d and demo in turns", db.name, o.tenants)
		var nextR, nextD atomic.Int64
		res := measure(ctx, o, []*target{
			{name: "code verification, random tenant", srv: cd, mk: verifyEach(cd.base, chsRandom, &nextR)},
			{name: "code verification, demo", srv: cd, mk: verifyEach(cd.base, chsDemo, &nextD)},
		}, nil, nil)
		rep.ver, rep.verD = res[0], res[1]
	}
	return rep, ctx.Err()
}

// print writes the tenants scenario's table; false when a target is missed.
func (r *tenantsReport) print(w io.Writer, o options) bool {
	fmt.Fprintf(w, "\n-- %d tenants in the database (written through the catalog in %s)\n\n", r.tenants, r.created.Round(100*time.Millisecond))
	ok := r.startup < tenantsStartTarget && r.idleRSS < tenantsIdleTarget
	fmt.Fprintf(w, "start-up (process start to /healthz): %s  < 2s %s\n", r.startup.Round(time.Millisecond), verdict(r.startup < tenantsStartTarget))
	fmt.Fprintf(w, "idle RSS after start-up: %s  < 100 MiB %s\n", mib(r.idleRSS), verdict(r.idleRSS < tenantsIdleTarget))
	fmt.Fprintf(w, "every tenant served once (its JWKS: each built, its keys read) in %s; RSS then %s\n\n",
		r.warm.Round(10*time.Millisecond), mib(r.warmRSS))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\terrors\treq/s\tp50\tp99\treq/s vs demo\t")
	pair := func(key string, random, demo result) {
		if !o.scenarios[key] {
			return
		}
		ratio := random.rps() / max(demo.rps(), 1e-9)
		ok = ok && ratio >= tenantsRateTarget
		for _, res := range []result{random, demo} {
			vs := ""
			if res.name == random.name {
				vs = fmt.Sprintf("%.1f%% ≥90%% %s", 100*ratio, verdict(ratio >= tenantsRateTarget))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n", res.name, res.requests, res.errors, res.rps(), ms(res.p50), ms(res.p99), vs)
		}
	}
	pair("get", r.get, r.getD)
	pair("verify", r.ver, r.verD)
	_ = tw.Flush()
	for _, res := range []result{r.get, r.getD, r.ver, r.verD} {
		if res.errors > 0 {
			fmt.Fprintf(w, "  %s: first error: %s\n", res.name, res.firstErr)
		}
		if res.ranOut {
			fmt.Fprintf(w, "  %s ran out of prepared codes after %s (its rate is over the time it ran)\n", res.name, res.elapsed.Round(time.Millisecond))
		}
	}
	return ok
}
