// Package relay drains the payment outbox: River workers that call the gateway
// to confirm and cancel payments, record every call as an attempt, and commit
// each outcome together with the job's completion.
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// Gateway is the one contract between the relay and a payment gateway; the
// relay holds one per gateway it serves and picks it by the payment's
// gateway. *toss.Client (Toss) and *portone.Client (PortOne V2)
// implement it; docs/design.md says how to add a third. Each method makes
// exactly one HTTP call: retries belong to the relay.
type Gateway interface {
	// Confirm makes the payment's charge definite, or says why not: Toss
	// approves the authenticated payment; PortOne, where the customer
	// already paid in the browser, reads the payment and verifies it
	// against the intent. idempotencyKey is the payment's confirm key.
	Confirm(ctx context.Context, req gateway.ConfirmRequest, idempotencyKey string) gateway.Result
	// Cancel refunds all or part of a payment, only if the gateway still
	// holds req.RefundableAmount (our balance): Toss's refundableAmount,
	// PortOne's currentCancellableAmount.
	Cancel(ctx context.Context, paymentKey string, req gateway.CancelRequest, idempotencyKey string) gateway.Result
	// Lookup reads the gateway's record of a payment.
	Lookup(ctx context.Context, paymentKey string) gateway.Result
	// Classify reads one of this gateway's answers by its own table.
	Classify(gateway.Result) gateway.Class
	// StillRunning reports whether an error code of this gateway says a
	// request under the Idempotency-Key may still be in progress (the key
	// rule never abandons a key on one).
	StillRunning(code string) bool
	// KeyRetention is how long the gateway keeps an Idempotency-Key's
	// answer, from the first request under it (its table's). Past it the
	// key protects nothing: the relay looks the payment up before it
	// sends under it again, never relying on a replay.
	KeyRetention() time.Duration
}

// Config is what the relay's workers need.
type Config struct {
	Pool  *pgxpool.Pool
	Store *store.Store
	// Gateways are the gateways this relay serves, by the name payments
	// record (payment.GatewayToss, payment.GatewayPortOne). A payment of a
	// gateway not here waits (its job snoozes, logged at error level) for
	// a relay that serves it.
	Gateways map[string]Gateway
	Logger   *slog.Logger
	Schedule Schedule
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// NewID makes ids for compensating cancels; uuid.NewString when nil.
	NewID func() string
	// Breakers guard the gateways, one each, so that one gateway's outage
	// does not stop the payments of another; a default one for a gateway
	// without.
	Breakers map[string]*Breaker
	// ReconcileAfter is how long a payment may sit in confirming,
	// canceling or unknown before the reconciler asks the gateway (5m).
	ReconcileAfter time.Duration
	// Metrics counts gateway calls, retries, snoozes, key rotations,
	// outcomes and reconciler lookups; nil counts nothing. Give the
	// Breaker the same one (BreakerConfig.Metrics) for its state.
	Metrics *metrics.Relay
	// KeyQuiet is the key rule's quiet period (gateway.KeyAbandonable): how
	// long after the last request under an Idempotency-Key the gateway is
	// certainly done with it. It must exceed the gateway call timeout;
	// DefaultKeyQuiet when zero.
	KeyQuiet time.Duration
	// Webhooks is how webhook deliveries are sent (WebhookWorker).
	Webhooks WebhookConfig
	// Recheck is how long, and how often, the relay looks up again a
	// payment whose record rests on not having seen money that the gateway
	// could still take without us (payment.Payment.RestsOnAbsence), and a
	// ready intent of such a gateway; payment.DefaultRecheck when its
	// Window is zero.
	Recheck payment.Recheck
	// WebhookLookupInterval is the deployment's WEBHOOK_LOOKUP_INTERVAL, as
	// the api's: a follow-up lookup for a webhook's request takes the
	// webhook's place under the one-lookup-per-interval rule
	// (payflow.LookupAnswered); payflow.DefaultWebhookLookupInterval when
	// zero.
	WebhookLookupInterval time.Duration
	// ReadySweepAfter is how old a ready intent of a gateway that charges
	// before our confirm (PortOne) must be before the reconciler looks it
	// up: the customer may have paid and the checkout never confirmed.
	// DefaultReadySweepAfter when zero.
	ReadySweepAfter time.Duration
	// Deposit is how often payments waiting for a virtual account's
	// deposit are looked up, and how long after the due date a lookup
	// showing no deposit ends them; payment.DefaultDepositSchedule when its
	// Far is zero.
	Deposit payment.DepositSchedule
	// OpenDeadline is how long after its confirm was requested a payment
	// the gateway still shows as not started (gateway.PhaseOpen, answered
	// as gateway.ClassPending: PortOne's READY) is given up as expired;
	// DefaultOpenDeadline when zero. A payment still pending in another way
	// (a deposit awaited) becomes unknown when its retries run out instead.
	OpenDeadline time.Duration
	// BooksWindow is how far back reconciliation lists each gateway's
	// books (BooksWorker); DefaultBooksWindow when zero. BooksLag is how
	// recent a transaction, theirs or ours, may be and not be compared yet;
	// DefaultBooksLag when zero.
	BooksWindow, BooksLag time.Duration
}

