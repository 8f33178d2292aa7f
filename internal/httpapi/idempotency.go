package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// The headers of client idempotency.
const (
	headerIdempotencyKey     = "Idempotency-Key"
	headerIdempotentReplayed = "Idempotent-Replayed"
)

const (
	// maxIdempotencyKeyLen bounds a client's Idempotency-Key. 255 fits a
	// UUID, a hash or a client's own composite key with room to spare.
	maxIdempotencyKeyLen = 255
	// maxStoredResponse bounds the answer kept for a replay. Payment answers
	// are a few KiB; one bigger than this is answered but not kept (the
	// client may repeat the request, which the domain makes safe anyway).
	maxStoredResponse = 1 << 20
	// finishTimeout bounds storing the answer, or releasing the marker,
	// after the handler is done, retries included.
	finishTimeout = 5 * time.Second
	// staleMargin is added to the longest a request can hold its marker
	// (its deadline, then finishTimeout) to decide that a marker was
	// abandoned: its process died, or the database went away under it. It
	// only has to cover clock skew between API processes, since each stamps
	// markers with its own clock; kept small because a client is locked out
	// of its key (409) for the whole window.
	staleMargin = 2 * time.Second
	// sweepInterval, sweepBatch and sweepTimeout pace the deletion of
	// expired records: at most one sweep a minute per API process, deleting
	// sweepBatch rows per statement until none is left or sweepTimeout is
	// up (the next sweep goes on from there).
	sweepInterval = time.Minute
	sweepBatch    = 1000
	sweepTimeout  = 30 * time.Second
)

// replayedHeaders are the response headers kept with an answer and repeated
// by its replays. Others (X-Request-Id, say) belong to one exchange.
var replayedHeaders = []string{echo.HeaderContentType, echo.HeaderLocation, headerRetryAfter}

// idempotent makes a POST safe for a client to repeat under an
// Idempotency-Key header: the first request runs; a repeat of it (same
// owner, key, method, path and body, whichever of the owner's API keys
// sends it, so that rotating keys does not act twice) gets the first answer again, marked
// Idempotent-Replayed: true; the key with another request gets 422, and a
// repeat while the first still runs gets 409. Without the header the request
// runs as it is.
//
// The in-progress marker is committed in its own statement before the
// handler runs, not in the handler's transaction: a marker inside that
// transaction would be invisible to the concurrent repeats it exists to stop
// (they would block on the unique key until it commits, then find the answer
// already written or nothing at all, depending on timing). The answer to a
// request that changes something is the other way round: the handler stores
// it in the transaction of its change (answerInTx), the atomic phases of
// Stripe's idempotency keys, so the change and its answer commit together
// and a lost COMMIT acknowledgement cannot turn one cancel into two.
//
// 2xx and 4xx answers are kept: a 4xx is the answer to that request, and
// repeating it must not give a different one. A 5xx is not: the marker is
// deleted, if no answer was committed under it, so the client can retry under
// the same key. A marker left by a process that died mid-request is taken
// over once it is older than any live request can be.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		values := req.Header.Values(headerIdempotencyKey)
		if len(values) == 0 {
			return next(c)
		}
		if len(values) > 1 || !validIdempotencyKey(values[0]) {
			return invalid(payment.CodeInvalidRequest, fmt.Sprintf(
				"the %s header must be given once, as 1 to %d printable ASCII characters", headerIdempotencyKey, maxIdempotencyKeyLen))
		}
		cl, ok := clientOf(c)
		if !ok {
			// Keys are scoped per owner; a route without authentication has
			// none. A wiring mistake, not the client's.
			return errors.New("error handling Idempotency-Key: the route does not authenticate")
		}

		// The body is read here to hash it and handed on to the handler.
		// The size limit applies now, so an oversized body leaves no record.
		body, err := s.readBody(c)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))

		ctx := req.Context()
		now := s.now()
		s.sweepIdempotencyKeys(c, now)
		hash := requestHash(req.Method, req.URL.EscapedPath(), body)
		rec, claimed, err := s.store.ClaimIdempotencyKey(ctx, s.pool, store.IdempotencyRecord{
			Scope: cl.idempotencyScope(), ClientID: cl.keyID, Key: values[0], RequestHash: hash, CreatedAt: now, ExpiresAt: now.Add(s.idempotencyTTL),
		}, now.Add(-s.idempotencyStaleAfter))
		if err != nil {
			return fmt.Errorf("error claiming idempotency key: %w", err)
		}
		if !claimed {
			return replay(c, rec, hash)
		}
		return s.runOnce(c, next, rec)
	}
}

