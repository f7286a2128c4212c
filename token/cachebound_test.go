package token

import (
	"fmt"
	"testing"
	"time"
)

// a flood of distinct valid tokens never holds more
// entries than the bounds say, whatever the bounds configured.
func TestTheCacheStaysWithinItsBounds(t *testing.T) {
	now := time.Now()
	for _, opts := range []CacheOptions{
		{MaxEntries: 16, MaxBytes: 16 * 512},
		{MaxEntries: 16, MaxBytes: 1 << 20},
		{MaxEntries: 1, MaxBytes: 4096 << 20}, // tokenCache: {maxEntries: 1, maxMemoryMiB: 4096}
		{MaxEntries: 10, MaxBytes: 100000 << 20},
	} {
		t.Run(fmt.Sprintf("%d entries, %d MiB", opts.MaxEntries, opts.MaxBytes>>20), func(t *testing.T) {
			tc, err := newTokenCache(opts, func() time.Time { return now }, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				c := &Claims{Subject: fmt.Sprintf("cust-%d", i), Provider: "otp", AMR: []string{"otp", "email"},
					ID: fmt.Sprintf("jti-%d", i), ExpiresAt: now.Add(time.Hour)}
				tc.put(cacheKey("acme", fmt.Sprint("token-", i)), 1, c, now)
			}
			tc.c.CleanUp()
			if n := tc.c.EstimatedSize(); n > opts.MaxEntries {
				t.Fatalf("%d entries held, at most %d allowed (weighted size %d)", n, opts.MaxEntries, tc.c.WeightedSize())
			}
		})
	}
}
