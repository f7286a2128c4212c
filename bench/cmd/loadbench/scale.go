package main

import (
	"context"
	"encoding/json"
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
	"github.com/customerd/customerd/store/storetest"
	"github.com/customerd/customerd/token"
)

// The scale scenario (-customers beyond apiCustomers): a second database
// holds -customers customers over -tenants tenants, with a day of their
// live data beside them (as many challenges, identities and delivered
// events), seeded directly. customerd on it and customerd on the main
// (500-customer) database take turns at the same four requests: GET
// customer, code verification, an anonymous POST for an existing account
// (202) and a returning Google sign-in, on random tenants and customers of
// the big one; each must stay within 10 % of its 500-customer figure.

// apiCustomers are the customers made through the API for the main
// scenarios; -customers beyond them are seeded, in the scale scenario.
const apiCustomers = 500

// scaleRateTarget: each request on the big database at ≥ 90% of its rate on the main one.
const scaleRateTarget = 0.90

// scalePair is one request measured on both databases.
type scalePair struct {
	key        string
	big, small result
}

// scaleReport is the scale scenario of one database.
type scaleReport struct {
	customers, tenants int
	created            time.Duration // the tenants, through the catalog
	seeding            time.Duration // the rest, directly
	size               int64
	pairs              []scalePair
}

func (r *scaleReport) checks() []check {
	var out []check
	for _, p := range r.pairs {
		out = append(out, ratio("scale "+p.key, p.big.name+" vs "+p.small.name, p.big, p.small, scaleRateTarget))
	}
	return out
}

func (r *scaleReport) print(w io.Writer, _ options) {
	fmt.Fprintf(w, "\n-- %d customers over %d tenants, with a day of their challenges, identities and delivered events\n\n",
		r.customers, r.tenants)
	fmt.Fprintf(w, "tenants written through the catalog in %s; the rest seeded directly in %s; the database takes %s\n\n",
		r.created.Round(100*time.Millisecond), r.seeding.Round(100*time.Millisecond), mib(uint64(r.size)))
	checks := r.checks()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\terrors\treq/s\tp50\tp99\treq/s vs 500 customers\tCPU/req server + db\t")
	for _, p := range r.pairs {
		for _, res := range []result{p.big, p.small} {
			vs := ""
			if res.name == p.big.name {
				vs = find(checks, "scale "+p.key).cell()
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", res.name, res.requests, res.errors, res.rps(), ms(res.p50), ms(res.p99),
				vs, cpuCell(res))
		}
	}
	_ = tw.Flush()
	for _, p := range r.pairs {
		for _, res := range []result{p.big, p.small} {
			if res.errors > 0 {
				fmt.Fprintf(w, "  %s: first error: %s\n", res.name, res.firstErr)
			}
			if res.ranOut {
				fmt.Fprintf(w, "  %s ran out of prepared requests after %s (its rate is over the time it ran)\n", res.name,
					res.elapsed.Round(time.Millisecond))
			}
		}
	}
}

// benchTenant is the settings document of a bench tenant: every setting its
// default, and the Google preset on the local issuer.
func benchTenant(iss *oidctest.Issuer) map[string]any {
	return map[string]any{"providers": map[string]any{
		"otp": map[string]any{"type": "otp"},
		"google": map[string]any{"type": "google", "clientIds": []any{googleAudience}, "issuer": iss.URL(), "jwksUrl": iss.JWKSURL(),
			"allowPrivateNetwork": true},
	}}
}

// openBenchApp opens the wired customerd on dbURL, in this process, as the
// measured one is configured (its secret and public URL): tenants written
// and tokens signed by it are the measured one's.
func openBenchApp(ctx context.Context, dbURL string) (*app.App, error) {
	env := map[string]string{"CUSTOMERD_DATABASE_URL": dbURL, "CUSTOMERD_SECRET": benchSecret, "CUSTOMERD_PUBLIC_URL": publicURL}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, slog.New(slog.DiscardHandler))
}

// scaleData is what the four requests send on the big database.
type scaleData struct {
	url      string
	seeding  storetest.Seeding
	sessions []session   // tokens of random seeded customers
	google   []tenantReq // ID tokens of random seeded identities
}

// tenantReq is a request body for a tenant.
type tenantReq struct {
	tenant string
	body   []byte
}

