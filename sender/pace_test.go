package sender

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
		if d, _ := p.sample(time.Now()); d < unseededMin || d >= unseededMax {
			t.Fatalf("no delivery yet: %v, want within [%v, %v)", d, unseededMin, unseededMax)
		}
	}
	p.record(42*time.Millisecond, nil, time.Now())
	for range 100 {
		if d, _ := p.sample(time.Now()); d != 42*time.Millisecond {
			t.Fatalf("after one delivery of 42ms: %v", d)
		}
	}
	if d, err := (*pace)(nil).sample(time.Now()); d != 0 || err != nil {
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
	if len(g.pace.took.d) != 0 {
		t.Fatalf("%d withheld waits were recorded as deliveries", len(g.pace.took.d))
	}
	if err := g.Send(ctx, Message{Channel: Email, To: "free@example.com"}); err != nil || len(g.pace.took.d) != 1 {
		t.Fatalf("a delivery: %v, %d recorded", err, len(g.pace.took.d))
	}
}

// While the sender is down, a withheld code waits as long as one of the
// failed sends took, and fails with the sender's own failure; a delivery
// puts it back on the deliveries' times.
func TestAWithheldCodeWhileDownTakesAsLongAsAFailure(t *testing.T) {
	p := &pace{}
	now := time.Now()
	p.record(42*time.Millisecond, nil, now)
	p.record(7*time.Second, unavailable(context.DeadlineExceeded), now)
	for range 100 {
		if d, err := p.sample(now.Add(time.Second)); d != 7*time.Second || err == nil {
			t.Fatalf("down after a 7s timeout: %v %v", d, err)
		}
	}
	if d, err := p.sample(now.Add(DownFor)); d != 42*time.Millisecond || err != nil {
		t.Fatalf("down expired: %v %v, want the delivery's 42ms", d, err)
	}
	p.record(time.Second, context.Canceled, now) // not the sender's own failure: no news
	if d, err := p.sample(now); d != 7*time.Second || err == nil {
		t.Fatalf("after a failure of another kind: %v %v", d, err)
	}
	p.record(50*time.Millisecond, nil, now)
	p.record(3*time.Second, unavailable(context.DeadlineExceeded), now)
	for range 100 {
		if d, err := p.sample(now); d != 3*time.Second || err == nil {
			t.Fatalf("a new outage after a delivery: %v %v, want only its own 3s", d, err)
		}
	}
}

// The ring keeps the latest ringSize durations: the oldest goes first.
func TestTheRingKeepsTheLatestDurations(t *testing.T) {
	var r durations
	for i := 1; i <= ringSize+8; i++ {
		r.add(time.Duration(i))
	}
	if len(r.d) != ringSize {
		t.Fatalf("%d kept, want %d", len(r.d), ringSize)
	}
	seen := map[time.Duration]bool{}
	for _, d := range r.d {
		seen[d] = true
	}
	for i := 1; i <= ringSize+8; i++ {
		if want := i > 8; seen[time.Duration(i)] != want {
			t.Fatalf("duration %d kept: %v, want %v (kept %v)", i, seen[time.Duration(i)], want, r.d)
		}
	}
}

// A guard holds no ring until its sender's first send: every tenant served
// builds its senders, and most never send.
func TestAGuardHoldsNoRingBeforeItsFirstSend(t *testing.T) {
	g := Config{}.Guard(withheld{}, nil).(*guarded)
	if g.pace.took.d != nil || g.pace.failed.d != nil {
		t.Fatalf("rings before any send: %d, %d", cap(g.pace.took.d), cap(g.pace.failed.d))
	}
	g.pace.record(time.Millisecond, nil, time.Now())
	if len(g.pace.took.d) != 1 || g.pace.failed.d != nil {
		t.Fatalf("after a delivery: %v, %v", g.pace.took.d, g.pace.failed.d)
	}
}

// BenchmarkGuard is the memory of one guarded sender as a tenant's settings
// build it (B/op).
func BenchmarkGuard(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Config{Countries: []string{"FR"}}.Guard(withheld{}, nil)
	}
}

// A code whose recipient the relay or gateway refused is answered, where
// withholding it depended on the account, as a withheld code would be:
// RefusedRecipient tells that refusal from the sender's own failures and
// its guard's, which a withheld code meets too, and AsWithheld makes the
// answer take as long as a withheld code's (one of the sender's recent
// deliveries) and fail as one does while the sender is down.
func TestARefusedRecipientIsAnsweredAsAWithheldCode(t *testing.T) {
	for _, c := range []struct {
		err     error
		refused bool
	}{
		{errors.New("smtp sender: rcpt to: 550 5.1.1 no such mailbox"), true},
		{refused(http.StatusBadRequest, errors.New("twilio: status 400")), true},
		{refused(http.StatusServiceUnavailable, errors.New("twilio: status 503")), false},
		{unavailable(errors.New("smtp sender: dial: connection refused")), false},
		{fmt.Errorf("sms: %w", ErrCountryRefused), false},
		{ErrPremiumRefused, false},
		{&BudgetError{RetryAfter: time.Hour}, false},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := RefusedRecipient(c.err); got != c.refused {
			t.Errorf("RefusedRecipient(%v) = %v, want %v", c.err, got, c.refused)
		}
	}

	g := Config{}.Guard(withheld{}, nil).(*guarded)
	const delivery = 80 * time.Millisecond
	g.pace.record(delivery, nil, time.Now())
	began := time.Now()
	if err := AsWithheld(context.Background(), g, began); err != nil {
		t.Fatalf("the sender up: %v", err)
	}
	if took := time.Since(began); took < delivery {
		t.Fatalf("answered after %v, before a delivery's %v", took, delivery)
	}
	// A refusal that took longer than a delivery waits no more.
	if err := AsWithheld(context.Background(), g, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	g.pace.record(time.Millisecond, unavailable(errors.New("smtp sender: dial: connection refused")), time.Now())
	if err := AsWithheld(context.Background(), g, time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("the sender down: %v, want its failure as a withheld code's", err)
	}
	if err := AsWithheld(context.Background(), withheld{}, time.Now()); err != nil {
		t.Fatalf("a sender without a guard: %v", err)
	}
}