// DefaultOpenDeadline is Config.OpenDeadline when zero: the 10 minutes Toss
// gives a customer between authentication and confirm.
const DefaultOpenDeadline = 10 * time.Minute

// DefaultReadySweepAfter is Config.ReadySweepAfter when zero: long enough
// for a checkout that is going to confirm to have done so.
const DefaultReadySweepAfter = 10 * time.Minute

// DefaultKeyQuiet is the key rule's quiet period when Config.KeyQuiet is
// zero: the gateway client's default timeout plus a margin.
const DefaultKeyQuiet = 40 * time.Second

// gatewayEntry is one gateway the relay serves, with its own breaker.
type gatewayEntry struct {
	name    string
	gw      Gateway
	breaker *Breaker
}

// relay holds what both workers share.
type relay struct {
	pool     *pgxpool.Pool
	store    *store.Store
	gateways map[string]*gatewayEntry
	log      *slog.Logger
	schedule Schedule
	now      func() time.Time
	newID    func() string
	// openDeadline: see Config.OpenDeadline.
	openDeadline time.Duration
	// reconcileAfter: see Config.ReconcileAfter.
	reconcileAfter time.Duration
	metrics        *metrics.Relay
	keyQuiet       time.Duration
	// flow runs the transaction scripts every outcome goes through.
	flow *payflow.Flow
	// recheck and readySweepAfter: see Config; chargeFirst are the served
	// gateways that charge before our confirm, whose ready intents are
	// swept.
	recheck         payment.Recheck
	deposit         payment.DepositSchedule
	readySweepAfter time.Duration
	chargeFirst     []string
	// booksWindow, booksLag: see Config.BooksWindow.
	booksWindow, booksLag time.Duration
}

// outcomeTimeout bounds the transaction that records an outcome. It runs on a
// context detached from the job's, so a shutdown that cancels the job after
// the gateway answered does not throw the answer away.
const outcomeTimeout = 15 * time.Second

// AddWorkers registers the confirm, cancel, lookup, reconcile, books and
// webhook workers. Webhook deliveries run on their own queue, paymentjob.WebhookQueue,
// which the River client must work too.
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
	if err := river.AddWorkerSafely(workers, &BooksWorker{r: r}); err != nil {
		return fmt.Errorf("error adding books worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, newWebhookWorker(r, cfg.Webhooks)); err != nil {
		return fmt.Errorf("error adding webhook worker: %w", err)
	}
	return nil
}