// seedScale makes the big database: the tenants through the catalog (as
// the tenants scenario writes them), then everything else directly.
func seedScale(ctx context.Context, o options, db *database, iss *oidctest.Issuer, rep *scaleReport) (*scaleData, error) {
	url, err := db.another()
	if err != nil {
		return nil, err
	}
	d := &scaleData{url: url, seeding: storetest.Seeding{Customers: o.customers, Provider: "google", Now: time.Now()}}
	for i := range o.tenants {
		d.seeding.Tenants = append(d.seeding.Tenants, tenantName(i))
	}
	progress("%s: writing %d tenants into a database of its own", db.name, o.tenants)
	began := time.Now()
	a, err := openBenchApp(ctx, url)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	if err := createTenants(ctx, a, o.tenants, benchTenant(iss)); err != nil {
		return nil, fmt.Errorf("create tenants: %w", err)
	}
	rep.created = time.Since(began)
	progress("%s: seeding %d customers and a day of their challenges, identities and events", db.name, o.customers)
	began = time.Now()
	if err := storetest.Seed(ctx, url, d.seeding); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	rep.seeding = time.Since(began)
	if rep.size, err = storetest.Size(ctx, url); err != nil {
		return nil, err
	}
	progress("%s: seeded in %s, %s; signing tokens and ID tokens of random customers", db.name, rep.seeding.Round(time.Second), mib(uint64(rep.size)))
	const sample = 2000
	life := time.Hour + 10*(o.warmup+o.duration)
	key := iss.Key("RS256")
	for range sample {
		c := d.seeding.Customer(rand.IntN(o.customers))
		tok, err := a.Tokens.Issue(ctx, c.Tenant, token.Claims{Subject: c.ID, Provider: "otp", AMR: []string{"otp", "email"}}, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		d.sessions = append(d.sessions, session{tenant: c.Tenant, token: tok})
		claims := iss.Claims(googleAudience, c.Subject)
		claims["iat"], claims["exp"], claims["azp"] = time.Now().Unix(), time.Now().Add(life).Unix(), googleAudience
		claims["email"], claims["email_verified"] = c.Email, true
		claims["given_name"], claims["family_name"] = "Seed", "Customer"
		d.google = append(d.google, tenantReq{tenant: c.Tenant, body: googleBody(key.Sign(claims))})
	}
	return d, nil
}

// googleOn sends a random one of reqs.
func googleOn(base string, reqs []tenantReq) makeRequest {
	return func(rng *rand.Rand) (*http.Request, bool) {
		r := reqs[rng.IntN(len(reqs))]
		return jsonPost(base+"/api/"+r.tenant+"/customer/authenticate?provider=google", "", r.body), true
	}
}

// anonymousExisting posts the email of an existing account without a
// token, each account once (a second time within the resend interval would
// be throttled): customerd answers 202 and sends the owner a code.
func anonymousExisting(base string, next *atomic.Int64, n int, nth func(i int) (tenant, email string)) makeRequest {
	return func(*rand.Rand) (*http.Request, bool) {
		i := int(next.Add(1)) - 1
		if i >= n {
			return nil, false
		}
		tenant, email := nth(i)
		b, _ := json.Marshal(map[string]string{"email": email})
		return jsonPost(base+"/api/"+tenant+"/customer", "", b), true
	}
}

// measureScale prepares both databases and measures the four requests in
// turns on the big one and on the main one: its customers' tokens, its
// Google shoppers, and for the anonymous POSTs the accounts its code
// verification made (verified, as the seeded ones are, their last code
// more than a minute old), which the main scenarios prepared.
// scaleProfiled are the -cpuprofile-scenario values of the scale scenario,
// by the key of the request they profile (on the big database).
var scaleProfiled = map[string]string{"scale-get": "GET", "scale-verify": "verify", "scale-post": "POST 202", "scale-google": "google"}

func measureScale(ctx context.Context, o options, db *database, bin, dir string, iss *oidctest.Issuer, d *scaleData,
	mainSessions []session, gp *googlePool, verified int, codesSent time.Time, codesN int, profile string) ([]scalePair, error) {
	codesN = min(codesN, 80000) // 40,000 ran out after 3 of 5 rounds
	progress("%s: preparing %d codes on each database", db.name, codesN)
	codes := newCodeBook()
	cd, err := startCustomerd(ctx, customerdOptions{bin: bin, dbURL: d.url, level: "info", dir: dir, codes: codes, issuer: iss})
	if err != nil {
		return nil, err
	}
	random := func(int) string { return tenantName(rand.IntN(o.tenants)) }
	bigCodes, err := prepareChallenges(ctx, cd.base, codes, codesN, random, "sverify")
	var eachCodes []prepared
	if err == nil {
		eachCodes, err = prepareChallenges(ctx, cd.base, codes, o.tenants, tenantName, "each")
	}
	cd.stop()
	if err != nil {
		return nil, err
	}
	cd, err = startCustomerd(ctx, customerdOptions{bin: bin, dbURL: db.customerdURL, level: "info", dir: dir, codes: codes, issuer: iss})
	if err != nil {
		return nil, err
	}
	mainCodes, err := prepareChallenges(ctx, cd.base, codes, codesN, demo, "mverify")
	cd.stop()
	if err != nil {
		return nil, err
	}

	progress("%s: starting customerd on each database at log level warn", db.name)
	bo := customerdOptions{bin: bin, dbURL: d.url, level: "warn", dir: dir, issuer: iss}
	profiledKey, scaleScenario := scaleProfiled[o.profiled]
	profiling := scaleScenario && profile != ""
	if profiling {
		// This binary around app.New, with its profile started and stopped
		// around the one request's turns.
		bo.bin, bo.profile = "", profile
		if bo.pprofAddr, err = freePort(); err != nil {
			return nil, err
		}
	}
	big, err := startCustomerd(ctx, bo)
	if err != nil {
		return nil, err
	}
	defer big.stop()
	// Its tenants in service, as the tenants scenario has them: a tenant's
	// first request builds it, which is not what this compares.
	if err := serveEveryTenant(ctx, big, o.tenants, eachCodes); err != nil {
		return nil, err
	}
	so := customerdOptions{bin: bin, dbURL: db.customerdURL, level: "warn", dir: dir, issuer: iss}
	if profiling {
		// The main database's customerd too, into PROFILE.small, to be
		// compared with the big one's.
		so.bin, so.profile = "", profile+".small"
		if so.pprofAddr, err = freePort(); err != nil {
			return nil, err
		}
	}
	small, err := startCustomerd(ctx, so)
	if err != nil {
		return nil, err
	}
	defer small.stop()

	type pair struct {
		key, name  string
		big, small makeRequest
	}
	pairs := []pair{
		{"GET", "GET customer", getCustomer(big.base, d.sessions), getCustomer(small.base, mainSessions)},
		{"verify", "code verification", verifyEach(big.base, bigCodes, new(atomic.Int64)), verifyEach(small.base, mainCodes, new(atomic.Int64))},
		{"POST 202", "anonymous POST, an existing account (202)",
			anonymousExisting(big.base, new(atomic.Int64), o.customers, func(i int) (string, string) {
				c := d.seeding.Customer(int(uint64(i) * 7919 % uint64(o.customers))) // spread over the tenants
				return c.Tenant, c.Email
			}),
			anonymousExisting(small.base, new(atomic.Int64), verified, func(i int) (string, string) {
				return tenantID, shopperEmail("verify", i)
			})},
	}
	if gp != nil {
		demoReqs := make([]tenantReq, len(gp.returning))
		for i, b := range gp.returning {
			demoReqs[i] = tenantReq{tenant: tenantID, body: b}
		}
		pairs = append(pairs, pair{"google", "google sign-in, returning", googleOn(big.base, d.google), googleOn(small.base, demoReqs)})
	}
	var out []scalePair
	for _, p := range pairs {
		if wait := time.Until(codesSent.Add(61 * time.Second)); p.key == "POST 202" && wait > 0 {
			// The verified accounts' last code must be a minute old, or they are throttled.
			progress("%s: waiting %s for the resend interval of the main database's accounts", db.name, wait.Round(time.Second))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		progress("%s: %s, %d customers and %d in turns", db.name, p.name, o.customers, apiCustomers)
		targets := []*target{
			{name: p.name + ", " + fmt.Sprint(o.customers) + " customers", srv: big, mk: p.big},
			{name: p.name + ", " + fmt.Sprint(apiCustomers) + " customers", srv: small, mk: p.small},
		}
		if profiling && p.key == profiledKey {
			failed := func(err error) { progress("%s: cpu profile: %v", db.name, err) }
			targets[0].start, targets[0].stop = profileSwitches(ctx, bo.pprofAddr, "", failed)
			targets[1].start, targets[1].stop = profileSwitches(ctx, so.pprofAddr, "", failed)
		}
		res := measure(ctx, o, targets, nil, nil)
		out = append(out, scalePair{key: p.key, big: res[0], small: res[1]})
	}
	return out, ctx.Err()
}
