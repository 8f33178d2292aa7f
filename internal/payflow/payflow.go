// Package payflow holds the payment outbox's use cases: the transaction
// scripts that lock a payment, ask the domain (internal/payment) what
// changes, save it through the store and put the follow-up job into the
// outbox, all on the caller's transaction. The api's handlers and the
// relay's workers both call it, so lock order ("payment, then its cancel")
// and "enqueue in the same transaction" are written once.
//
// The caller owns the transaction: the api commits it with the client's
// Idempotency-Key answer, the relay with its River job's completion. Nothing
// here makes a network call. docs/design.md describes the states and the
// rules these scripts follow.
package payflow

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// Outbox puts a job into the outbox on the caller's transaction. An
// insert-only *river.Client[pgx.Tx] satisfies it; so does the relay's
// ClientFromContext adapter.
type Outbox interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Flow runs the use cases.
type Flow struct {
	store   *store.Store
	outbox  Outbox
	retrier JobRetrier
	now     func() time.Time
	newID   func() string
	recheck payment.Recheck
	deposit payment.DepositSchedule
	// portOneMode decides whether a PortOne confirm carries a paymentToken.
	portOneMode payment.PortOneConfirmMode
	// lookupEvery is the interval of the one-lookup-per-interval rule for
	// webhooks' lookups (RequestLookup).
	lookupEvery time.Duration
	// answers are the gateway answers the first payment lock of this
	// Flow's use cases writes in its round trip (Answering); nil for the
	// api's Flow.
	answers *store.Answers
}

// Config is what a Flow needs; Store and Outbox are required.
type Config struct {
	Store  *store.Store
	Outbox Outbox
	// Now is the clock for the times the domain records; time.Now when nil.
	Now func() time.Time
	// NewID makes ids for compensating cancels; a UUIDv7 when nil.
	NewID func() string
	// Retrier runs outbox jobs again for the operator actions Retry and
	// RetryJob; optional (the relay takes no operator actions).
	Retrier JobRetrier
	// Recheck is how long, and how often, a provisional record is looked
	// up again (payment.Payment.RestsOnAbsence); payment.DefaultRecheck
	// when its Window is zero.
	Recheck payment.Recheck
	// Deposit is how often a payment waiting for its deposit is looked up
	// and how long after its due date it may expire;
	// payment.DefaultDepositSchedule when its Far is zero.
	Deposit payment.DepositSchedule
	// PortOneConfirmMode is the deployment's PORTONE_CONFIRM_MODE; browser
	// when empty. Confirm requires a paymentToken for PortOne in manual.
	PortOneConfirmMode payment.PortOneConfirmMode
	// WebhookLookupInterval is the deployment's WEBHOOK_LOOKUP_INTERVAL:
	// gateway webhooks make at most one lookup of a payment per interval
	// (RequestLookup); DefaultWebhookLookupInterval when zero. The api and
	// the relay must be given the same one: the relay's follow-ups take
	// their place under the same rule.
	WebhookLookupInterval time.Duration
}

