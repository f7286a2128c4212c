// Command loadbench is customerd's load benchmark (make bench).
//
// For SQLite, and for PostgreSQL when CUSTOMERD_TEST_POSTGRES_URL is set, it
// runs the real customerd (./cmd/customerd, built into a temporary folder) as
// a child process on a loopback port, prepares customers, tokens and one-time
// codes through the public API (codes read from the log sender's lines on
// customerd's stderr), and drives four scenarios with 64 concurrent clients:
// GET customer, code verification, Google-preset sign-in (RS256 ID tokens of
// a local oidctest issuer, its JWKS cached by customerd) and POST update. It
// drives two floor servers built from the same libraries (Echo, jwx, GORM on
// the same kind of database, opened the same way) with the same clients, and
// prints customerd's figures against theirs, with customerd's peak resident
// memory.
//
//	go run ./bench/cmd/loadbench -duration 10s
//
// Everything stays on 127.0.0.1 and every loop ends by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/customerd/customerd/bench/procstat"
	"github.com/customerd/customerd/providers/oidc/oidctest"
)

type options struct {
	duration      time.Duration
	warmup        time.Duration
	clients       int
	customers     int
	challenges    int
	maxChallenges int
	floorCodes    int
	rounds        int
	only          string
	bin           string
	cpuprofile    string
	profiled      string
	failOnMiss    bool
	googleReturn  int
	googleFirst   int
	tenants       int
	scenarios     map[string]bool // the scenarios to run
}