func newRelay(cfg Config) (*relay, error) {
	if cfg.Pool == nil || cfg.Store == nil || len(cfg.Gateways) == 0 {
		return nil, fmt.Errorf("relay config needs Pool, Store and at least one gateway")
	}
	r := &relay{
		pool: cfg.Pool, store: cfg.Store, log: cfg.Logger,
		schedule: cfg.Schedule, now: cfg.Now, newID: cfg.NewID,
		reconcileAfter: cfg.ReconcileAfter, metrics: cfg.Metrics, keyQuiet: cfg.KeyQuiet,
		openDeadline: cfg.OpenDeadline, recheck: cfg.Recheck, readySweepAfter: cfg.ReadySweepAfter,
		booksWindow: cfg.BooksWindow, booksLag: cfg.BooksLag, deposit: cfg.Deposit,
	}
	if r.deposit.Far <= 0 {
		r.deposit = payment.DefaultDepositSchedule
	}
	if r.recheck.Window <= 0 {
		r.recheck = payment.DefaultRecheck
	}
	if r.readySweepAfter <= 0 {
		r.readySweepAfter = DefaultReadySweepAfter
	}
	if r.booksWindow <= 0 {
		r.booksWindow = DefaultBooksWindow
	}
	if r.booksLag <= 0 {
		r.booksLag = DefaultBooksLag
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
	if r.openDeadline <= 0 {
		r.openDeadline = DefaultOpenDeadline
	}
	r.gateways = make(map[string]*gatewayEntry, len(cfg.Gateways))
	for name, gw := range cfg.Gateways {
		if gw == nil {
			return nil, fmt.Errorf("relay config: gateway %q is nil", name)
		}
		b := cfg.Breakers[name]
		if b == nil {
			b = NewBreaker(BreakerConfig{Now: r.now, Logger: r.log.With(slog.String("gateway", name)), Metrics: r.metrics})
		}
		r.gateways[name] = &gatewayEntry{name: name, gw: gw, breaker: b}
		if payment.ChargesBeforeConfirm(name) {
			r.chargeFirst = append(r.chargeFirst, name)
		}
	}
	slices.Sort(r.chargeFirst)
	if r.reconcileAfter <= 0 {
		r.reconcileAfter = 5 * time.Minute
	}
	if r.keyQuiet <= 0 {
		r.keyQuiet = DefaultKeyQuiet
	}
	flow, err := payflow.New(payflow.Config{Store: r.store, Outbox: contextOutbox{}, Now: r.now, NewID: r.newID, Recheck: r.recheck,
		Deposit: r.deposit, WebhookLookupInterval: cfg.WebhookLookupInterval})
	if err != nil {
		return nil, err
	}
	r.flow = flow
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
// fact that the gateway may have acted; the second records the answer. The
// answer is not written here: it waits in the job's run (see withRun) for
// the transaction that acts on it, which writes it in the round trip of its
// first payment lock (see inTx), so an outcome commits together with the
// answer it came from and the answer costs no round trip or commit of its
// own. A run that acts on the
// answer in no transaction (a retry, a snooze) writes it when it ends, as
// does a run whose outcome transaction failed. Before a second call in the
// same run (a lookup after an unclear answer) the first answer is written.
//
// While the circuit breaker is open nothing is called or recorded, and the
// error is a River snooze: the job waits without spending an attempt.
func (r *relay) call(ctx context.Context, g *gatewayEntry, a payment.Attempt, do func(context.Context, Gateway) gateway.Result) (callResult, error) {
	permit, ok, wait := g.breaker.Allow()
	if !ok {
		r.metrics.Snooze(a.Operation, metrics.SnoozeBreakerOpen)
		return callResult{}, river.JobSnooze(wait + jitter(wait))
	}
	if err := r.writeAnswers(ctx); err != nil {
		g.breaker.Abandon(permit)
		return callResult{}, err
	}
	a.RequestedAt = r.now()
	id, err := r.store.StartAttempt(ctx, r.pool, a)
	if err != nil {
		// No call without its record. If the breaker let us through as its
		// probe, nothing was learned: let another caller probe.
		g.breaker.Abandon(permit)
		return callResult{}, fmt.Errorf("error recording attempt start: %w", err)
	}
	// The wall clock, not r.now: a latency must be real even when a test
	// drives the relay's clock.
	start := time.Now()
	res := do(ctx, g.gw)
	elapsed := time.Since(start)
	class := g.gw.Classify(res)
	g.breaker.Record(permit, res, class)
	r.metrics.GatewayCall(a.Operation, class, elapsed)

	finished := r.now()
	a.ID = id
	a.FinishedAt = &finished
	a.Latency = res.Latency
	a.HTTPStatus = res.HTTPStatus
	a.GatewayCode = res.Code
	a.GatewayMessage = res.Message
	a.Classification = string(class)
	if res.Payment != nil {
		a.Gateway = gatewayRecordOf(res.Payment)
	}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	cr := callResult{Result: res, Class: class, AttemptID: id}
	if run := runOf(ctx); run != nil {
		run.answers = append(run.answers, a)
	} else if err := r.writeAnswer(ctx, a); err != nil {
		return cr, err
	}
	// payment_id and job_id come with the job's logger (see withJob).
	r.logger(ctx).LogAttrs(ctx, logLevel(class), "gateway call",
		slog.String("gateway", g.name),
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

// run is one run of a job: the gateway answers it has yet to write.
type run struct {
	answers []payment.Attempt
}

type ctxKeyRun struct{}

func runOf(ctx context.Context) *run {
	rn, _ := ctx.Value(ctxKeyRun{}).(*run)
	return rn
}

// withRun starts a job's run. Its end must be deferred at once:
//
//	ctx, end := r.withRun(ctx)
//	defer end(&err)
//
// end writes the answers no outcome transaction wrote (see call); if that
// fails and the run would have succeeded, the run fails, so River runs the
// job again rather than leave an answer unrecorded for a completed job.
func (r *relay) withRun(ctx context.Context) (context.Context, func(*error)) {
	rn := &run{}
	ctx = context.WithValue(ctx, ctxKeyRun{}, rn)
	return ctx, func(errp *error) {
		if len(rn.answers) == 0 {
			return
		}
		err := r.writeAnswers(ctx)
		if err == nil {
			return
		}
		r.logger(ctx).ErrorContext(ctx, "could not record a gateway answer", slog.Any("error", err))
		if *errp == nil {
			*errp = err
		}
	}
}

// writeAnswers writes, each in its own statement on the pool, the answers
// the run holds.
func (r *relay) writeAnswers(ctx context.Context) error {
	rn := runOf(ctx)
	if rn == nil {
		return nil
	}
	for len(rn.answers) > 0 {
		if err := r.writeAnswer(ctx, rn.answers[0]); err != nil {
			return err
		}
		rn.answers = rn.answers[1:]
	}
	return nil
}

// writeAnswer records one gateway answer on the pool, on a context
// detached from the job's (see outcomeTimeout).
func (r *relay) writeAnswer(ctx context.Context, a payment.Attempt) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	if err := r.store.FinishAttempt(wctx, r.pool, a); err != nil {
		return fmt.Errorf("error recording attempt result: %w", err)
	}
	return nil
}

// jitter spreads the snoozes of many jobs stopped by the breaker at once, so
// they do not all come back in the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)/4 + 1))
}

// gatewayFor returns the gateway a payment belongs to. A payment of a
// gateway this relay does not serve is a deployment matter, like a wrong
// secret: its job snoozes (misconfigured) for a relay that serves it,
// without spending an attempt or failing the payment.
func (r *relay) gatewayFor(ctx context.Context, p payment.Payment, op payment.Operation) (*gatewayEntry, error) {
	if g, ok := r.gateways[p.Gateway]; ok {
		return g, nil
	}
	r.metrics.Snooze(op, metrics.SnoozeMisconfigured)
	r.logger(ctx).ErrorContext(ctx, "payment belongs to a gateway this relay is not configured for",
		slog.String("gateway", p.Gateway))
	return nil, river.JobSnooze(r.schedule.Max)
}

// keyAnswers returns the requests sent under one Idempotency-Key for an
// operation, oldest first, as the key rule reads them.
func (r *relay) keyAnswers(ctx context.Context, g *gatewayEntry, paymentID string, op payment.Operation, key string) ([]gateway.KeyAnswer, error) {
	attempts, err := r.store.Attempts(ctx, r.pool, paymentID)
	if err != nil {
		return nil, err
	}
	var sent []store.KeyAttempt
	for _, a := range attempts {
		if a.Operation != op || a.IdempotencyKey != key {
			continue
		}
		sent = append(sent, store.KeyAttempt{
			SentAt: a.RequestedAt, Finished: a.FinishedAt != nil, HTTPStatus: a.HTTPStatus, Code: a.GatewayCode,
		})
	}
	return keyAnswersOf(g, sent), nil
}

// keyAnswersOf reads the requests sent under a key by the gateway's table.
func keyAnswersOf(g *gatewayEntry, sent []store.KeyAttempt) []gateway.KeyAnswer {
	out := make([]gateway.KeyAnswer, len(sent))
	for i, a := range sent {
		out[i] = gateway.KeyAnswer{
			SentAt: a.SentAt, Finished: a.Finished, HTTPStatus: a.HTTPStatus, Code: a.Code,
			StillRunning: g.gw.StillRunning(a.Code),
		}
	}
	return out
}

// stuckKey applies the key rule before a call to the requests sent under
// the operation's current key (read with the job's row, store.KeyAttempt):
// a key whose last two answers are the same definite answer is not called
// again, since the gateway would only replay it. ok says the key is stuck;
// then either the quiet period has passed and the caller looks the payment
// up (and may rotate the key), or wait is how long to snooze first.
func (r *relay) stuckKey(g *gatewayEntry, sent []store.KeyAttempt) (ok bool, wait time.Duration) {
	answers := keyAnswersOf(g, sent)
	if !gateway.KeyStuck(answers) {
		return false, 0
	}
	if gateway.KeyAbandonable(answers, r.now(), r.keyQuiet, g.gw.KeyRetention()) {
		return true, 0
	}
	return true, gateway.LastSent(answers).Add(r.keyQuiet).Sub(r.now()) + time.Millisecond
}

// forgottenKey applies the gateway's key retention before a call under the
// operation's current key: past it the key protects nothing (a request
// under it is a fresh one), so the relay never relies on it replaying. ok
// says the key is forgotten; then either the quiet period since the last
// request under it has passed and the caller looks the payment up first
// (and may move to a new key), or wait is how long to snooze first.
func (r *relay) forgottenKey(g *gatewayEntry, sent []store.KeyAttempt) (ok bool, wait time.Duration) {
	answers := keyAnswersOf(g, sent)
	if !gateway.KeyForgotten(answers, r.now(), g.gw.KeyRetention()) {
		return false, 0
	}
	if wait := gateway.LastSent(answers).Add(r.keyQuiet).Sub(r.now()); wait > 0 {
		return true, wait + time.Millisecond
	}
	return true, 0
}

// snoozeForQuiet makes a stuck key's job wait out the key rule's quiet
// period without spending an attempt.
func (r *relay) snoozeForQuiet(op payment.Operation, wait time.Duration) error {
	r.metrics.Snooze(op, metrics.SnoozeKeyQuiet)
	return river.JobSnooze(wait)
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
// outcomeTimeout), with the Flow of that transaction. What fn hands to
// onCommit runs once the transaction has committed, and not at all if it
// rolls back.
//
// The gateway answers the job's run holds (see call) are written in the
// same transaction: the Flow given to fn carries them (payflow.Flow.Answering)
// and its first payment lock writes them in its own round trip, else they
// are written before the commit. An outcome commits with the answers it was
// concluded from, or neither does (and then the run writes them on its own
// when it ends). fn must take its payment locks through that Flow.
func (r *relay) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	var committed []func()
	wctx = context.WithValue(wctx, ctxKeyOnCommit{}, &committed)
	var answers store.Answers
	rn := runOf(ctx)
	if rn != nil {
		answers.List = rn.answers
	}
	flow := r.flow.Answering(&answers)
	err := pgx.BeginFunc(wctx, r.pool, func(tx pgx.Tx) error {
		if err := fn(wctx, tx, flow); err != nil {
			return err
		}
		// A use case that took no payment lock (the Flow's locks write
		// them with it) still commits the answers with its outcome.
		if err := r.store.WriteAnswers(wctx, tx, &answers); err != nil {
			return fmt.Errorf("error recording attempt result: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rn != nil {
		rn.answers = rn.answers[len(answers.List):]
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

// changeOnCommit counts and logs, once committed, what a use case did.
func (r *relay) changeOnCommit(ctx context.Context, op payment.Operation, ch payflow.Change) {
	if !ch.Applied {
		return
	}
	r.onCommit(ctx, func() {
		if ch.From != ch.To {
			r.metrics.Outcome(ch.To)
		}
		log := r.logger(ctx)
		switch {
		case ch.Compensation != nil:
			log.WarnContext(ctx, "approval cannot be kept; compensating cancel enqueued",
				slog.String("reason", ch.Compensation.Reason), slog.String("compensation_cancel_id", ch.Compensation.ID))
		case (ch.From == payment.StatusFailed || ch.From == payment.StatusExpired) && ch.From != ch.To:
			log.ErrorContext(ctx, "gateway approved a payment recorded as "+string(ch.From)+"; adopted the gateway's word")
		case ch.To == payment.StatusUnknown && ch.From != ch.To:
			log.ErrorContext(ctx, "payment outcome unknown; the reconciler will ask the gateway, an operator may have to act",
				slog.String("operation", string(op)))
		}
		if ch.KeyRotated {
			r.metrics.KeyRotation(op)
		}
		if ch.Note != "" {
			log.WarnContext(ctx, "relay decision noted on the lookup attempt", slog.String("why", ch.Note))
		}
	})
}

// complete runs a use case and completes the job in the same transaction.
func complete[T river.JobArgs](ctx context.Context, r *relay, job *river.Job[T], op payment.Operation,
	fn func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) (payflow.Change, error)) error {
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) error {
		ch, err := fn(ctx, tx, flow)
		if err != nil {
			return err
		}
		r.changeOnCommit(ctx, op, ch)
		return completeTx(ctx, tx, job)
	})
}

// contextOutbox enqueues through the River client of the job being worked:
// the relay's client exists only once its workers are registered.
type contextOutbox struct{}

// InsertTx implements payflow.Outbox.
func (contextOutbox) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return nil, fmt.Errorf("error getting River client to enqueue: %w", err)
	}
	return client.InsertTx(ctx, tx, args, opts)
}

// InsertManyTx implements payflow.ManyOutbox.
func (contextOutbox) InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return nil, fmt.Errorf("error getting River client to enqueue: %w", err)
	}
	return client.InsertManyTx(ctx, tx, params)
}

