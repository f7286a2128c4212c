package sender_test

import (
	"context"
	"testing"
	"time"

	"github.com/customerd/customerd/sender"
)

// slowSender delivers every message in took.
type slowSender struct{ took time.Duration }

func (s slowSender) Send(context.Context, sender.Message) error {
	time.Sleep(s.took)
	return nil
}

// A withheld code (a contact change to an address another account proved,
// under checkInPolicy partial or full) must take as long as a delivery. It
// answered at once until the replica had measured a delivery on the channel
// (after every start and change of the tenant's settings), and its own wait
// was recorded as a delivery: a token holder probing an address of their own
// second account right after a start filled the measures with zeros, and
// withheld codes kept answering at once after real deliveries, telling which
// addresses have an account.
func TestAWithheldCodeWaitsLikeADeliveryFromTheStart(t *testing.T) {
	const delivery = 60 * time.Millisecond
	ctx := context.Background()
	g := sender.Config{}.Guard(slowSender{took: delivery}, nil)
	withheld := sender.Withheld(g)
	timed := func(s sender.Sender, to string) time.Duration {
		start := time.Now()
		if err := s.Send(ctx, sender.Message{Channel: sender.Email, To: to}); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}

	for i := range 3 { // before any delivery
		if took := timed(withheld, "taken@example.com"); took < delivery {
			t.Errorf("withheld code %d before any delivery answered in %v", i, took)
		}
	}
	timed(g, "free@example.com") // one delivery measured
	for i := range 8 {
		if took := timed(withheld, "taken@example.com"); took < delivery*3/4 {
			t.Errorf("withheld code %d after a %v delivery answered in %v", i, delivery, took)
		}
	}
}