// allScenarios are the scenarios, in the order they run.
var allScenarios = []string{"get", "verify", "google", "update", "tenants", "scale"}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each scenario")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each scenario (0 for none)")
	flag.IntVar(&o.clients, "clients", 64, "concurrent clients")
	flag.IntVar(&o.customers, "customers", apiCustomers,
		"customers: up to 500 created (and signed in) through the API for the main scenarios; beyond, the scale scenario seeds that many directly into a database of their own")
	flag.IntVar(&o.challenges, "challenges", 0, "codes prepared for code verification (0: sized from the authenticate floor's rate)")
	flag.IntVar(&o.maxChallenges, "max-challenges", 120000, "upper bound of the automatic -challenges")
	flag.IntVar(&o.floorCodes, "floor-codes", 5000, "challenge rows seeded for the authenticate floor")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds each comparison is cut in (customerd and its floor take turns; at most one a second)")
	flag.StringVar(&o.only, "db", "", "run one database only: sqlite or postgres")
	flag.StringVar(&o.bin, "customerd", "", "customerd binary to run (default: go build ./cmd/customerd)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "",
		"write a CPU profile of customerd during one scenario (-cpuprofile-scenario) to `FILE` (FILE.DB with several databases); "+
			"customerd then runs as this binary around app.New (as cmd/customerd does), profiled with runtime/pprof")
	flag.StringVar(&o.profiled, "cpuprofile-scenario", "get",
		"scenario -cpuprofile covers: get, verify, google or update; tenants-get or tenants-verify for the tenants scenario's random tenant; scale-get, scale-verify, scale-post or scale-google for the customerd on the scale scenario's big database")
	flag.IntVar(&o.googleReturn, "google-returning", 2000, "returning shoppers of the google scenario (signed in once during preparation)")
	flag.IntVar(&o.googleFirst, "google-first", 0, "first sign-ins prepared for the google scenario (0: sized like -challenges, a fifth of them)")
	flag.BoolVar(&o.failOnMiss, "fail-on-miss", false, "exit 1 when customerd misses a target")
	flag.IntVar(&sqliteMmapMiB, "sqlite-mmap-mib", 0, "customerd's database.sqliteMmapMiB (SQLite: how much of the database file each connection maps; 0 none)")
	flag.IntVar(&maxOpenConns, "max-open-conns", 0, "customerd's database.maxOpenConns (SQLite's readers, PostgreSQL's pool; 0 the default)")
	flag.IntVar(&memoryLimitMiB, "memory-limit-mib", 0, "customerd's memoryLimitMiB (the Go runtime's soft memory limit; 0 none)")
	flag.IntVar(&o.tenants, "tenants", 10000, "tenants written into the database for the tenants scenario (and the scale scenario's customers spread over)")
	scenarios := flag.String("scenarios", strings.Join(allScenarios, ","),
		"comma-separated scenarios to run: get, verify, google, update, tenants, scale (the tenants scenario measures get and verify when they run; "+
			"the scale scenario runs with -customers beyond 500, and runs verify and google too)")
	role := flag.String("role", "", "internal: svc (customerd for -cpuprofile), floor-get or floor-auth")
	pprofAddr := flag.String("pprof-addr", "", "internal: profile control address of -role svc")
	pprofFile := flag.String("pprof-file", "", "internal: CPU profile file of -role svc")
	floorDBURL := flag.String("floor-db", "", "internal: database of a floor")
	floorSecretsFile := flag.String("floor-secrets", "", "internal: keys of a floor")
	flag.Parse()

	o.scenarios = map[string]bool{}
	for _, sc := range strings.Split(*scenarios, ",") {
		o.scenarios[strings.TrimSpace(sc)] = true
	}
	if o.scale() && (!o.scenarios["verify"] || !o.scenarios["google"]) {
		// Its 500-customer side is what they prepare: the accounts code
		// verification makes (anonymous POSTs), the Google shoppers.
		fmt.Fprintln(os.Stderr, "loadbench: the scale scenario runs verify and google too")
		o.scenarios["verify"], o.scenarios["google"] = true, true
	}
	var err error
	switch *role {
	case "":
		err = run(o)
	case "svc":
		err = runCustomerdRole(*pprofAddr, *pprofFile)
	case "floor-get", "floor-auth":
		err = serveFloor(*role, *floorDBURL, *floorSecretsFile)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

var errMissed = errors.New("a target was missed")

func run(o options) error {
	if o.duration <= 0 || o.clients < 1 || o.customers < 1 || o.floorCodes < 1 || o.googleReturn < 1 || o.googleFirst < 0 || o.tenants < 1 {
		return errors.New("-duration, -clients, -customers, -floor-codes, -google-returning and -tenants must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var kinds []string
	if o.only == "" || o.only == "sqlite" {
		kinds = append(kinds, "sqlite")
	}
	if pg := os.Getenv(postgresEnv); (o.only == "" || o.only == "postgres") && pg != "" {
		kinds = append(kinds, "postgres")
	} else if o.only == "postgres" {
		return errors.New(postgresEnv + " is not set")
	}
	_, scale := scaleProfiled[o.profiled]
	_, tenants := tenantsProfiled[o.profiled]
	if !scale && !tenants && !slices.Contains([]string{"get", "verify", "google", "update"}, o.profiled) {
		return fmt.Errorf("-cpuprofile-scenario %q: want get, verify, google, update, tenants-get, tenants-verify, "+
			"or with -customers beyond 500 scale-get, scale-verify, scale-post or scale-google", o.profiled)
	}
	for sc := range o.scenarios {
		if !slices.Contains(allScenarios, sc) {
			return fmt.Errorf("-scenarios: %q is not one of %s", sc, strings.Join(allScenarios, ", "))
		}
	}
	if len(kinds) == 0 {
		return fmt.Errorf("-db %q: want sqlite or postgres", o.only)
	}

	bin := o.bin
	if bin == "" {
		progress("building ./cmd/customerd")
		if bin, err = buildCustomerd(ctx, dir); err != nil {
			return err
		}
	}
	// The local OpenID Connect issuer of the google scenario: an httptest
	// server on 127.0.0.1 in this process, counting its JWKS fetches.
	iss, err := oidctest.Start()
	if err != nil {
		return err
	}
	defer iss.Server.Close()
	started := time.Now()
	var reps []*report
	for _, kind := range kinds {
		var db *database
		if kind == "sqlite" {
			db, err = newSQLite(dir)
		} else {
			db, err = newPostgres(ctx, os.Getenv(postgresEnv))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		rep, err := runDatabase(ctx, o, db, bin, dir, len(kinds) > 1, iss)
		db.cleanup()
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		rep.print(os.Stdout, o)
		reps = append(reps, rep)
	}
	summary, met := closing(reps, o)
	path, err := writeResults(reps, o, started, summary, met)
	if err != nil {
		return fmt.Errorf("write the results: %w", err)
	}
	fmt.Printf("\nresults: %s\n%s\n", path, summary)
	if !met && o.failOnMiss {
		return errMissed
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// report is one database's run.
type report struct {
	db                  string
	getFloor, authFloor result
	get, verify, update result
	google, googleFloor result
	// the google scenario's mix: requests sent (warm-up included), of which
	// first sign-ins, out of the prepared pools
	googleSent, googleSentFirst  int64
	googleReturning, googleFirst int
	// JWKS fetches: by the preparing customerd, by the measured one before
	// the measured run (the warm-up's first request), and during it
	jwksPrep, jwksWarm, jwksMeasured int32
	prepared, prepRSS                uint64
	consumed                         uint64
	prepTime                         time.Duration
	measuredRSS                      uint64
	startup                          time.Duration // of the measured customerd, one tenant
	tenants                          *tenantsReport
	scale                            *scaleReport
	selfRun                          bool
	profile                          string
}

// target is one server a scenario loads, with its clients' shared transport.
type target struct {
	name    string
	srv     *child
	mk      makeRequest
	hc      *http.Client
	samples []sample
	done    bool // ran out of prepared requests
	// start and stop, when set, bracket each of its measured slices (a CPU
	// profile of this target alone).
	start, stop func()
}

// measure loads the targets in turns: each gets a warm-up, then the measured
// duration is cut in rounds and every round gives each target an equal
// slice, in alternating order, so that a slow minute of a shared machine
// weighs on customerd and its floor alike. start and stop bracket the
// measured part; a target's own start and stop bracket each of its slices.
func measure(ctx context.Context, o options, targets []*target, start, stop func()) []result {
	for _, t := range targets {
		tr := newTransport(o.clients)
		defer tr.CloseIdleConnections()
		t.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	if o.warmup > 0 {
		for _, t := range targets {
			progress("  %s: warm-up %s", t.name, o.warmup)
			if s := drive(ctx, t.hc, o.clients, o.warmup, t.mk); s.ranOut {
				t.done = true
			}
		}
	}
	rounds := max(min(o.rounds, int(o.duration/time.Second)), 1)
	slice := o.duration / time.Duration(rounds)
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
		t.srv.rss.startWindow()
	}
	progress("  %s: %s each, in %d rounds", strings.Join(names, " / "), o.duration, rounds)
	if start != nil {
		start()
	}
	before := snapshotCPU()
	for r := range rounds {
		for i := range targets {
			t := targets[i]
			if r%2 == 1 {
				t = targets[len(targets)-1-i]
			}
			if t.done || ctx.Err() != nil {
				continue
			}
			if t.start != nil {
				t.start()
			}
			cpu0, db0 := procstat.Read([]int{t.srv.pid()}), procstat.Read(postgresPIDs())
			s := drive(ctx, t.hc, o.clients, slice, t.mk)
			s.cpu, s.db = procstat.Read([]int{t.srv.pid()}).Since(cpu0), procstat.Read(postgresPIDs()).Since(db0)
			if t.stop != nil {
				t.stop()
			}
			if s.elapsed > 0 {
				progress("    round %d, %s: %.0f req/s", r+1, t.name, float64(s.requests)/s.elapsed.Seconds())
			}
			t.samples = append(t.samples, s)
			t.done = s.ranOut
		}
	}
	foreign := foreignShare(before, snapshotCPU())
	if stop != nil {
		stop()
	}
	out := make([]result, len(targets))
	for i, t := range targets {
		out[i] = summarize(t.name, t.samples)
		out[i].foreign = foreign
		out[i].ranOut = t.done
		out[i].rss = t.srv.rss.endWindow()
		select {
		case <-t.srv.done:
			how := fmt.Sprint(t.srv.err)
			if t.srv.err == nil {
				how = "exit status 0: something outside the bench stopped it (SIGTERM or SIGINT)"
			}
			out[i].exited = fmt.Sprintf("%s exited during the scenario (%s); the figures are void", t.srv.name, how)
		default:
		}
	}
	return out
}

func runDatabase(ctx context.Context, o options, db *database, bin, dir string, several bool, iss *oidctest.Issuer) (*report, error) {
	rep := &report{db: db.name}
	otherPGBackends = db.otherBackends
	defer func() { otherPGBackends = nil }()
	dbDir := filepath.Join(dir, db.name+"-files")
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return nil, err
	}

	// 1. The floors, on a database of their own.
	progress("%s: seeding the floor database", db.name)
	fd, err := seedFloor(ctx, db.floorURL, dbDir, min(o.customers, apiCustomers), o.floorCodes)
	if err != nil {
		return nil, err
	}
	fg, err := startFloor(ctx, "floor-get", db.floorURL, fd.secretsFile)
	if err != nil {
		return nil, err
	}
	defer fg.stop()
	fa, err := startFloor(ctx, "floor-auth", db.floorURL, fd.secretsFile)
	if err != nil {
		return nil, err
	}
	defer fa.stop()

	// 2. Customers, tokens and codes, through customerd's API, with the log
	// sender's lines at log level info (access log included).
	n := o.challenges
	if !o.scenarios["verify"] {
		n = 0 // no codes to prepare
	} else if n <= 0 {
		// Enough for customerd at one and a half times the authenticate
		// floor's rate, warm-up included; should it go faster still, it stops
		// early and says so (its rate stays right: it is measured over the
		// time it ran).
		progress("%s: sizing the codes to prepare on the authenticate floor (2s)", db.name)
		tr := newTransport(o.clients)
		s := drive(ctx, &http.Client{Transport: tr, Timeout: 30 * time.Second}, o.clients, 2*time.Second, verifyAny(fa.base, fd.challenges))
		tr.CloseIdleConnections()
		rate := float64(s.requests-s.errors) / s.elapsed.Seconds()
		n = int(1.5*rate*(o.warmup+o.duration).Seconds()) + o.clients
		n = min(max(n, 1000), o.maxChallenges)
	}
	progress("%s: preparing %d customers and their tokens, and %d one-time codes, through customerd", db.name, min(o.customers, apiCustomers), n)
	codes := newCodeBook()
	prepStart := time.Now()
	jwks0 := iss.Fetches.Load()
	cd, err := startCustomerd(ctx, customerdOptions{bin: bin, dbURL: db.customerdURL, level: "info", dir: dbDir, codes: codes, issuer: iss})
	if err != nil {
		return nil, err
	}
	tokens, err := prepareCustomers(ctx, cd.base, codes, min(o.customers, apiCustomers), demo)
	if err != nil {
		cd.stop()
		return nil, err
	}
	chs, err := prepareChallenges(ctx, cd.base, codes, n, demo, "verify")
	if err != nil {
		cd.stop()
		return nil, err
	}
	codesSent := time.Now()
	firstN := o.googleFirst
	if !o.scenarios["google"] {
		firstN = -1
	} else if firstN == 0 {
		// One request in googleFirstEvery is a first sign-in: a fifth of the
		// codes covers twice the authenticate floor's rate.
		firstN = min(max(n/5, 1000), 10000)
	}
	var gp *googlePool
	if firstN >= 0 {
		progress("%s: signing %d + %d RS256 ID tokens and signing the %d returning shoppers in once", db.name, o.googleReturn, firstN, o.googleReturn)
		// Valid for Google's hour, and longer when the run is.
		life := time.Hour + 10*(o.warmup+o.duration)
		gp, err = prepareGoogle(ctx, cd.base, iss, o.googleReturn, firstN, life)
		if err != nil {
			cd.stop()
			return nil, err
		}
		rep.googleReturning, rep.googleFirst = len(gp.returning), len(gp.first)
	}
	cd.stop()
	rep.jwksPrep = iss.Fetches.Load() - jwks0
	rep.prepared, rep.prepRSS, rep.prepTime = uint64(n), cd.rss.overall.Load(), time.Since(prepStart)

	// 3. customerd measured: a fresh process at log level warn on the same database.
	mo := customerdOptions{bin: bin, dbURL: db.customerdURL, level: "warn", dir: dbDir, issuer: iss}
	if o.cpuprofile != "" {
		mo.profile = o.cpuprofile
		if several {
			mo.profile += "." + db.name
		}
		if mo.pprofAddr, err = freePort(); err != nil {
			return nil, err
		}
		mo.bin = ""
		rep.selfRun, rep.profile = true, mo.profile
	}
	progress("%s: starting customerd at log level warn", db.name)
	jwks0 = iss.Fetches.Load()
	cd, err = startCustomerd(ctx, mo)
	if err != nil {
		return nil, err
	}
	defer cd.stop()
	var startProfile, stopProfile func()
	if mo.profile != "" {
		startProfile, stopProfile = profileSwitches(ctx, mo.pprofAddr, "", func(err error) {
			progress("%s: cpu profile: %v", db.name, err)
			rep.profile = ""
		})
	}
	profiled := func(scenario string) (func(), func()) {
		if o.profiled == scenario {
			return startProfile, stopProfile
		}
		return nil, nil
	}
	if o.scenarios["get"] {
		progress("%s: GET customer", db.name)
		start, stop := profiled("get")
		res := measure(ctx, o, []*target{
			{name: "GET customer", srv: cd, mk: getCustomer(cd.base, tokens), start: start, stop: stop},
			{name: "GET floor", srv: fg, mk: getCustomer(fg.base, onDemo(fd.tokens))},
		}, nil, nil)
		rep.get, rep.getFloor = res[0], res[1]
	}
	if o.scenarios["verify"] {
		progress("%s: code verification", db.name)
		start, stop := profiled("verify")
		var next atomic.Int64
		res := measure(ctx, o, []*target{
			{name: "code verification", srv: cd, mk: verifyEach(cd.base, chs, &next), start: start, stop: stop},
			{name: "authenticate floor", srv: fa, mk: verifyAny(fa.base, fd.challenges)},
		}, nil, nil)
		rep.verify, rep.authFloor = res[0], res[1]
		rep.consumed = uint64(min(next.Load(), int64(len(chs))))
	}
	if o.scenarios["google"] {
		measureGoogle(ctx, o, rep, cd, fa, fd, gp, iss, jwks0, profiled)
	}
	if o.scenarios["update"] {
		progress("%s: POST update", db.name)
		start, stop := profiled("update")
		res := measure(ctx, o, []*target{{name: "POST update", srv: cd, mk: updateCustomer(cd.base, tokens), start: start, stop: stop}}, nil, nil)
		rep.update = res[0]
	}
	rep.measuredRSS = cd.rss.overall.Load()
	rep.startup = cd.startup
	cd.stop()
	// The tenants scenario runs on the main database, or with the scale
	// scenario on its big one, whose tenants that writes.
	tenantsURL, created := db.customerdURL, time.Duration(0)
	var sd *scaleData
	if o.scale() && ctx.Err() == nil {
		rep.scale = &scaleReport{customers: o.customers, tenants: o.tenants}
		if sd, err = seedScale(ctx, o, db, iss, rep.scale); err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		tenantsURL, created = sd.url, rep.scale.created
	}
	if o.scenarios["tenants"] && ctx.Err() == nil {
		if rep.tenants, err = measureTenants(ctx, o, db, tenantsURL, bin, dbDir, tokens, n, iss, created, rep.profile); err != nil {
			return nil, fmt.Errorf("tenants: %w", err)
		}
	}
	if sd != nil && ctx.Err() == nil {
		if rep.scale.pairs, err = measureScale(ctx, o, db, bin, dbDir, iss, sd, tokens, gp, int(rep.consumed), codesSent, max(n, 1000), rep.profile); err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
	}
	return rep, ctx.Err()
}

// scale reports whether the scale scenario runs: -customers beyond those
// the API prepares.
func (o options) scale() bool { return o.scenarios["scale"] && o.customers > apiCustomers }

// measureGoogle runs the google scenario against the authenticate floor.
func measureGoogle(ctx context.Context, o options, rep *report, cd, fa *child, fd *floorData, gp *googlePool,
	iss *oidctest.Issuer, jwks0 int32, profiled func(string) (func(), func())) {
	progress("%s: google sign-in, cached JWKS", rep.db)
	start, stop := profiled("google")
	var jwksStart int32
	res := measure(ctx, o, []*target{
		{name: "google sign-in", srv: cd, mk: googleSignIn(cd.base, gp), start: start, stop: stop},
		{name: "authenticate floor", srv: fa, mk: verifyAny(fa.base, fd.challenges)},
	}, func() {
		jwksStart = iss.Fetches.Load()
	}, func() {
		rep.jwksWarm, rep.jwksMeasured = jwksStart-jwks0, iss.Fetches.Load()-jwksStart
	})
	rep.google, rep.googleFloor = res[0], res[1]
	rep.googleSent, rep.googleSentFirst = gp.sent.Load(), gp.sentFirst.Load()
}

// profileSwitches start and stop the CPU profile of the customerd whose
// profile control listens on addr, into its file or, with a name, beside it
// (FILE.name); failed hears what went wrong.
func profileSwitches(ctx context.Context, addr, name string, failed func(error)) (start, stop func()) {
	control := func(what string) func() {
		if name != "" {
			what += "?name=" + url.QueryEscape(name)
		}
		return func() {
			if err := profileControl(ctx, addr, what); err != nil {
				failed(err)
			}
		}
	}
	return control("start"), control("stop")
}

// profileControl starts or stops the CPU profile of a -role svc child.
func profileControl(ctx context.Context, addr, what string) error {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/"+what, nil)
	if err != nil {
		return err
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("%s: %d %s", what, res.StatusCode, b)
	}
	return nil
}

func noisy(shares ...float64) string {
	for _, s := range shares {
		if s >= 0.05 {
			return ": the machine was busy with other work, the figures are unreliable — run again on a quiet machine"
		}
	}
	return ""
}

// cpuCell is the CPU time per answered request of the server, and of PostgreSQL when it served it.
func cpuCell(r result) string {
	us := func(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + "µs" }
	if r.db == 0 {
		return us(r.cpu)
	}
	return us(r.cpu) + " + " + us(r.db)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
func mib(b uint64) string       { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// void reports whether a server was stopped from outside during the run.
func (r *report) void() bool {
	for _, res := range r.results() {
		if res.exited != "" {
			return true
		}
	}
	return false
}

// print writes the tables of one database.
func (r *report) print(w io.Writer, o options) {
	server := "customerd: ./cmd/customerd as a child process"
	if r.selfRun {
		server = "customerd: this binary around app.New as a child process (for -cpuprofile)"
	}
	fmt.Fprintf(w, "\n== %s — %d CPUs, %d clients, %s per scenario after %s of warm-up, %d customers\n",
		r.db, runtime.NumCPU(), o.clients, o.duration, o.warmup, min(o.customers, apiCustomers))
	fmt.Fprintf(w, "%s, log level warn; floors: this binary as child processes.\n", server)
	fmt.Fprintf(w, "customerd and its floor take turns, %d rounds each (-rounds).\n", max(min(o.rounds, int(o.duration/time.Second)), 1))
	fmt.Fprintf(w, "The load generator runs in the bench process and shares the CPUs with the server under test.\n\n")

	ran := o.scenarios
	checks := r.checks(o)
	rss := find(checks, "RSS")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\terrors\treq/s\tp50\tp99\treq/s vs floor\tp99 vs floor\tserver max RSS\tCPU/req server + db\t")
	row := func(res result, vsRPS, vsP99 string) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", res.name, res.requests, res.errors, res.rps(),
			ms(res.p50), ms(res.p99), vsRPS, vsP99, mib(res.rss), cpuCell(res))
	}
	if ran["get"] {
		row(r.get, find(checks, "GET").cell(), find(checks, "GET p99").cell())
		row(r.getFloor, "", "")
	}
	if ran["verify"] {
		row(r.verify, find(checks, "verify").cell(), find(checks, "verify p99").cell())
		row(r.authFloor, "", "")
	}
	if ran["google"] {
		row(r.google, find(checks, "google").cell(), find(checks, "google p99").cell())
		floor := r.googleFloor
		floor.name += " (in turn with google)"
		row(floor, "", "")
	}
	if ran["update"] {
		update := r.update
		update.name += " (no floor)"
		row(update, "", "")
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\ncustomerd max RSS over the measured run: %s.\n", rss.cell())
	if r.void() {
		fmt.Fprintln(w, "VOID: a server was stopped during the run (see notes).")
	}
	fmt.Fprintf(w, "customerd with one tenant started (process start to /healthz) in %s.\n", r.startup.Round(time.Millisecond))
	if r.tenants != nil {
		r.tenants.print(w, o)
	}
	if r.scale != nil {
		r.scale.print(w, o)
	}

	fmt.Fprintln(w, "\nnotes")
	if ran["verify"] {
		r.printVerifyNote(w)
	}
	if ran["google"] {
		r.printGoogleNotes(w)
	}
	r.printRunNotes(w, o)
}

func (r *report) printVerifyNote(w io.Writer) {
	fmt.Fprintf(w, "  code verification used %d of %d prepared codes, warm-up included (one per distinct email: each a first sign-in that creates the account)",
		r.consumed, r.prepared)
	if r.verify.ranOut {
		fmt.Fprintf(w, "; RAN OUT after %s: raise -challenges or -max-challenges", r.verify.elapsed.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
}

func (r *report) printGoogleNotes(w io.Writer) {
	fmt.Fprintf(w, "  google sign-in: POST /api/%s/customer/authenticate?provider=google {\"idToken\"}, RS256 tokens of a local issuer "+
		"(oidctest on 127.0.0.1, in the bench process) signed beforehand; %d requests sent, warm-up included: %d first sign-ins "+
		"(a subject never seen, its account created; one in %d while the %d prepared last), the rest returning shoppers "+
		"(a random one of %d subjects signed in once during preparation)",
		tenantID, r.googleSent, r.googleSentFirst, googleFirstEvery, r.googleFirst, r.googleReturning)
	if r.googleSentFirst >= int64(r.googleFirst) {
		fmt.Fprintf(w, "; the first sign-ins RAN OUT, returning shoppers only after that: raise -google-first")
	}
	fmt.Fprintln(w)
	jwksOK := r.jwksWarm+r.jwksMeasured >= 1 && r.jwksWarm+r.jwksMeasured <= 2
	fmt.Fprintf(w, "  JWKS fetches by the measured customerd: %d at its first google request (warm-up), %d during the measured run; "+
		"once or twice in all: %s (the preparing customerd, another process, fetched %d)\n",
		r.jwksWarm, r.jwksMeasured, map[bool]string{true: "ok, the cache served every other request", false: "NO"}[jwksOK], r.jwksPrep)
}

func (r *report) printRunNotes(w io.Writer, o options) {
	fmt.Fprintf(w, "  preparation (customers, tokens, codes at log level info, in a separate customerd process): %s, max RSS %s\n",
		r.prepTime.Round(100*time.Millisecond), mib(r.prepRSS))
	var during []string
	var shares []float64
	for _, sc := range []struct {
		key, name string
		res       result
	}{{"get", "GET", r.get}, {"verify", "code verification", r.verify}, {"google", "google sign-in", r.google}, {"update", "POST update", r.update}} {
		if o.scenarios[sc.key] {
			during = append(during, fmt.Sprintf("%.0f%% during %s", 100*sc.res.foreign, sc.name))
			shares = append(shares, sc.res.foreign)
		}
	}
	fmt.Fprintf(w, "  CPU taken by other processes on the machine (not the bench, its servers, nor PostgreSQL serving them): %s%s\n",
		strings.Join(during, ", "), noisy(shares...))
	for _, res := range []result{r.get, r.getFloor, r.verify, r.authFloor, r.google, r.googleFloor, r.update} {
		if res.exited != "" {
			fmt.Fprintf(w, "  %s: %s\n", res.name, res.exited)
		}
		if res.errors > 0 {
			fmt.Fprintf(w, "  %s: first error: %s\n", res.name, res.firstErr)
		}
	}
	if r.profile != "" {
		fmt.Fprintf(w, "  CPU profile of customerd during the %s scenario: %s (go tool pprof -top %s)\n", o.profiled, r.profile, r.profile)
	}
}
