// Package relay drains the payment outbox: River workers that call the gateway
// to confirm and cancel payments, record every call as an attempt, and commit
// each outcome together with the job's completion.
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// Gateway is what the relay needs of the payment gateway; *gateway.Client
// implements it.
type Gateway interface {
	Confirm(ctx context.Context, req gateway.ConfirmRequest, idempotencyKey string) gateway.Result
	Cancel(ctx context.Context, paymentKey string, req gateway.CancelRequest, idempotencyKey string) gateway.Result
	Lookup(ctx context.Context, paymentKey string) gateway.Result
}

// Config is what the relay's workers need.
type Config struct {
	Pool     *pgxpool.Pool
	Store    *store.Store
	Gateway  Gateway
	Logger   *slog.Logger
	Schedule Schedule
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// NewID makes ids for compensating cancels; uuid.NewString when nil.
	NewID func() string
	// Breaker guards the gateway; a default one when nil.
	Breaker *Breaker
	// ReconcileAfter is how long a payment may sit in confirming,
	// canceling or unknown before the reconciler asks the gateway (5m).
	ReconcileAfter time.Duration
	// Metrics counts gateway calls, retries, snoozes, key rotations,
	// outcomes and reconciler lookups; nil counts nothing. Give the
	// Breaker the same one (BreakerConfig.Metrics) for its state.
	Metrics *metrics.Relay
}

// relay holds what both workers share.
type relay struct {
	pool     *pgxpool.Pool
	store    *store.Store
	gateway  Gateway
	log      *slog.Logger
	schedule Schedule
	now      func() time.Time
	newID    func() string
	breaker  *Breaker
	// reconcileAfter: see Config.ReconcileAfter.
	reconcileAfter time.Duration
	metrics        *metrics.Relay
}

// outcomeTimeout bounds the transaction that records an outcome. It runs on a
// context detached from the job's, so a shutdown that cancels the job after
// the gateway answered does not throw the answer away.
const outcomeTimeout = 15 * time.Second