// recordOf converts a gateway's record of a payment into the domain's
// payment.Record, by its phase, so every gateway's payments settle by the
// same rules.
func recordOf(gp *gateway.Payment) payment.Record {
	return payment.Record{
		Approved: gp.Phase == gateway.PhaseCharged,
		Approval: approvalOf(gp),
		Aborted:  gp.Phase == gateway.PhaseFailed,
		Expired:  gp.Phase == gateway.PhaseExpired,
		// A status we do not know (PhaseUnknown) says nothing either way.
		Unpaid: gp.Phase == gateway.PhaseOpen || gp.Phase == gateway.PhaseWaiting ||
			gp.Phase == gateway.PhaseFailed || gp.Phase == gateway.PhaseExpired,
		TransactionKey: lastTransactionKey(gp),
		Refunds:        refundsOf(gp),
		Account:        issuedAccount(gp),
		Secret:         gp.Secret,
		AccountExpired: gp.AccountExpired,
	}
}

// issuedAccount is the virtual account a gateway's record shows issued and
// waiting for its deposit (Toss WAITING_FOR_DEPOSIT, PortOne
// VIRTUAL_ACCOUNT_ISSUED, with the account); nil otherwise.
func issuedAccount(gp *gateway.Payment) *payment.VirtualAccount {
	if gp == nil || gp.Phase != gateway.PhaseWaiting || gp.VirtualAccount == nil {
		return nil
	}
	return gp.VirtualAccount
}

