package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/customerd/customerd/store"
)

// idempotencyHeader makes a POST /customer safe to retry.
const idempotencyHeader = "Idempotency-Key"

// abandoned is how long a request may run under a key before another may take
// the key over (its replica died); longer than any request may take.
const abandoned = 2 * time.Minute

// keyLifetime is how long a key stands for its first request (README,
// Idempotency): a key older than that starts a new one, whether the
// janitor deleted it yet or not.
const keyLifetime = 24 * time.Hour

// idempotent answers a POST /customer whose Idempotency-Key was seen before
// with the first answer (the same body), a 422 (another body) or a 409 (the
// first still runs), and keeps the answer of a first request. Answers worth
// a retry (429, 5xx) are not kept.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		key := req.Header.Get(idempotencyHeader)
		if key == "" || req.Method != http.MethodPost || c.Path() != upsertPath {
			return next(c)
		}
		if !keyChars(key) {
			// Checked here too, not only by the contract: the key goes to the database.
			return invalidFields(http.StatusBadRequest, map[string][]string{idempotencyHeader: {
				fmt.Sprintf("must be 1 to %d visible ASCII characters (! to ~)", maxKey)}})
		}
		ctx := req.Context()
		r := fromContext(ctx)
		// The same caller with a fresh token is the same caller; a caller
		// without one is anonymous. A header that is not a valid token names
		// nobody (it once stood for its caller as it was, so that
		// "Authorization: sub:<id>" was the token holder <id> here, and got
		// their stored answer): its request answers 401, kept nowhere.
		who := "anonymous"
		if r.auth != "" {
			claims, err := s.caller(ctx)
			if err != nil || claims == nil {
				return next(c)
			}
			who = "sub:" + claims.Subject
		}
		body, err := io.ReadAll(req.Body) // readBody buffered it
		if err != nil {
			return badRequest("the request body could not be read")
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.New()
		for _, part := range [][]byte{[]byte(who), []byte(req.URL.Query().Get("flow")), body} {
			sum.Write(part)
			sum.Write([]byte{0})
		}
		hash := hex.EncodeToString(sum.Sum(nil))
		now := s.accounts.Now() // the service's clock, as the accounts' and challenges'
		begin := &store.IdempotentRequest{TenantID: r.tenant.ID, Key: key, RequestHash: hash, CreatedAt: now}
		first, err := s.store.BeginIdempotent(ctx, begin)
		if errors.Is(err, store.ErrConflict) && (first.Status == 0 && now.Sub(first.CreatedAt) > abandoned ||
			now.Sub(first.CreatedAt) > keyLifetime) {
			// The replica that ran it died before answering, or the key's
			// time is up: one retry takes the key over (in one statement:
			// concurrent retries that each forgot the row and began again
			// both ran the request); the others find it running, or answered.
			took, terr := s.store.TakeOverIdempotent(ctx, begin, now.Add(-abandoned), now.Add(-keyLifetime))
			switch {
			case terr != nil:
				return terr
			case took:
				first, err = nil, nil
			default:
				first, err = s.store.BeginIdempotent(ctx, begin)
			}
		}
		switch {
		case errors.Is(err, store.ErrConflict) && first.RequestHash != hash:
			return newProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused",
				"this Idempotency-Key was used with another request")
		case errors.Is(err, store.ErrConflict) && first.Status == 0:
			p := newProblem(http.StatusConflict, "idempotency-in-progress", "Request in progress",
				"a request with this Idempotency-Key is still running")
			p.headers = map[string]string{"Retry-After": "1"}
			return p
		case errors.Is(err, store.ErrConflict):
			c.Response().Header().Set("Idempotent-Replayed", "true")
			return c.Blob(first.Status, first.ContentType, first.Body)
		case err != nil:
			return err
		}
		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		if err := next(c); err != nil {
			c.Error(err) // the problem is the answer to keep
		}
		status := c.Response().Status
		// Kept or dropped even when the caller went away: the work is done.
		done := c.Request().Context()
		if status == http.StatusTooManyRequests || status >= 500 || !c.Response().Committed {
			if err := s.store.ForgetIdempotent(context.WithoutCancel(done), begin); err != nil {
				s.log.Warn("forget idempotency key", "error", err.Error())
			}
			return nil
		}
		// Under begin, the request as it holds the key: one that ran past
		// abandoned and lost it to another keeps nothing, for its answer
		// would be replayed to the other's caller.
		if err := s.store.FinishIdempotent(context.WithoutCancel(done), begin, status,
			c.Response().Header().Get(echo.HeaderContentType), rec.body.Bytes(), shown(rec.body.Bytes())); err != nil {
			s.log.Warn("keep idempotent answer", "error", err.Error())
		}
		return nil
	}
}

// maxKey is the longest Idempotency-Key, as the contract says.
const maxKey = 255

// keyChars reports whether an Idempotency-Key is 1 to maxKey visible ASCII
// characters: what every database stores and every log shows as sent.
func keyChars(key string) bool {
	if key == "" || len(key) > maxKey {
		return false
	}
	for i := range len(key) {
		if key[i] < '!' || key[i] > '~' {
			return false
		}
	}
	return true
}

// recorder keeps a copy of what a handler writes.
type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// shown is the id of the account an answer shows ("" for none): every
// answer holding an account's data is the account, with its id.
func shown(body []byte) string {
	var a struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &a) != nil {
		return ""
	}
	return a.ID
}
