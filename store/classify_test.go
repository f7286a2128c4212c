package store

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// A connection cut in the middle of an answer is an outage (503, retried
// elsewhere), not a failure of the request (500).
func TestACutConnectionIsUnavailable(t *testing.T) {
	for _, err := range []error{io.ErrUnexpectedEOF, fmt.Errorf("read: %w", io.EOF)} {
		if got := classify(err); !errors.Is(got, ErrUnavailable) {
			t.Errorf("classify(%v) = %v, want ErrUnavailable", err, got)
		}
	}
}
