package store

import (
	"strconv"
	"strings"
	"testing"

	"github.com/customerd/customerd/strictjson"
)

func TestPlainNumber(t *testing.T) {
	const limit = 4096 // an account's free-form value's
	for _, tc := range []struct{ lit, want string }{
		{"0", "0"}, {"-0", "0"}, {"-0.0", "0.0"}, {"0e5", "0"}, {"0.00e1", "0.0"},
		{"1e2", "100"}, {"1E+2", "100"}, {"1.50", "1.50"}, {"1.50e1", "15.0"}, {"-2.5e1", "-25"},
		{"1.5e-7", "0.00000015"}, {"10.5e-1", "1.05"}, {"-1e-3", "-0.001"},
		{"12345678901234567890123", "12345678901234567890123"}, {"5e-324", "0." + strings.Repeat("0", 323) + "5"},
		{"1.7976931348623157e308", "17976931348623157" + strings.Repeat("0", 292)},
	} {
		got, ok := plainNumber(tc.lit, limit)
		if !ok || got != tc.want {
			t.Errorf("plainNumber(%s) = %q %v, want %q", tc.lit, got, ok, tc.want)
		}
	}
	for _, lit := range []string{"0e-999999", "0e-99999999999999999999", "1e-4095", "1" + strings.Repeat("0", 4096)} {
		if got, ok := plainNumber(lit, limit); ok {
			t.Errorf("plainNumber(%.20s…) = %.20s…, want it refused as longer than %d bytes", lit, got, limit)
		}
	}
}

// FuzzPlainNumber: the plain form of a float64's literal is the same float64, written without exponent.
func FuzzPlainNumber(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.1, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, -123.456e-200} {
		f.Add(v, byte('g'))
	}
	f.Fuzz(func(t *testing.T, v float64, format byte) {
		if format != 'e' && format != 'f' && format != 'g' {
			format = 'g'
		}
		lit := strconv.FormatFloat(v, format, -1, 64)
		if strictjson.CheckNumber(lit) != nil {
			return // NaN, ±Inf
		}
		plain, ok := plainNumber(lit, 1<<20)
		if !ok {
			t.Fatalf("plainNumber(%s) refused", lit)
		}
		got, err := strconv.ParseFloat(plain, 64)
		if err != nil || got != v || strings.ContainsAny(plain, "eE+") || strings.HasPrefix(plain, "-0") && strings.Trim(plain, "-0.") == "" {
			t.Fatalf("plainNumber(%s) = %s (%v, %v)", lit, plain, got, err)
		}
	})
}