// refundsOf converts a gateway's list of cancels into the domain's, for a
// balance we cannot explain: a refund the gateway itself says did not come
// through the merchant's API (PortOne's trigger) is marked as made
// elsewhere.
func refundsOf(gp *gateway.Payment) []payment.GatewayRefund {
	out := make([]payment.GatewayRefund, 0, len(gp.Cancels))
	for _, c := range gp.Cancels {
		out = append(out, payment.GatewayRefund{
			TransactionKey: c.TransactionKey, Amount: c.CancelAmount, At: c.CanceledAt,
			Elsewhere: c.Trigger != "" && c.Trigger != gateway.TriggerAPI,
		})
	}
	return out
}

// approvalOf converts a gateway's record into the domain's Approval.
func approvalOf(gp *gateway.Payment) payment.Approval {
	return payment.Approval{
		OrderID:       gp.OrderID,
		Currency:      gp.Currency,
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

// gatewayRecordOf keeps, on the attempt row, what an operator compares with
// our record of the payment.
func gatewayRecordOf(gp *gateway.Payment) *payment.GatewayRecord {
	g := &payment.GatewayRecord{
		Status: gp.Status, OrderID: gp.OrderID, TotalAmount: gp.TotalAmount, BalanceAmount: gp.BalanceAmount,
		Method: gp.Method, Cancels: len(gp.Cancels), LastTransactionKey: lastTransactionKey(gp),
	}
	if !gp.ApprovedAt.IsZero() {
		at := gp.ApprovedAt
		g.ApprovedAt = &at
	}
	return g
}
