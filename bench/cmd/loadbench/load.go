package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customerd/customerd/bench/procstat"
)

func mustRandInt(n int) int { return rand.IntN(n) }

// newTransport is the one transport the clients of a scenario share.
func newTransport(clients int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: clients,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// call sends one JSON request and decodes a 2xx answer into out.
func call(ctx context.Context, hc *http.Client, method, url, bearer string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, truncate(raw, 300))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// parallel runs fn(i) for i in [0,n) on workers goroutines; the first error stops it.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// session is a signed-in customer: its tenant and token.
type session struct{ tenant, token string }

// onDemo are tokens of the demo tenant.
func onDemo(tokens []string) []session {
	out := make([]session, len(tokens))
	for i, t := range tokens {
		out[i] = session{tenant: tenantID, token: t}
	}
	return out
}

// prepareCustomers creates n customers through the API, the ith on tenant(i),
// and signs each in through the real otp journey: ask a code, read it from
// customerd's log, exchange it for a token.
func prepareCustomers(ctx context.Context, base string, codes *codeBook, n int, tenant func(int) string) ([]session, error) {
	hc := &http.Client{Transport: newTransport(32), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	out := make([]session, n)
	err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		t := tenant(i)
		authURL := base + "/api/" + t + "/customer/authenticate?provider=otp"
		email := fmt.Sprintf("bench.customer%d@example.com", i)
		err := call(ctx, hc, http.MethodPost, base+"/api/"+t+"/customer", "",
			map[string]any{"email": email, "firstName": "Bench", "lastName": "Customer " + strconv.Itoa(i), "postcode": "75001"},
			http.StatusOK, nil)
		if err != nil {
			return fmt.Errorf("create customer: %w", err)
		}
		var ch struct {
			ChallengeID string `json:"challengeId"`
		}
		if err := call(ctx, hc, http.MethodPost, authURL, "", map[string]any{"email": email}, http.StatusAccepted, &ch); err != nil {
			return fmt.Errorf("ask for a code: %w", err)
		}
		code, err := codes.wait(ctx, email)
		if err != nil {
			return err
		}
		out[i].tenant = t
		if err := call(ctx, hc, http.MethodPost, authURL, "", map[string]any{"challengeId": ch.ChallengeID, "code": code},
			http.StatusOK, &out[i].token); err != nil {
			return fmt.Errorf("exchange the code: %w", err)
		}
		return nil
	})
	return out, err
}

// prepareChallenges asks for n codes, the ith on tenant(i), one per distinct
// email (the resend throttle is per destination: prefix keeps pools apart),
// and keeps each challenge with its code.
func prepareChallenges(ctx context.Context, base string, codes *codeBook, n int, tenant func(int) string, prefix string) ([]prepared, error) {
	hc := &http.Client{Transport: newTransport(32), Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	out := make([]prepared, n)
	err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		t := tenant(i)
		email := shopperEmail(prefix, i)
		var ch struct {
			ChallengeID string `json:"challengeId"`
		}
		if err := call(ctx, hc, http.MethodPost, base+"/api/"+t+"/customer/authenticate?provider=otp", "", map[string]any{"email": email},
			http.StatusAccepted, &ch); err != nil {
			return fmt.Errorf("ask for a code: %w", err)
		}
		code, err := codes.wait(ctx, email)
		if err != nil {
			return err
		}
		out[i] = prepared{id: ch.ChallengeID, code: code, tenant: t}
		return nil
	})
	return out, err
}

// shopperEmail is the ith shopper's address of the pool prefix: its local
// part a one-to-one mix of i, so that a pool's addresses are distinct but in
// no order, as real shoppers' are. In order, each new account's entry went
// to the end of its tenant's range of the email index: one page for all of
// demo's sign-ins, one per tenant for those spread over many tenants, a
// difference in the WAL pages each SQLite commit writes that real
// addresses do not make.
func shopperEmail(prefix string, i int) string {
	x := uint64(i) + 0x9e3779b97f4a7c15 // splitmix64: each step is one-to-one
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return fmt.Sprintf("bench.%s.%016x@example.com", prefix, x)
}

// demo is the demo tenant, for every i.
func demo(int) string { return tenantID }

// makeRequest builds the next request of a scenario; false when it has
// nothing left to send (the prepared challenges ran out).
type makeRequest func(rng *rand.Rand) (*http.Request, bool)

func getCustomer(base string, ss []session) makeRequest {
	return func(rng *rand.Rand) (*http.Request, bool) {
		s := ss[rng.IntN(len(ss))]
		req, _ := http.NewRequest(http.MethodGet, base+"/api/"+s.tenant+"/customer", nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.token)
		return req, true
	}
}

func jsonPost(url, bearer string, body []byte) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return req
}

func verifyBody(p prepared) []byte {
	b, _ := json.Marshal(map[string]string{"challengeId": p.id, "code": p.code})
	return b
}

// verifyEach consumes the prepared challenges, each once.
func verifyEach(base string, chs []prepared, next *atomic.Int64) makeRequest {
	return func(*rand.Rand) (*http.Request, bool) {
		i := int(next.Add(1)) - 1
		if i >= len(chs) {
			return nil, false
		}
		return jsonPost(verifyURL(base, chs[i]), "", verifyBody(chs[i])), true
	}
}

