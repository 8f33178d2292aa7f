// Package relay drains the payment outbox: River workers that call the gateway
// to confirm and cancel payments, record every call as an attempt, and commit
// each outcome together with the job's completion.
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
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
	if err := river.AddWorkerSafely(workers, &ConfirmWorker{r: r}); err != nil {
		return fmt.Errorf("error adding confirm worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &CancelWorker{r: r}); err != nil {
		return fmt.Errorf("error adding cancel worker: %w", err)
	}
	return nil
}

func newRelay(cfg Config) (*relay, error) {
	if cfg.Pool == nil || cfg.Store == nil || cfg.Gateway == nil {
		return nil, fmt.Errorf("relay config needs Pool, Store and Gateway")
	}
	r := &relay{
		pool: cfg.Pool, store: cfg.Store, gateway: cfg.Gateway, log: cfg.Logger,
		schedule: cfg.Schedule, now: cfg.Now, newID: cfg.NewID,
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
	return r, nil
}

// call makes one gateway call between two attempt writes: the first is
// committed before the call, so a relay that dies mid-call still leaves the
// fact that the gateway may have acted; the second records the answer.
func (r *relay) call(ctx context.Context, a payment.Attempt, do func(context.Context) gateway.Result) (gateway.Result, gateway.Class, error) {
	a.RequestedAt = r.now()
	id, err := r.store.StartAttempt(ctx, r.pool, a)
	if err != nil {
		// No call without its record.
		return gateway.Result{}, "", fmt.Errorf("error recording attempt start: %w", err)
	}
	res := do(ctx)
	class := gateway.Classify(res)

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
	if err := r.store.FinishAttempt(wctx, r.pool, a); err != nil {
		return res, class, fmt.Errorf("error recording attempt result: %w", err)
	}
	r.log.LogAttrs(ctx, logLevel(class), "gateway call",
		slog.String("payment_id", a.PaymentID),
		slog.String("operation", string(a.Operation)),
		slog.String("idempotency_key", a.IdempotencyKey),
		slog.Int("http_status", res.HTTPStatus),
		slog.String("code", res.Code),
		slog.String("class", string(class)),
		slog.Duration("latency", res.Latency),
		slog.Int64("job_id", a.JobID),
		slog.Int("job_attempt", a.JobAttempt),
	)
	return res, class, nil
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
// outcomeTimeout).
func (r *relay) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	return pgx.BeginFunc(wctx, r.pool, func(tx pgx.Tx) error { return fn(wctx, tx) })
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
