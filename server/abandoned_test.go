package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// Found by a review: a request whose client had hung up was taken as
// abandoned whatever its 503's cause, so in an outage (a relay, the
// database), where clients give up before the server does, the failures
// left the error log and the 5xx series. Only the cancellation itself is
// the client's doing.
func TestAFailureOfTheServerIsOneWhenItsClientIsGone(t *testing.T) {
	gone, hangUp := context.WithCancel(context.Background())
	hangUp()
	for _, c := range []struct {
		name      string
		cause     error
		abandoned bool
	}{
		{"the cancellation", fmt.Errorf("database unavailable: %w", context.Canceled), true},
		{"a relay that failed", errors.New("relay answered 500"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			r := &request{}
			req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
			req = req.WithContext(context.WithValue(gone, requestKey, r))
			ctx := echo.New().NewContext(req, httptest.NewRecorder())
			p := newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "try again later")
			p.cause = c.cause
			if err := writeProblem(ctx, log, p); err != nil {
				t.Fatal(err)
			}
			if r.abandoned != c.abandoned {
				t.Errorf("abandoned = %v, want %v", r.abandoned, c.abandoned)
			}
			if logged := strings.Contains(logs.String(), `"level":"ERROR"`); logged == c.abandoned {
				t.Errorf("logged at error level: %v, want %v (%s)", logged, !c.abandoned, logs.String())
			}
		})
	}
}
