package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The targets (issue "faster than the floor"): a ratio of customerd's
// figure to its floor's, or a bound.
const (
	getRPSTarget          = 1.10 // GET customer req/s ≥ 110% of the GET floor's
	getP99Target          = 1.0  // and its p99 no worse than the floor's
	verifyP99Target       = 1.5  // code verification p99 ≤ 1.5× the authenticate floor's
	googleRPSTarget       = 0.80 // Google sign-in ≥ 80% of the authenticate floor's req/s
	rssTarget             = 100 << 20
	verifyRPSTargetSQLite = 0.85 // code verification ≥ 85% of the authenticate floor's req/s on SQLite
	verifyRPSTargetPG     = 0.75 // and ≥ 75% on PostgreSQL
)

// check is one figure read against its target.
type check struct {
	// Key names the figure in the closing line, Name in full.
	Key  string  `json:"key"`
	Name string  `json:"name"`
	Unit string  `json:"unit"` // "%", "×", "MiB", "ms"
	Val  float64 `json:"value"`
	// Target is "≥110%", "<100 MiB"…, "" for a figure without one.
	Target string `json:"target,omitempty"`
	Met    bool   `json:"met"`
}

func (c check) value() string {
	switch c.Unit {
	case "%":
		return fmt.Sprintf("%.1f%%", c.Val)
	case "×":
		return fmt.Sprintf("%.2f×", c.Val)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", c.Val)
	}
	return fmt.Sprintf("%.0f%s", c.Val, c.Unit)
}

// cell is the check as a table cell: the value, its target and verdict.
func (c check) cell() string {
	if c.Target == "" {
		return c.value()
	}
	return c.value() + " " + c.Target + " " + verdict(c.Met)
}

// ratio is a check of a's req/s as a share of b's, at least min; without
// an answer from either it is missed.
func ratio(key, name string, a, b result, min float64) check {
	c := check{Key: key, Name: name, Unit: "%", Target: fmt.Sprintf("≥%.0f%%", 100*min)}
	if a.ok > 0 && b.ok > 0 {
		v := a.rps() / b.rps()
		c.Val, c.Met = 100*v, v >= min
	}
	return c
}

// p99 is a check of customerd's p99 against its floor's, at most most (0: no target).
func p99(key, name string, res, floor result, most float64) check {
	c := check{Key: key, Name: name, Unit: "×", Met: most == 0}
	if res.ok == 0 || floor.ok == 0 {
		return c
	}
	c.Val = float64(res.p99) / float64(floor.p99)
	if most > 0 {
		c.Target, c.Met = fmt.Sprintf("≤%g×", most), c.Val <= most
	}
	return c
}

func rssCheck(key, name string, rss uint64) check {
	return check{Key: key, Name: name, Unit: "MiB", Val: float64(rss) / (1 << 20), Target: "<100 MiB", Met: rss < rssTarget}
}

// checks are a database's figures against their targets, in the order of its table.
func (r *report) checks(o options) []check {
	var out []check
	ran := o.scenarios
	if ran["get"] {
		out = append(out, ratio("GET", "GET customer req/s vs the GET floor", r.get, r.getFloor, getRPSTarget),
			p99("GET p99", "GET customer p99 vs the GET floor", r.get, r.getFloor, getP99Target))
	}
	if ran["verify"] {
		target := verifyRPSTargetSQLite
		if r.db == "postgres" {
			target = verifyRPSTargetPG
		}
		out = append(out, ratio("verify", "code verification req/s vs the authenticate floor", r.verify, r.authFloor, target),
			p99("verify p99", "code verification p99 vs the authenticate floor", r.verify, r.authFloor, verifyP99Target))
	}
	if ran["google"] {
		out = append(out, ratio("google", "google sign-in req/s vs the authenticate floor", r.google, r.googleFloor, googleRPSTarget),
			p99("google p99", "google sign-in p99 vs the authenticate floor", r.google, r.googleFloor, 0))
	}
	out = append(out, rssCheck("RSS", "customerd max RSS over the measured scenarios", r.measuredRSS))
	if r.tenants != nil {
		out = append(out, r.tenants.checks(o)...)
	}
	if r.scale != nil {
		out = append(out, r.scale.checks()...)
	}
	return out
}

func find(checks []check, key string) check {
	for _, c := range checks {
		if c.Key == key {
			return c
		}
	}
	return check{}
}