// verifyAny sends any of the floor's challenges (the floor does not consume them).
func verifyAny(base string, chs []prepared) makeRequest {
	return func(rng *rand.Rand) (*http.Request, bool) {
		p := chs[rng.IntN(len(chs))]
		return jsonPost(verifyURL(base, p), "", verifyBody(p)), true
	}
}

func verifyURL(base string, p prepared) string {
	return base + "/api/" + p.tenant + "/customer/authenticate?provider=otp"
}

func updateCustomer(base string, ss []session) makeRequest {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	return func(rng *rand.Rand) (*http.Request, bool) {
		name := make([]byte, 8)
		for i := range name {
			name[i] = letters[rng.IntN(len(letters))]
		}
		name[0] -= 'a' - 'A'
		s := ss[rng.IntN(len(ss))]
		return jsonPost(base+"/api/"+s.tenant+"/customer", s.token, []byte(`{"firstName":"`+string(name)+`"}`)), true
	}
}

// sample is one stretch of load on one server.
type sample struct {
	requests, errors int64 // errors: transport errors and non-2xx answers
	elapsed          time.Duration
	lat              []time.Duration
	ranOut           bool
	firstErr         string
	// cpu and db are the CPU time the server's process and PostgreSQL's
	// processes used meanwhile, in ticks.
	cpu, db uint64
}

// drive runs clients goroutines sending mk's requests through hc for d (or
// until mk runs dry or ctx ends).
func drive(ctx context.Context, hc *http.Client, clients int, d time.Duration, mk makeRequest) sample {
	var (
		stop     atomic.Bool
		requests atomic.Int64
		errs     atomic.Int64
		errOnce  sync.Once
		firstErr string
		mu       sync.Mutex
		all      []time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			lat := make([]time.Duration, 0, 1<<12)
			for !stop.Load() && ctx.Err() == nil && time.Now().Before(deadline) {
				req, ok := mk(rng)
				if !ok {
					stop.Store(true)
					break
				}
				t0 := time.Now()
				res, err := hc.Do(req.WithContext(ctx))
				var body []byte
				if err == nil {
					if res.StatusCode/100 != 2 {
						body, _ = io.ReadAll(io.LimitReader(res.Body, 512))
					}
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
				}
				if ctx.Err() != nil {
					break
				}
				lat = append(lat, time.Since(t0))
				requests.Add(1)
				if err != nil || res.StatusCode/100 != 2 {
					errs.Add(1)
					errOnce.Do(func() {
						if err != nil {
							firstErr = err.Error()
						} else {
							firstErr = fmt.Sprintf("%d %s", res.StatusCode, strings.TrimSpace(string(body)))
						}
					})
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return sample{requests: requests.Load(), errors: errs.Load(), elapsed: time.Since(start), lat: all,
		ranOut: stop.Load(), firstErr: firstErr}
}

// result is one scenario's figures on one server.
type result struct {
	name     string
	requests int64
	errors   int64
	ok       int64
	elapsed  time.Duration
	p50, p99 time.Duration
	rss      uint64 // max resident memory of the server process during the scenario
	ranOut   bool
	firstErr string
	exited   string  // the server died
	foreign  float64 // share of the CPUs other processes took during the scenario
	// cpu and db are the CPU time per answered request of the server's
	// process and of PostgreSQL (0 on SQLite).
	cpu, db time.Duration
}

// rps counts 2xx answers only.
func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

func summarize(name string, samples []sample) result {
	r := result{name: name}
	var all []time.Duration
	for _, s := range samples {
		r.requests += s.requests
		r.errors += s.errors
		r.elapsed += s.elapsed
		r.ranOut = r.ranOut || s.ranOut
		if r.firstErr == "" {
			r.firstErr = s.firstErr
		}
		all = append(all, s.lat...)
	}
	r.ok = r.requests - r.errors
	var cpu, db uint64
	for _, s := range samples {
		cpu, db = cpu+s.cpu, db+s.db
	}
	if r.ok > 0 {
		perTick := float64(time.Second) / procstat.TicksPerSecond
		r.cpu = time.Duration(float64(cpu) * perTick / float64(r.ok))
		r.db = time.Duration(float64(db) * perTick / float64(r.ok))
	}
	slices.Sort(all)
	r.p50, r.p99 = percentile(all, 0.50), percentile(all, 0.99)
	return r
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// rssSampler reads a process's VmRSS every 250 ms.
type rssSampler struct {
	pid     int
	overall atomic.Uint64
	window  atomic.Uint64
	quit    chan struct{}
	once    sync.Once
}

func newRSSSampler(pid int) *rssSampler {
	s := &rssSampler{pid: pid, quit: make(chan struct{})}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	v := readRSS(s.pid)
	for _, a := range []*atomic.Uint64{&s.overall, &s.window} {
		for {
			old := a.Load()
			if v <= old || a.CompareAndSwap(old, v) {
				break
			}
		}
	}
}

// startWindow begins a new per-scenario maximum.
func (s *rssSampler) startWindow() { s.window.Store(0); s.sample() }

// endWindow is the maximum since startWindow.
func (s *rssSampler) endWindow() uint64 { s.sample(); return s.window.Load() }

func (s *rssSampler) stop() { s.once.Do(func() { close(s.quit) }) }

// readRSS is VmRSS of /proc/PID/status in bytes (0 when unreadable).
func readRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
