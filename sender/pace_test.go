package sender

import (
	"context"
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

// A withheld code's wait is drawn from the sender's deliveries and is not
// one of them: recorded, the waits of probes after a start filled the
// measures, and withheld codes kept their time after real deliveries came.
func TestAWithheldCodesWaitIsNotRecordedAsADelivery(t *testing.T) {
	g := Config{}.Guard(withheld{}, nil).(*guarded)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the wait ends at once; what is recorded is the point
	for range 5 {
		if err := Withheld(g).Send(ctx, Message{Channel: Email, To: "taken@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if g.pace.n != 0 {
		t.Fatalf("%d withheld waits were recorded as deliveries", g.pace.n)
	}
	if err := g.Send(ctx, Message{Channel: Email, To: "free@example.com"}); err != nil || g.pace.n != 1 {
		t.Fatalf("a delivery: %v, %d recorded", err, g.pace.n)
	}
}
