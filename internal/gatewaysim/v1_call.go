package gatewaysim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// maxBodyBytes bounds a /v1 request body; Toss's are a few hundred bytes.
const maxBodyBytes = 64 << 10

// serveV1 runs one /v1 call through the gateway's front door in the order a
// real gateway would meet it: availability, authentication, the idempotency
// store, then the (possibly scripted or faulty) processing. perform does the
// operation itself and gets the Idempotency-Key (empty when none) so refunds
// can be booked under it.
//
// Nothing here reads the request's context: a gateway keeps processing a call
// whose client gave up (timed out during latency or a hold), which is exactly
// the "timed out but charged" case the relay must survive.
func (s *Simulator) serveV1(w http.ResponseWriter, r *http.Request, op Operation, paymentKey string, perform func(idempotencyKey string) response) {
	s.serve(w, r, tossAPI{s}, op, paymentKey, perform)
}

// serve is serveV1 for either API: d speaks its authentication, its
// Idempotency-Key and its error bodies; the faults, holds, idempotency
// store and request log are the same for both.
func (s *Simulator) serve(w http.ResponseWriter, r *http.Request, d dialect, op Operation, paymentKey string, perform func(idempotencyKey string) response) {
	epoch := s.epoch.Load()
	idemKey, badKey := d.idempotencyKey(r)
	rec := RequestRecord{
		At:              s.now(),
		Gateway:         d.gateway(),
		Method:          r.Method,
		Path:            r.URL.Path,
		Operation:       op,
		PaymentKey:      paymentKey,
		IdempotencyKey:  idemKey,
		AuthorizationOK: d.authorized(r),
	}
	finish := func(res response, outcome string) {
		rec.HTTPStatus, rec.Code, rec.Outcome = res.status, res.code, outcome
		s.requests.append(rec)
		s.logCall(r.Context(), rec)
	}
	answer := func(res response, outcome string) {
		res.write(w)
		finish(res, outcome)
	}

	cfg := s.faults.current()
	if cfg.downAt(rec.At) {
		answer(d.down(), OutcomeInjected)
		return
	}
	if !rec.AuthorizationOK {
		answer(d.unauthorized(), OutcomeRejected)
		return
	}

	// Idempotency applies to POSTs only; both gateways ignore the header on
	// lookups.
	var (
		ikey   idempotencyKey
		ticket *idempotencyEntry
	)
	if r.Method == http.MethodPost && (rec.IdempotencyKey != "" || badKey != nil) {
		if badKey != nil {
			answer(*badKey, OutcomeRejected)
			return
		}
		ikey = idempotencyKey{gateway: d.gateway(), secretKey: d.keySpace(), key: rec.IdempotencyKey}
		entry, result := s.idem.begin(ikey, rec.At)
		switch result {
		case beginReplay:
			answer(entry.res, OutcomeReplayed)
			return
		case beginInFlight:
			// Also what a retry of a held call gets until the hold ends.
			answer(d.inFlight(), OutcomeRejected)
			return
		case beginProcess:
			ticket = entry
			// Releases the key if nothing gets stored (an injected error, a
			// panic); a no-op once the response is stored.
			defer s.idem.abandon(ikey, ticket)
		}
	}

	// A front-door rule, like the idempotency store: checked when the call
	// arrives, before a script step or a fault is spent on it.
	if op == OperationCancel && d.consecutiveCancelRule() && !s.cancels.admit(paymentKey, rec.At, cfg.ConsecutiveCancelWindow.std()) {
		res := newError(CodeForbiddenConsecutiveRequest, "a cancel for this payment arrived less than %s ago; try again shortly",
			cfg.ConsecutiveCancelWindow.std()).response()
		// Stored only as injected errors are (see ConsecutiveCancelWindow).
		if ticket != nil && cfg.ReplayCachedErrors {
			s.idem.complete(ikey, ticket, res, s.now())
		}
		answer(res, OutcomeRejected)
		return
	}

	step, scripted := s.scripts.next(paymentKey, op)
	delay := s.faults.latency()
	if scripted && step.Kind == StepDelay {
		delay += step.Delay.std()
	}
	s.sleep(delay)

	var (
		injected *Error
		lost     bool
		held     bool
		holdFor  time.Duration
	)
	switch {
	case scripted:
		switch step.Kind {
		case StepError:
			injected = step.injectedError()
		case StepLost:
			lost = true
		}
	case op != OperationLookup && op != OperationList:
		if code, ok := s.faults.drawError(); ok {
			injected = newError(code, "injected fault")
		} else if holdFor, held = s.faults.drawHold(); !held {
			lost = s.faults.drawLost()
		}
	}

	if injected != nil {
		res := d.fault(injected)
		// Read now, not at the start: a test may flip it while a call sleeps.
		if ticket != nil && s.faults.current().ReplayCachedErrors {
			s.idem.complete(ikey, ticket, res, s.now())
		}
		answer(res, OutcomeInjected)
		return
	}

	outcome := OutcomeProcessed
	switch {
	case held:
		// The key stays in flight for the whole hold (the ticket is only
		// completed below), which is what answers its retries with 409.
		s.holding.Add(1)
		s.sleep(holdFor)
		s.holding.Add(-1)
		outcome = OutcomeHeld
	case lost:
		outcome = OutcomeLost
	}

	res, ok := s.performOnce(epoch, func() response {
		res := perform(rec.IdempotencyKey)
		if ticket != nil {
			s.idem.complete(ikey, ticket, res, s.now())
		}
		// Logged before the answer is written, so a client that reads the
		// request log after its answer finds the call there.
		rec.HTTPStatus, rec.Code, rec.Outcome = res.status, res.code, outcome
		s.requests.append(rec)
		return res
	})
	if !ok {
		errorWithStatus(http.StatusServiceUnavailable, CodeFailedInternalSystemProcessing,
			"the simulator was reset while this call was in progress; nothing was performed").response().write(w)
		return
	}
	s.logCall(r.Context(), rec)
	if lost {
		dropConnection(w)
		return
	}
	res.write(w)
}

// performOnce runs f unless the simulator was reset since epoch, and reports
// whether it ran. Reset waits for f, so what f performs, stores and logs all
// lands in the gateway the call arrived at, or none of it does.
func (s *Simulator) performOnce(epoch uint64, f func() response) (response, bool) {
	s.resetMu.RLock()
	defer s.resetMu.RUnlock()
	if s.epoch.Load() != epoch {
		return response{}, false
	}
	return f(), true
}

// dropConnection closes the client's connection without an answer, as a
// gateway whose response is lost on the way back looks to the client.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): aborting the handler resets the stream,
		// which the client sees the same way.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		// A reset rather than a clean close: the client must not mistake
		// it for the end of a response.
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// readBody reads a bounded request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("error reading request body: %w", err)
	}
	return body, nil
}

func (s *Simulator) logCall(ctx context.Context, rec RequestRecord) {
	level := slog.LevelDebug
	if rec.Outcome == OutcomeInjected || rec.Outcome == OutcomeLost {
		level = slog.LevelInfo
	}
	s.logger.LogAttrs(ctx, level, "gateway call",
		slog.String("operation", string(rec.Operation)),
		slog.String("method", rec.Method),
		slog.String("path", rec.Path),
		slog.String("payment_key", rec.PaymentKey),
		slog.String("idempotency_key", rec.IdempotencyKey),
		slog.Int("status", rec.HTTPStatus),
		slog.String("code", rec.Code),
		slog.String("outcome", rec.Outcome),
	)
}