// AddWorkers registers the confirm and cancel workers.
func AddWorkers(workers *river.Workers, cfg Config) error {
	r, err := newRelay(cfg)
	if err != nil {
		return err
	}
	if err := river.AddWorkerSafely(workers, &ConfirmWorker{worker[paymentjob.ConfirmArgs]{r: r}}); err != nil {
		return fmt.Errorf("error adding confirm worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &CancelWorker{worker[paymentjob.CancelArgs]{r: r}}); err != nil {
		return fmt.Errorf("error adding cancel worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &LookupWorker{worker[paymentjob.LookupArgs]{r: r}}); err != nil {
		return fmt.Errorf("error adding lookup worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &ReconcileWorker{r: r}); err != nil {
		return fmt.Errorf("error adding reconcile worker: %w", err)
	}
	return nil
}

func newRelay(cfg Config) (*relay, error) {
	if cfg.Pool == nil || cfg.Store == nil || cfg.Gateway == nil {
		return nil, fmt.Errorf("relay config needs Pool, Store and Gateway")
	}
	r := &relay{
		pool: cfg.Pool, store: cfg.Store, gateway: cfg.Gateway, log: cfg.Logger,
		schedule: cfg.Schedule, now: cfg.Now, newID: cfg.NewID, breaker: cfg.Breaker,
		reconcileAfter: cfg.ReconcileAfter, metrics: cfg.Metrics,
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.schedule.Initial <= 0 || r.schedule.Max <= 0 {
		r.schedule = DefaultSchedule
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.newID == nil {
		r.newID = newUUID
	}
	if r.breaker == nil {
		r.breaker = NewBreaker(BreakerConfig{Now: r.now, Logger: r.log, Metrics: r.metrics})
	}
	if r.reconcileAfter <= 0 {
		r.reconcileAfter = 5 * time.Minute
	}
	return r, nil
}

// worker is what the payment workers share: River's defaults, the relay,
// and the relay's retry schedule in place of River's.
type worker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	r *relay
}

// NextRetry spaces the attempts after transient answers by the relay's
// schedule.
func (w *worker[T]) NextRetry(job *river.Job[T]) time.Time {
	return w.r.now().Add(w.r.schedule.Delay(job.Attempt))
}

// callResult is one gateway call as the relay saw it.
type callResult struct {
	gateway.Result
	Class     gateway.Class
	AttemptID int64
}

// call makes one gateway call between two attempt writes: the first is
// committed before the call, so a relay that dies mid-call still leaves the
// fact that the gateway may have acted; the second records the answer.
//
// While the circuit breaker is open nothing is called or recorded, and the
// error is a River snooze: the job waits without spending an attempt.
func (r *relay) call(ctx context.Context, a payment.Attempt, do func(context.Context) gateway.Result) (callResult, error) {
	permit, ok, wait := r.breaker.Allow()
	if !ok {
		r.metrics.Snooze(a.Operation, metrics.SnoozeBreakerOpen)
		return callResult{}, river.JobSnooze(wait + jitter(wait))
	}
	a.RequestedAt = r.now()
	id, err := r.store.StartAttempt(ctx, r.pool, a)
	if err != nil {
		// No call without its record. If the breaker let us through as its
		// probe, nothing was learned: let another caller probe.
		r.breaker.Abandon(permit)
		return callResult{}, fmt.Errorf("error recording attempt start: %w", err)
	}
	// The wall clock, not r.now: a latency must be real even when a test
	// drives the relay's clock.
	start := time.Now()
	res := do(ctx)
	elapsed := time.Since(start)
	class := gateway.Classify(res)
	r.breaker.Record(permit, res, class)
	r.metrics.GatewayCall(a.Operation, class, elapsed)

	finished := r.now()
	a.ID = id
	a.FinishedAt = &finished
	a.Latency = res.Latency
	a.HTTPStatus = res.HTTPStatus
	a.GatewayCode = res.Code
	a.GatewayMessage = res.Message
	a.Classification = string(class)
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	cr := callResult{Result: res, Class: class, AttemptID: id}
	if err := r.store.FinishAttempt(wctx, r.pool, a); err != nil {
		return cr, fmt.Errorf("error recording attempt result: %w", err)
	}
	// payment_id and job_id come with the job's logger (see withJob).
	r.logger(ctx).LogAttrs(ctx, logLevel(class), "gateway call",
		slog.String("operation", string(a.Operation)),
		slog.String("idempotency_key", a.IdempotencyKey),
		slog.Int("http_status", res.HTTPStatus),
		slog.String("code", res.Code),
		slog.String("class", string(class)),
		slog.Duration("latency", res.Latency),
		slog.Int64("attempt_id", id),
	)
	return cr, nil
}

// jitter spreads the snoozes of many jobs stopped by the breaker at once, so
// they do not all come back in the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)/4 + 1))
}

// sameAnswerAgain reports whether the gateway answered this call exactly as
// it answered the previous call under the same key: a transient answer that
// the gateway may be replaying from its idempotency store rather than
// producing anew.
func (r *relay) sameAnswerAgain(ctx context.Context, c callResult, paymentID string, op payment.Operation, key string) (bool, error) {
	if c.HTTPStatus == 0 {
		// No answer at all (network error, timeout) is not a replay.
		return false, nil
	}
	attempts, err := r.store.Attempts(ctx, r.pool, paymentID)
	if err != nil {
		return false, err
	}
	for i := len(attempts) - 1; i >= 0; i-- {
		a := attempts[i]
		if a.ID == c.AttemptID || a.Operation != op || a.IdempotencyKey != key {
			continue
		}
		return a.HTTPStatus == c.HTTPStatus && a.GatewayCode == c.Code, nil
	}
	return false, nil
}

func logLevel(c gateway.Class) slog.Level {
	switch c {
	case gateway.ClassSuccess:
		return slog.LevelDebug
	case gateway.ClassMisconfigured:
		return slog.LevelError
	case gateway.ClassTransient, gateway.ClassUnclear:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// inTx runs fn in a transaction on a context detached from the job's (see
// outcomeTimeout). What fn hands to onCommit runs once the transaction has
// committed, and not at all if it rolls back.
func (r *relay) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	var committed []func()
	wctx = context.WithValue(wctx, ctxKeyOnCommit{}, &committed)
	if err := pgx.BeginFunc(wctx, r.pool, func(tx pgx.Tx) error { return fn(wctx, tx) }); err != nil {
		return err
	}
	for _, f := range committed {
		f()
	}
	return nil
}

// ctxKeyOnCommit carries the functions to run after inTx's commit.
type ctxKeyOnCommit struct{}

// onCommit runs f after the transaction of ctx (see inTx) commits: for the
// metrics and log lines that say something was recorded, which must not
// count a write that was rolled back (the job then runs again and records
// it once). Outside inTx, f runs at once.
func (r *relay) onCommit(ctx context.Context, f func()) {
	if fs, ok := ctx.Value(ctxKeyOnCommit{}).(*[]func()); ok {
		*fs = append(*fs, f)
		return
	}
	f()
}

// outcomeOnCommit counts, once committed, a payment status change the relay
// made.
func (r *relay) outcomeOnCommit(ctx context.Context, from, to payment.Status) {
	if from == to {
		return
	}
	r.onCommit(ctx, func() { r.metrics.Outcome(to) })
}

// approvalOf converts the gateway's Payment into the domain's Approval.
func approvalOf(gp *gateway.Payment) payment.Approval {
	return payment.Approval{
		OrderID:       gp.OrderID,
		TotalAmount:   gp.TotalAmount,
		BalanceAmount: gp.BalanceAmount,
		Method:        gp.Method,
		ApprovedAt:    gp.ApprovedAt,
	}
}

// lastTransactionKey names the gateway transaction of the newest cancel.
func lastTransactionKey(gp *gateway.Payment) string {
	if n := len(gp.Cancels); n > 0 {
		return gp.Cancels[n-1].TransactionKey
	}
	return gp.LastTransactionKey
}
