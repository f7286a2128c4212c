package main

import (
	"net/mail"
	"sort"
	"testing"
)

// A pool's addresses are distinct (the resend throttle is per destination)
// and valid, and not in the order of their numbers.
func TestShopperEmailsAreDistinctAndUnordered(t *testing.T) {
	const n = 200000
	seen := make(map[string]int, n)
	list := make([]string, n)
	for i := range n {
		e := shopperEmail("verify", i)
		if j, ok := seen[e]; ok {
			t.Fatalf("shopper %d and %d share %s", j, i, e)
		}
		seen[e], list[i] = i, e
	}
	if _, err := mail.ParseAddress(list[0]); err != nil {
		t.Fatalf("%s: %v", list[0], err)
	}
	if sort.StringsAreSorted(list) || sort.StringsAreSorted(list[:100]) {
		t.Fatal("addresses in the order of their numbers")
	}
	if shopperEmail("verify", 7) == shopperEmail("tverify", 7) {
		t.Fatal("pools share addresses")
	}
}
