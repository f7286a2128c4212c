package sender

import (
	"testing"
	"time"
)

// A withheld code before the sender's first delivery (after a start or a
// settings change) takes a delivery's usual time, not none: at once, it
// told the first prober after each restart which address has an account.
// Once deliveries are recorded, it takes one of theirs.
func TestAWithheldCodeBeforeAnyDeliveryTakesADeliverysUsualTime(t *testing.T) {
	p := &pace{}
	for range 1000 {
		if d := p.sample(); d < unseededMin || d >= unseededMax {
			t.Fatalf("no delivery yet: %v, want within [%v, %v)", d, unseededMin, unseededMax)
		}
	}
	p.record(42 * time.Millisecond)
	for range 100 {
		if d := p.sample(); d != 42*time.Millisecond {
			t.Fatalf("after one delivery of 42ms: %v", d)
		}
	}
	if d := (*pace)(nil).sample(); d != 0 {
		t.Fatalf("a sender without a guard waits %v", d)
	}
}
