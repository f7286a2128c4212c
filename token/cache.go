package token

import (
	"crypto/sha256"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// CacheOptions bound the verified-token cache.
type CacheOptions struct {
	// MaxEntries and MaxBytes bound it; 0 MaxEntries turns it off.
	MaxEntries int
	MaxBytes   uint64
}

// A shopper's app sends the same token for hours: verifying its ES256
// signature again each time is the largest cost of a GET. The cache keeps
// what a verification found, keyed by a hash of the whole token (one form
// only: low-S, canonical base64url), for no longer than the token lives and
// only while the tenant's keys are the ones that verified it. It never
// stands for the account: revocation and deletion are decided by the
// account read that follows, cached or not.

// verified is what verifying a token found.
type verified struct {
	claims *Claims
	keys   uint64 // the generation of the tenant's keys that verified it
}

// entryBytes is roughly what an entry holds besides its strings.
const entryBytes = 160

type tokenCache struct {
	c            *otter.Cache[[sha256.Size]byte, verified]
	hits, misses prometheus.Counter
}

func newTokenCache(opts CacheOptions, now func() time.Time, reg prometheus.Registerer) (*tokenCache, error) {
	if opts.MaxEntries <= 0 {
		return nil, nil
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = uint64(opts.MaxEntries) * 512
	}
	// Every entry weighs at least MaxBytes/MaxEntries, so the weight bound
	// is also the count bound. A weight is a uint32: a floor past it (more
	// than 4 GiB an entry) wrapped, to 0 at exactly 4 GiB, and the cache
	// held any number of tokens; such bounds are the entries' count alone.
	if opts.MaxBytes/uint64(opts.MaxEntries) > math.MaxUint32 {
		opts.MaxBytes = uint64(opts.MaxEntries) * math.MaxUint32
	}
	floor := max(opts.MaxBytes/uint64(opts.MaxEntries), 1)
	c, err := otter.New(&otter.Options[[sha256.Size]byte, verified]{
		MaximumWeight: opts.MaxBytes,
		Weigher: func(_ [sha256.Size]byte, v verified) uint32 {
			size := uint64(entryBytes + len(v.claims.Subject) + len(v.claims.Provider) + len(v.claims.ID))
			for _, m := range v.claims.AMR {
				size += uint64(16 + len(m))
			}
			return uint32(max(size, floor))
		},
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[[sha256.Size]byte, verified]) time.Duration {
			return max(e.Value.claims.ExpiresAt.Sub(now()), time.Nanosecond)
		}),
	})
	if err != nil {
		return nil, err
	}
	tc := &tokenCache{c: c,
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "customerd_token_cache_hits_total", Help: "Bearer tokens found verified in the cache."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "customerd_token_cache_misses_total", Help: "Bearer tokens verified in full."}),
	}
	if reg != nil {
		err := registerAll(reg, tc.hits, tc.misses,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "customerd_token_cache_entries", Help: "Verified tokens in the cache."},
				func() float64 { return float64(c.EstimatedSize()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "customerd_token_cache_bytes", Help: "Estimated bytes the cache's entries hold."},
				func() float64 { return float64(c.WeightedSize()) }))
		if err != nil {
			return nil, err
		}
	}
	return tc, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func cacheKey(tenant, raw string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(raw))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get is the claims of raw when it was verified under the tenant's current
// keys (generation keys) and has not expired at now.
func (tc *tokenCache) get(key [sha256.Size]byte, keys uint64, now time.Time) (*Claims, bool) {
	v, ok := tc.c.GetIfPresent(key)
	if ok && v.keys == keys && now.Before(v.claims.ExpiresAt) {
		tc.hits.Inc()
		return v.claims, true
	}
	if ok {
		tc.c.Invalidate(key) // its keys changed, or it expired
	}
	tc.misses.Inc()
	return nil, false
}

func (tc *tokenCache) put(key [sha256.Size]byte, keys uint64, c *Claims, now time.Time) {
	if now.Before(c.ExpiresAt) {
		tc.c.Set(key, verified{claims: c, keys: keys})
	}
}