// New returns a Flow.
func New(cfg Config) (*Flow, error) {
	if cfg.Store == nil || cfg.Outbox == nil {
		return nil, fmt.Errorf("payflow needs a Store and an Outbox")
	}
	f := &Flow{store: cfg.Store, outbox: cfg.Outbox, retrier: cfg.Retrier, now: cfg.Now, newID: cfg.NewID,
		recheck: cfg.Recheck, deposit: cfg.Deposit, portOneMode: cfg.PortOneConfirmMode, lookupEvery: cfg.WebhookLookupInterval}
	if f.lookupEvery != 0 && f.lookupEvery < time.Second {
		return nil, fmt.Errorf("payflow needs a WebhookLookupInterval of at least a second, not %s", f.lookupEvery)
	}
	if f.lookupEvery == 0 {
		f.lookupEvery = DefaultWebhookLookupInterval
	}
	if f.deposit.Far <= 0 {
		f.deposit = payment.DefaultDepositSchedule
	}
	if f.recheck.Window <= 0 {
		f.recheck = payment.DefaultRecheck
	}
	if f.portOneMode == "" {
		f.portOneMode = payment.PortOneConfirmBrowser
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.newID == nil {
		f.newID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	return f, nil
}

// Answering returns a Flow for one outcome transaction: its use cases'
// first payment lock writes a's answers (the gateway answers the outcome is
// concluded from) in the lock's own round trip, so the outcome and its
// answers commit together at no extra round trip (docs/design.md section
// 3). Answers no lock wrote are the caller's to write before it commits
// (store.WriteAnswers). The Flow is for that transaction only.
func (f *Flow) Answering(a *store.Answers) *Flow {
	g := *f
	g.answers = a
	return &g
}

// PaymentForUpdate locks a payment for the use cases that take it locked
// (Settle, ApplyCancelDecision), writing the Flow's answers (Answering) in
// the lock's round trip.
func (f *Flow) PaymentForUpdate(ctx context.Context, tx pgx.Tx, paymentID string) (payment.Payment, error) {
	p, _, err := f.store.LockPayment(ctx, tx, paymentID, store.Lock{Answers: f.answers})
	return p, err
}

// lockWithOpenCancels locks a payment and reads its open cancels once the
// lock is held, writing the Flow's answers first: one round trip.
func (f *Flow) lockWithOpenCancels(ctx context.Context, tx pgx.Tx, paymentID string) (payment.Payment, []payment.Cancel, error) {
	return f.store.LockPayment(ctx, tx, paymentID, store.Lock{OpenCancels: true, Answers: f.answers})
}

// lockWithCancel locks a payment, then one cancel of it, writing the Flow's
// answers first: one round trip.
func (f *Flow) lockWithCancel(ctx context.Context, tx pgx.Tx, paymentID, cancelID string) (payment.Payment, payment.Cancel, error) {
	p, cs, err := f.store.LockPayment(ctx, tx, paymentID, store.Lock{CancelID: cancelID, Answers: f.answers})
	if err != nil {
		return p, payment.Cancel{}, err
	}
	return p, cs[0], nil
}

// Change says what a use case did to a payment, for the caller's metrics and
// log lines (which it emits once the transaction has committed).
type Change struct {
	// From and To are the payment's status before and after; equal when
	// nothing moved.
	From, To payment.Status
	// Applied is false when the payment was no longer in a state the use
	// case acts on (another run or a lookup got there first): nothing was
	// written.
	Applied bool
	// Compensation is the compensating cancel the change enqueued, if any.
	Compensation *payment.Cancel
	// KeyRotated says the operation moved to a new Idempotency-Key.
	KeyRotated bool
	// Note explains a key change, a resend or an adopted refund; a key
	// change's and a resend's are written on the lookup's attempt row.
	Note string
}

func (f *Flow) enqueue(ctx context.Context, tx pgx.Tx, args river.JobArgs) error {
	if _, err := f.outbox.InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("error enqueuing %s job: %w", args.Kind(), err)
	}
	return nil
}

// ManyOutbox is an Outbox that also puts several jobs into the outbox in one
// insert (a *river.Client[pgx.Tx] does); Flow uses it when its Outbox has it.
type ManyOutbox interface {
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// enqueueMany puts jobs into the outbox: in one insert when the Outbox can.
func (f *Flow) enqueueMany(ctx context.Context, tx pgx.Tx, jobs []river.InsertManyParams) error {
	if len(jobs) == 0 {
		return nil
	}
	if m, ok := f.outbox.(ManyOutbox); ok && len(jobs) > 1 {
		if _, err := m.InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("error enqueuing %d %s jobs: %w", len(jobs), jobs[0].Args.Kind(), err)
		}
		return nil
	}
	for _, j := range jobs {
		if _, err := f.outbox.InsertTx(ctx, tx, j.Args, j.InsertOpts); err != nil {
			return fmt.Errorf("error enqueuing %s job: %w", j.Args.Kind(), err)
		}
	}
	return nil
}

// enqueueCancel puts a pending cancel's job into the outbox.
func (f *Flow) enqueueCancel(ctx context.Context, tx pgx.Tx, c payment.Cancel) error {
	return f.enqueue(ctx, tx, paymentjob.CancelArgs{PaymentID: c.PaymentID, CancelID: c.ID})
}
