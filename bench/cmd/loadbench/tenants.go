package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/customerd/customerd/app"
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

// createTenants writes n tenants, each with settings doc, into a's
// database through the catalog, as the admin API and `tenants apply` do,
// and gives each its signing key, as its first sign-in would: tenants in
// service.
func createTenants(ctx context.Context, a *app.App, n int, doc map[string]any) error {
	return parallel(ctx, n, 8, func(ctx context.Context, i int) error {
		_, err := a.Catalog.Create(ctx, tenantName(i), doc)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		_, err = a.Tokens.JWKS(ctx, tenantName(i))
		return err
	})
}

// tenantsProfiled are the -cpuprofile-scenario values of the tenants
// scenario, by the scenario whose random-tenant turns they profile.
var tenantsProfiled = map[string]string{"tenants-get": "get", "tenants-verify": "verify"}

// measureTenants runs the tenants scenario on dbURL: its -tenants tenants
// are written first, unless created says how long that took already (the
// scale scenario's database). With profile, the random tenant's turns of
// the -cpuprofile-scenario are profiled into it.
func measureTenants(ctx context.Context, o options, db *database, dbURL, bin, dir string, demoSessions []session, codesN int,
	iss *oidctest.Issuer, created time.Duration, profile string) (*tenantsReport, error) {
	rep := &tenantsReport{tenants: o.tenants, created: created}
	if created == 0 {
		progress("%s: writing %d tenants into the database", db.name, o.tenants)
		began := time.Now()
		a, err := openBenchApp(ctx, dbURL)
		if err != nil {
			return nil, err
		}
		err = createTenants(ctx, a, o.tenants, benchTenant(iss))
		_ = a.Close()
		if err != nil {
			return nil, fmt.Errorf("create tenants: %w", err)
		}
		rep.created = time.Since(began)
	}
	random := func(int) string { return tenantName(rand.IntN(o.tenants)) }

	// As many codes as the main scenario: at 40,000 a side, SQLite's
	// verifications ran out after 5–6 s of their 10, and the two sides'
	// rates came from different turns.
	codesN = min(codesN, 100000)
	customers := min(o.customers, apiCustomers)
	progress("%s: preparing %d customers on random tenants, and %d codes on random tenants and %d on demo", db.name, customers, codesN, codesN)
	codes := newCodeBook()
	cd, err := startCustomerd(ctx, customerdOptions{bin: bin, dbURL: dbURL, level: "info", dir: dir, codes: codes, issuer: iss})
	if err != nil {
		return nil, err
	}
	sessions, err := prepareCustomers(ctx, cd.base, codes, customers, random)
	if err == nil && dbURL != db.customerdURL {
		// Demo's customers are the main database's: this one needs its own.
		demoSessions, err = prepareCustomers(ctx, cd.base, codes, customers, demo)
	}
	var chsRandom, chsDemo, chsEach []prepared
	if err == nil && o.scenarios["verify"] {
		if chsRandom, err = prepareChallenges(ctx, cd.base, codes, codesN, random, "tverify"); err == nil {
			if chsDemo, err = prepareChallenges(ctx, cd.base, codes, codesN, demo, "dverify"); err == nil {
				chsEach, err = prepareChallenges(ctx, cd.base, codes, o.tenants, tenantName, "each")
			}
		}
	}
	cd.stop()
	if err != nil {
		return nil, err
	}

	progress("%s: starting customerd at log level warn with %d tenants", db.name, o.tenants+1)
	mo := customerdOptions{bin: bin, dbURL: dbURL, level: "warn", dir: dir, issuer: iss}
	profiledScenario, profiling := tenantsProfiled[o.profiled]
	if profiling = profiling && profile != ""; profiling {
		// This binary around app.New, with its profile started and stopped
		// around the random tenant's turns.
		mo.bin, mo.profile = "", profile
		if mo.pprofAddr, err = freePort(); err != nil {
			return nil, err
		}
	}
	if cd, err = startCustomerd(ctx, mo); err != nil {
		return nil, err
	}
	// The profiled scenario's turns: the random tenant's into the profile,
	// demo's beside it (PROFILE.demo), to be compared.
	profiled := func(scenario string, random, demo *target) []*target {
		if profiling && scenario == profiledScenario {
			failed := func(err error) { progress("%s: cpu profile: %v", db.name, err) }
			random.start, random.stop = profileSwitches(ctx, mo.pprofAddr, "", failed)
			demo.start, demo.stop = profileSwitches(ctx, mo.pprofAddr, "demo", failed)
		}
		return []*target{random, demo}
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
	// is then built, its keys read and (with verify) one of its shoppers
	// signed in, in this process.
	began := time.Now()
	if err := serveEveryTenant(ctx, cd, o.tenants, chsEach); err != nil {
		return nil, err
	}
	rep.warm, rep.warmRSS = time.Since(began), readRSS(cd.pid())

	if o.scenarios["get"] {
		progress("%s: GET customer, a random tenant of %d and demo in turns", db.name, o.tenants)
		res := measure(ctx, o, profiled("get",
			&target{name: "GET customer, random tenant", srv: cd, mk: getCustomer(cd.base, sessions)},
			&target{name: "GET customer, demo", srv: cd, mk: getCustomer(cd.base, demoSessions)}), nil, nil)
		rep.get, rep.getD = res[0], res[1]
	}
	if o.scenarios["verify"] {
		progress("%s: code verification, a random tenant of %d and demo in turns", db.name, o.tenants)
		var nextR, nextD atomic.Int64
		res := measure(ctx, o, profiled("verify",
			&target{name: "code verification, random tenant", srv: cd, mk: verifyEach(cd.base, chsRandom, &nextR)},
			&target{name: "code verification, demo", srv: cd, mk: verifyEach(cd.base, chsDemo, &nextD)}), nil, nil)
		rep.ver, rep.verD = res[0], res[1]
	}
	return rep, ctx.Err()
}

// serveEveryTenant asks cd for every bench tenant's JWKS once, then
// verifies each code of each (one per tenant): each tenant is then built,
// its keys read and its signing key used, as in a service that has been
// running. A first signature with a key converts it for Go's ECDSA (about
// 25 µs, then cached by the key), which otherwise fell in the measured
// turns for the half of the tenants the warm-up had not reached.
func serveEveryTenant(ctx context.Context, cd *child, tenants int, each []prepared) error {
	hc := &http.Client{Transport: newTransport(32), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	err := parallel(ctx, tenants, 32, func(ctx context.Context, i int) error {
		return call(ctx, hc, http.MethodGet, cd.base+"/api/"+tenantName(i)+"/.well-known/jwks.json", "", nil, http.StatusOK, nil)
	})
	if err == nil {
		err = parallel(ctx, len(each), 32, func(ctx context.Context, i int) error {
			return call(ctx, hc, http.MethodPost, verifyURL(cd.base, each[i]), "", json.RawMessage(verifyBody(each[i])), http.StatusOK, nil)
		})
	}
	if err != nil {
		return fmt.Errorf("serve every tenant once: %w", err)
	}
	return nil
}

// checks are the tenants scenario's figures against their targets.
func (r *tenantsReport) checks(o options) []check {
	out := []check{
		{Key: "tenants start-up", Name: "start-up with the tenants (process start to /healthz)", Unit: "ms",
			Val: float64(r.startup) / float64(time.Millisecond), Target: "<2000ms", Met: r.startup < tenantsStartTarget},
		{Key: "tenants idle RSS", Name: "resident memory after start-up, idle", Unit: "MiB", Val: float64(r.idleRSS) / (1 << 20),
			Target: "<100 MiB", Met: r.idleRSS < tenantsIdleTarget},
	}
	if o.scenarios["get"] {
		out = append(out, ratio("tenants GET", "GET customer, random tenant vs demo", r.get, r.getD, tenantsRateTarget))
	}
	if o.scenarios["verify"] {
		out = append(out, ratio("tenants verify", "code verification, random tenant vs demo", r.ver, r.verD, tenantsRateTarget))
	}
	return out
}

// print writes the tenants scenario's table.
func (r *tenantsReport) print(w io.Writer, o options) {
	fmt.Fprintf(w, "\n-- %d tenants in the database (written through the catalog in %s)\n\n", r.tenants, r.created.Round(100*time.Millisecond))
	checks := r.checks(o)
	fmt.Fprintf(w, "start-up (process start to /healthz): %s\n", find(checks, "tenants start-up").cell())
	fmt.Fprintf(w, "idle RSS after start-up: %s\n", find(checks, "tenants idle RSS").cell())
	fmt.Fprintf(w, "every tenant served once (its JWKS: each built, its keys read; with verify, a code verified on each) in %s; RSS then %s\n\n",
		r.warm.Round(10*time.Millisecond), mib(r.warmRSS))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\terrors\treq/s\tp50\tp99\treq/s vs demo\t")
	pair := func(scenario, key string, random, demo result) {
		if !o.scenarios[scenario] {
			return
		}
		for _, res := range []result{random, demo} {
			vs := ""
			if res.name == random.name {
				vs = find(checks, key).cell()
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n", res.name, res.requests, res.errors, res.rps(), ms(res.p50), ms(res.p99), vs)
		}
	}
	pair("get", "tenants GET", r.get, r.getD)
	pair("verify", "tenants verify", r.ver, r.verD)
	_ = tw.Flush()
	for _, res := range []result{r.get, r.getD, r.ver, r.verD} {
		if res.errors > 0 {
			fmt.Fprintf(w, "  %s: first error: %s\n", res.name, res.firstErr)
		}
		if res.ranOut {
			fmt.Fprintf(w, "  %s ran out of prepared codes after %s (its rate is over the time it ran)\n", res.name, res.elapsed.Round(time.Millisecond))
		}
	}
}