// jsonResult is one scenario's figures on one server, as bench/results keeps them.
type jsonResult struct {
	Name       string  `json:"name"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	RPS        float64 `json:"rps"`
	P50ms      float64 `json:"p50Ms"`
	P99ms      float64 `json:"p99Ms"`
	MaxRSSMiB  float64 `json:"maxRssMiB"`
	CPUus      float64 `json:"cpuPerRequestUs"`
	DBCPUus    float64 `json:"dbCpuPerRequestUs,omitempty"`
	ForeignCPU float64 `json:"foreignCpu"`
	RanOut     bool    `json:"ranOut,omitempty"`
	FirstError string  `json:"firstError,omitempty"`
}

func toJSON(r result) jsonResult {
	return jsonResult{Name: r.name, Requests: r.requests, Errors: r.errors, RPS: r.rps(),
		P50ms: float64(r.p50) / float64(time.Millisecond), P99ms: float64(r.p99) / float64(time.Millisecond),
		MaxRSSMiB: float64(r.rss) / (1 << 20), CPUus: float64(r.cpu) / float64(time.Microsecond),
		DBCPUus: float64(r.db) / float64(time.Microsecond), ForeignCPU: r.foreign, RanOut: r.ranOut, FirstError: r.firstErr}
}

// jsonDatabase is one database's run.
type jsonDatabase struct {
	DB        string       `json:"db"`
	Results   []jsonResult `json:"results"`
	Checks    []check      `json:"checks"`
	StartupMs float64      `json:"startupMs"`
	Seeding   *jsonSeeding `json:"seeding,omitempty"`
}

// jsonSeeding is the scale scenario's database.
type jsonSeeding struct {
	Customers int     `json:"customers"`
	Tenants   int     `json:"tenants"`
	Seconds   float64 `json:"seconds"`
	SizeMiB   float64 `json:"sizeMiB"`
}

// jsonRun is one run of the bench: bench/results/*.json.
type jsonRun struct {
	Started   time.Time      `json:"started"`
	Commit    string         `json:"commit,omitempty"`
	CPUs      int            `json:"cpus"`
	Clients   int            `json:"clients"`
	Duration  string         `json:"duration"`
	Rounds    int            `json:"rounds"`
	Scenarios []string       `json:"scenarios"`
	Databases []jsonDatabase `json:"databases"`
	Met       bool           `json:"met"`
	Summary   string         `json:"summary"`
}

func (r *report) json(o options) jsonDatabase {
	d := jsonDatabase{DB: r.db, Checks: r.checks(o), StartupMs: float64(r.startup) / float64(time.Millisecond)}
	for _, res := range r.results() {
		d.Results = append(d.Results, toJSON(res))
	}
	if r.tenants != nil {
		for _, res := range []result{r.tenants.get, r.tenants.getD, r.tenants.ver, r.tenants.verD} {
			if res.name != "" {
				d.Results = append(d.Results, toJSON(res))
			}
		}
	}
	if s := r.scale; s != nil {
		d.Seeding = &jsonSeeding{Customers: s.customers, Tenants: s.tenants, Seconds: s.seeding.Seconds(), SizeMiB: float64(s.size) / (1 << 20)}
		for _, p := range s.pairs {
			d.Results = append(d.Results, toJSON(p.big), toJSON(p.small))
		}
	}
	return d
}

// results are the measured scenarios of the main database, customerd's and its floors'.
func (r *report) results() []result {
	var out []result
	for _, res := range []result{r.get, r.getFloor, r.verify, r.authFloor, r.google, r.googleFloor, r.update} {
		if res.name != "" {
			out = append(out, res)
		}
	}
	return out
}

// closing is the one line that ends a run: every ratio of every database,
// and whether every target was met.
func closing(reps []*report, o options) (string, bool) {
	var parts, missed []string
	all := true
	for _, r := range reps {
		var figures []string
		for _, c := range r.checks(o) {
			figures = append(figures, c.Key+" "+c.value())
			if !c.Met {
				all = false
				missed = append(missed, r.db+" "+c.Key)
			}
		}
		if r.void() {
			all = false
			missed = append(missed, r.db+" void")
		}
		parts = append(parts, r.db+": "+strings.Join(figures, ", "))
	}
	verdict := "targets all met"
	if !all {
		verdict = "MISSED: " + strings.Join(missed, ", ")
	}
	return strings.Join(parts, " | ") + " — " + verdict, all
}

// writeResults writes the run as JSON into bench/results of the module
// (the current folder outside it), one file per run, and returns its path.
func writeResults(reps []*report, o options, started time.Time, summary string, met bool) (string, error) {
	run := jsonRun{Started: started.UTC(), CPUs: runtime.NumCPU(), Clients: o.clients, Duration: o.duration.String(),
		Rounds: o.rounds, Met: met, Summary: summary}
	for _, sc := range allScenarios {
		if o.scenarios[sc] {
			run.Scenarios = append(run.Scenarios, sc)
		}
	}
	for _, r := range reps {
		run.Databases = append(run.Databases, r.json(o))
	}
	dir := "."
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			dir = filepath.Dir(gomod)
		}
	}
	if out, err := exec.Command("git", "-C", dir, "describe", "--always", "--dirty").Output(); err == nil {
		run.Commit = strings.TrimSpace(string(out))
	}
	dir = filepath.Join(dir, "bench", "results")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, started.UTC().Format("20060102T150405Z")+".json")
	return path, os.WriteFile(path, append(b, '\n'), 0o600)
}