// validIdempotencyKey accepts 1 to maxIdempotencyKeyLen printable ASCII
// characters.
func validIdempotencyKey(key string) bool {
	if key == "" || len(key) > maxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestHash identifies a request for idempotency: method, path and the
// raw body bytes. Raw, not re-encoded: a client that sends other bytes sent
// another request, even if they decode to the same values.
func requestHash(method, path string, body []byte) []byte {
	h := sha256.New()
	// Neither a method nor an escaped path contains a newline, so the
	// separators keep the parts apart.
	h.Write([]byte(method + "\n" + path + "\n"))
	h.Write(body)
	return h.Sum(nil)
}

// replay answers a request whose key is held by rec.
func replay(c echo.Context, rec store.IdempotencyRecord, hash []byte) error {
	if !bytes.Equal(rec.RequestHash, hash) {
		return &problemError{
			status: http.StatusUnprocessableEntity,
			code:   codeIdempotencyKeyReused,
			detail: "this Idempotency-Key was used for a request with another method, path or body; use a new key for a new request",
		}
	}
	if rec.InProgress() {
		return &problemError{
			status: http.StatusConflict,
			code:   codeIdempotencyInProgress,
			detail: "the first request with this Idempotency-Key has not finished; send this one again in a moment",
			header: map[string]string{"Retry-After": "1"},
		}
	}
	if id := replayedPaymentID(rec); id != "" {
		setPaymentID(c, id)
	}
	h := c.Response().Header()
	for _, k := range replayedHeaders {
		if v, ok := rec.Header[k]; ok {
			h.Set(k, v)
		}
	}
	h.Set(headerIdempotentReplayed, "true")
	c.Response().WriteHeader(rec.Status)
	if _, err := c.Response().Write(rec.Body); err != nil {
		return fmt.Errorf("error writing replayed response: %w", err)
	}
	return nil
}

// replayedPaymentID returns the id of the payment a kept answer shows, so the
// replay's log lines name it like the first answer's did; "" for an answer
// that shows none (a problem).
func replayedPaymentID(rec store.IdempotencyRecord) string {
	if rec.Status < 200 || rec.Status > 299 {
		return ""
	}
	var body struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(rec.Body, &body) != nil {
		return ""
	}
	if _, err := uuid.Parse(body.ID); err != nil {
		return ""
	}
	return body.ID
}

// runOnce runs the handler for a claimed key, capturing its answer, and then
// keeps the answer or releases the marker.
func (s *Server) runOnce(c echo.Context, next echo.HandlerFunc, rec store.IdempotencyRecord) error {
	res := c.Response()
	capture := &capturingWriter{ResponseWriter: res.Writer, limit: maxStoredResponse}
	res.Writer = capture
	finished := false
	defer func() {
		res.Writer = capture.ResponseWriter
		if !finished {
			// A panic is unwinding (recoverPanic turns it into a 500): no
			// answer worth keeping, and the client may retry.
			s.releaseIdempotencyKey(c, rec)
		}
	}()

	cl := &claim{rec: rec}
	c.Set(ctxKeyClaim, cl)
	if err := next(c); err != nil {
		// Answered here rather than by the access log's c.Error, so that
		// the answer exists to be kept.
		c.Error(err)
	}
	finished = true

	switch {
	case cl.keptInTx && res.Status < http.StatusInternalServerError:
		// Stored by the handler in the transaction of its change.
		return nil
	case !res.Committed || res.Status >= http.StatusInternalServerError:
		// The release deletes only a marker with no answer: a handler whose
		// COMMIT went through but whose acknowledgement was lost stored its
		// answer in that transaction, and that answer stays to be replayed.
		s.releaseIdempotencyKey(c, rec)
		return nil
	case capture.overflow:
		loggerOf(c, s.logger).Warn("answer too large to keep for Idempotency-Key replays",
			slog.Int64("bytes", res.Size))
		s.releaseIdempotencyKey(c, rec)
		return nil
	}

	rec.Status = res.Status
	rec.Body = capture.body.Bytes()
	rec.Header = make(map[string]string, len(replayedHeaders))
	for _, k := range replayedHeaders {
		if v := res.Header().Get(k); v != "" {
			rec.Header[k] = v
		}
	}
	var kept bool
	err := s.finish(c, func(ctx context.Context) error {
		var err error
		kept, err = s.store.CompleteIdempotencyKey(ctx, s.pool, rec)
		return err
	})
	switch {
	case err != nil:
		loggerOf(c, s.logger).Error("error keeping the answer for an Idempotency-Key", slog.String("error", err.Error()))
		// Better no record than a marker that says "in progress" until it
		// goes stale.
		s.releaseIdempotencyKey(c, rec)
	case !kept:
		loggerOf(c, s.logger).Warn("Idempotency-Key marker was taken over before the answer was kept")
	}
	return nil
}

// releaseIdempotencyKey deletes a marker this request claimed.
func (s *Server) releaseIdempotencyKey(c echo.Context, rec store.IdempotencyRecord) {
	err := s.finish(c, func(ctx context.Context) error {
		return s.store.ReleaseIdempotencyKey(ctx, s.pool, rec)
	})
	if err != nil {
		// It goes stale and is taken over in time; until then repeats of
		// this request get 409.
		loggerOf(c, s.logger).Error("error releasing an Idempotency-Key marker", slog.String("error", err.Error()))
	}
}

// finish runs op, the write that ends a claim, until it succeeds or
// finishTimeout passes. Its context is detached from the request's: a
// client that hung up, or a request that hit its deadline, must still not
// leave its marker "in progress". It retries because the failure that
// turned the request into a 5xx is often the database going away for a
// moment, and a release that waits a second for it to return spares the
// client a 409 until the marker goes stale.
func (s *Server) finish(c echo.Context, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), finishTimeout)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// sweepIdempotencyKeys starts a sweep of the expired records, at most once
// per sweepInterval per Server, and returns at once: the request that
// happens to start it does not wait for it.
//
// Why here: a periodic job belongs to the relay (River's periodic jobs run
// on the elected leader, which the insert-only API never is), but the
// records are the api's; a sweep started by the traffic that makes them
// keeps up with it. It deletes in batches of sweepBatch rows, one statement
// and transaction each (store.SweepExpiredIdempotencyKeys), so a backlog of
// any size (an api that was down for a day, a client that sent millions of
// keys) never holds one long transaction or many row locks; it stops after
// sweepTimeout, and when the Server is closed. Expired records the sweep has
// not reached yet are harmless: a claim takes an expired record over.
func (s *Server) sweepIdempotencyKeys(c echo.Context, now time.Time) {
	last := s.lastSweep.Load()
	if last != 0 && now.UnixNano()-last < int64(sweepInterval) {
		return
	}
	if s.sweepCtx.Err() != nil {
		return // closed
	}
	if !s.sweeping.CompareAndSwap(false, true) {
		return // one is running; a request after it ends starts the next
	}
	s.lastSweep.Store(now.UnixNano())
	logger := loggerOf(c, s.logger)
	s.sweeps.Go(func() {
		defer s.sweeping.Store(false)
		ctx, cancel := context.WithTimeout(s.sweepCtx, sweepTimeout)
		defer cancel()
		n, err := s.store.SweepExpiredIdempotencyKeys(ctx, s.pool, now, sweepBatch)
		if err != nil && s.sweepCtx.Err() == nil {
			logger.Warn("error sweeping expired Idempotency-Key records", slog.Int64("deleted", n), slog.String("error", err.Error()))
			return
		}
		if n > 0 {
			logger.Debug("swept expired Idempotency-Key records", slog.Int64("deleted", n))
		}
	})
}

// capturingWriter passes a response through and keeps a copy of its body,
// up to limit bytes.
type capturingWriter struct {
	http.ResponseWriter
	limit    int
	body     bytes.Buffer
	overflow bool
}

// Write implements http.ResponseWriter.
func (w *capturingWriter) Write(b []byte) (int, error) {
	if !w.overflow {
		if w.body.Len()+len(b) > w.limit {
			w.overflow = true
			w.body = bytes.Buffer{}
		} else {
			w.body.Write(b)
		}
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *capturingWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
