package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// LookupWorker asks the gateway about one payment and settles ours from the
// gateway's word. The reconciler enqueues it for payments stuck in flight;
// the api enqueues it for gateway webhooks, which are only ever a reason to
// ask.
type LookupWorker struct {
	worker[paymentjob.LookupArgs]
}

// Work looks the payment up and settles it.
func (w *LookupWorker) Work(ctx context.Context, job *river.Job[paymentjob.LookupArgs]) (err error) {
	r := w.r
	ctx = r.withJob(ctx, job.JobRow, job.Args.PaymentID)
	ctx, end := r.withRun(ctx)
	defer end(&err)
	p, err := r.store.Payment(ctx, r.pool, job.Args.PaymentID)
	if err != nil {
		if payment.ErrorOf(err).Kind == payment.KindNotFound {
			return river.JobCancel(err)
		}
		return fmt.Errorf("error loading payment: %w", err)
	}
	if p.PaymentKey == "" {
		return nil // never sent to the gateway: nothing to ask
	}
	g, err := r.gatewayFor(ctx, p, payment.OperationLookup)
	if err != nil {
		return err
	}
	attempt := payment.Attempt{PaymentID: p.ID, Operation: payment.OperationLookup, JobID: job.ID, JobAttempt: job.Attempt}
	lc, err := r.call(ctx, g, attempt, func(ctx context.Context, gw Gateway) gateway.Result {
		return gw.Lookup(ctx, p.PaymentKey)
	})
	if err != nil {
		return err
	}
	switch {
	case lc.Class == gateway.ClassMisconfigured:
		return misconfigured(ctx, r, payment.OperationLookup, lc.Result)
	case lc.Payment == nil && lc.Class == gateway.ClassTransient:
		r.metrics.Retry(payment.OperationLookup)
		return transientError(lc.Result)
	case lc.Payment == nil && !notFound(lc):
		r.logger(ctx).WarnContext(ctx, "gateway does not know the payment", slog.String("code", lc.Code))
		return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) error {
			if job.Args.ActionID != 0 {
				outcome := fmt.Sprintf("the gateway does not know this payment (%d %s); nothing settled", lc.HTTPStatus, lc.Code)
				if err := flow.CompleteAction(ctx, tx, job.Args.ActionID, outcome, p.Status); err != nil {
					return err
				}
			}
			if err := completeTx(ctx, tx, job); err != nil {
				return err
			}
			// A definite answer: the request it answers is done with.
			_, err := flow.LookupAnswered(ctx, tx, p.ID, p.LookupWantedAt)
			return err
		})
	}
	rec := payment.Record{Unpaid: true} // the gateway has no record: nothing was paid
	if lc.Payment != nil {
		rec = recordOf(lc.Payment)
	}
	rotate, err := w.mayRotateUnknownCancel(ctx, g, p.ID)
	if err != nil {
		return err
	}
	seen, seenWanted := p.UpdatedAt, p.LookupWantedAt
	return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, flow *payflow.Flow) error {
		p, err := flow.PaymentForUpdate(ctx, tx, job.Args.PaymentID)
		if err != nil {
			return err
		}
		if !p.UpdatedAt.Equal(seen) {
			// Our row moved while we asked (a worker recorded an outcome):
			// the answer may predate what it recorded, and settling from it
			// could undo a fact. The next lookup asks afresh; an operator's
			// resolve is that next lookup (River runs it again).
			if job.Args.Resolve {
				return fmt.Errorf("payment changed while the gateway was asked; asking again")
			}
			if job.Args.ActionID != 0 {
				outcome := "our record changed while the gateway was asked, so this answer settled nothing; look up again"
				if err := flow.CompleteAction(ctx, tx, job.Args.ActionID, outcome, p.Status); err != nil {
					return err
				}
			}
			if err := completeTx(ctx, tx, job); err != nil {
				return err
			}
			// Nothing was settled, so no request to look is answered: one
			// still waiting gets a follow-up, asked afresh.
			return w.followUp(ctx, tx, flow, p.ID, nil)
		}
		from := p.Status
		if job.Args.Decision != "" {
			// An operator's decision on a cancel in unknown, checked
			// against the record just read.
			ch, detail, err := flow.ApplyCancelDecision(ctx, tx, &p, job.Args.CancelID, payment.CancelDecision(job.Args.Decision), rec, lc.AttemptID)
			if err != nil {
				return err
			}
			outcome := "the gateway has no record of the payment; " + detail
			if lc.Payment != nil {
				outcome = lookupOutcome(lc.Payment, from, p.Status, payflow.Change{}) + "; " + detail
			}
			if err := flow.CompleteAction(ctx, tx, job.Args.ActionID, outcome, p.Status); err != nil {
				return err
			}
			r.changeOnCommit(ctx, payment.OperationLookup, ch)
			if err := completeTx(ctx, tx, job); err != nil {
				return err
			}
			return w.followUp(ctx, tx, flow, p.ID, seenWanted)
		}
		ch, err := flow.Settle(ctx, tx, &p, rec, payflow.SettleOptions{
			LookupAttempt: lc.AttemptID, RotateCancelKey: rotate,
		})
		if err != nil {
			return err
		}
		if job.Args.ActionID != 0 {
			if err := flow.CompleteAction(ctx, tx, job.Args.ActionID, lookupOutcome(lc.Payment, from, p.Status, ch), p.Status); err != nil {
				return err
			}
		}
		r.changeOnCommit(ctx, payment.OperationLookup, ch)
		if err := completeTx(ctx, tx, job); err != nil {
			return err
		}
		return w.followUp(ctx, tx, flow, p.ID, seenWanted)
	})
}

// followUp answers the lookup requests this lookup saw before it asked the
// gateway (seen), and enqueues a follow-up for one that came while it asked:
// a webhook for a change the gateway made after our read would otherwise
// be lost to the lookup that was already running.
func (w *LookupWorker) followUp(ctx context.Context, tx pgx.Tx, flow *payflow.Flow, paymentID string, seen *time.Time) error {
	again, err := flow.LookupAnswered(ctx, tx, paymentID, seen)
	if err != nil {
		return err
	}
	if again {
		w.r.metrics.LookupsEnqueued(1)
		w.r.logger(ctx).InfoContext(ctx, "a lookup was asked for while this one ran; another follows it")
	}
	return nil
}

// notFound reports whether a lookup's answer says the gateway has no such
// payment: a definite refusal with 404 (PortOne's PAYMENT_NOT_FOUND, Toss's
// NOT_FOUND_PAYMENT). For an intent of a gateway that charges before our
// confirm that means the customer has not paid (yet).
func notFound(lc callResult) bool {
	return lc.Payment == nil && lc.Class == gateway.ClassRefused && lc.HTTPStatus == http.StatusNotFound
}

// lookupOutcome says, for an operator action's audit row, what the
// gateway's record showed and what settling from it did.
func lookupOutcome(gp *gateway.Payment, from, to payment.Status, ch payflow.Change) string {
	out := fmt.Sprintf("gateway %s, total %d, balance %d", gp.Status, gp.TotalAmount, gp.BalanceAmount)
	if from == to {
		out += fmt.Sprintf("; ours stays %s", to)
	} else {
		out += fmt.Sprintf("; ours %s → %s", from, to)
	}
	if ch.Note != "" {
		out += "; " + ch.Note
	}
	return out
}

// mayRotateUnknownCancel applies the key rule to the payment's cancel that
// the relay gave up on, if any: whether, should the lookup show it never
// happened, it may be sent again under a new key rather than its old one.
func (w *LookupWorker) mayRotateUnknownCancel(ctx context.Context, g *gatewayEntry, paymentID string) (bool, error) {
	r := w.r
	cancels, err := r.store.Cancels(ctx, r.pool, paymentID)
	if err != nil {
		return false, err
	}
	for _, c := range cancels {
		if c.Status != payment.CancelUnknown {
			continue
		}
		answers, err := r.keyAnswers(ctx, g, paymentID, payment.OperationCancel, c.IdempotencyKey)
		if err != nil {
			return false, err
		}
		return gateway.KeyAbandonable(answers, r.now(), r.keyQuiet, g.gw.KeyRetention()), nil
	}
	return false, nil
}

// ReconcileArgs is the reconciler's periodic job.
type ReconcileArgs struct{}

// Kind names the job in River's table.
func (ReconcileArgs) Kind() string { return "payment_reconcile" }

// ReconcileWorker finds payments stuck in confirming, canceling or unknown
// past the threshold and enqueues a lookup for each.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	r *relay
}

// reconcileBatch bounds one pass; the next pass takes the rest.
const reconcileBatch = 1000

// Work puts orphaned work back into the outbox and enqueues the lookups.
func (w *ReconcileWorker) Work(ctx context.Context, job *river.Job[ReconcileArgs]) error {
	r := w.r
	before := r.now().Add(-r.reconcileAfter)
	// Work whose job River discarded (or a crash lost) first: a confirming
	// payment or a pending cancel must always have a live job.
	orphans, err := r.flow.RequeueOrphans(ctx, r.pool, before, reconcileBatch)
	if err != nil {
		return err
	}
	if orphans.Confirms+orphans.Cancels > 0 {
		r.log.WarnContext(ctx, "reconciler put orphaned work back into the outbox",
			slog.Int("confirms", orphans.Confirms), slog.Int("cancels", orphans.Cancels), slog.Int64("job_id", job.ID))
	}
	// Acknowledged payments are left out: an operator has taken them on,
	// and, listed oldest first, they would otherwise fill every batch ahead
	// of the payments that still settle by themselves. An operator's lookup
	// or resolve still asks the gateway about them.
	stuck, err := r.store.ListPayments(ctx, r.pool,
		[]payment.Status{payment.StatusConfirming, payment.StatusCanceling, payment.StatusUnknown},
		before, reconcileBatch, false)
	if err != nil {
		return err
	}
	looks, err := w.looksDue(ctx, before, stuck)
	if err != nil {
		return err
	}
	stuck = append(stuck, looks.payments...)
	if len(stuck) == 0 {
		return nil
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("error getting River client: %w", err)
	}
	params := make([]river.InsertManyParams, len(stuck))
	unknown := 0
	for i, p := range stuck {
		params[i] = river.InsertManyParams{Args: paymentjob.LookupArgs{PaymentID: p.ID}}
		if p.Status == payment.StatusUnknown {
			unknown++
		}
	}
	res, err := client.InsertMany(ctx, params)
	if err != nil {
		return fmt.Errorf("error enqueuing lookups: %w", err)
	}
	// A payment whose lookup is still waiting (a webhook's, or the last
	// pass's) gets no second one: lookups are unique per payment.
	enqueued := 0
	for _, res := range res {
		if res != nil && !res.UniqueSkippedAsDuplicate {
			enqueued++
		}
	}
	r.metrics.LookupsEnqueued(enqueued)
	// Scheduled once their lookups are in the outbox: a crash between the
	// two only makes the next pass enqueue them again (lookups are unique).
	if err := r.store.SetNextRecheck(ctx, r.pool, looks.next); err != nil {
		return err
	}
	if err := r.store.SetDepositNextLook(ctx, r.pool, looks.depositNext); err != nil {
		return err
	}
	// Not a line about one payment: the lookups log their own, with their
	// payment_id.
	r.log.InfoContext(ctx, "reconciler enqueued lookups",
		slog.Int("payments", len(stuck)), slog.Int("enqueued", enqueued), slog.Int("unknown", unknown),
		slog.Int("rechecks", looks.rechecks), slog.Int("ready_swept", looks.ready), slog.Int("lost_lookups", looks.lost), slog.Int("deposit_looks", looks.deposits),
		slog.Duration("older_than", r.reconcileAfter), slog.Int64("job_id", job.ID))
	return nil
}

// dueLooks are the payments the reconciler looks up besides those stuck in
// flight, and when each provisional one is looked at next.
type dueLooks struct {
	payments              []payment.Payment
	next                  map[string]time.Time
	depositNext           map[string]time.Time
	rechecks, ready, lost int
	deposits              int
}

// looksDue finds the payments whose money may have moved without our
// asking (docs/design.md, "Money that moves without our asking"): records
// that rest on not having seen money (failed, expired or canceled before
// any charge, at a gateway that charges before our confirm) due for their
// next look; ready intents of such a gateway, which the customer may have
// paid without the checkout ever confirming; and payments whose lookup
// request has waited since before `before`, whose lookup was lost. A
// payment already among stuck is not listed again.
func (w *ReconcileWorker) looksDue(ctx context.Context, before time.Time, stuck []payment.Payment) (dueLooks, error) {
	r := w.r
	now := r.now()
	d := dueLooks{next: map[string]time.Time{}, depositNext: map[string]time.Time{}}
	// Each payment once in the pass's one insert: River refuses a batch
	// that names one unique job twice ("ON CONFLICT DO UPDATE command
	// cannot affect row a second time"), and the whole pass with it. A
	// payment stuck in flight can also have a lookup request waiting.
	seen := make(map[string]bool, len(stuck))
	for _, p := range stuck {
		seen[p.ID] = true
	}
	add := func(p payment.Payment) bool {
		if seen[p.ID] {
			return false
		}
		seen[p.ID] = true
		d.payments = append(d.payments, p)
		return true
	}
	recheck, err := r.store.ListRecheckDue(ctx, r.pool, now, reconcileBatch)
	if err != nil {
		return d, err
	}
	for _, p := range recheck {
		if add(p) {
			d.rechecks++
			d.next[p.ID] = r.recheck.Next(p.RecheckUntil.Add(-r.recheck.Window), now)
		}
	}
	if len(r.chargeFirst) > 0 {
		ready, err := r.store.ListReadyToSweep(ctx, r.pool, r.chargeFirst,
			now.Add(-r.recheck.Window), now.Add(-r.readySweepAfter), now, reconcileBatch)
		if err != nil {
			return d, err
		}
		for _, p := range ready {
			if add(p) {
				d.ready++
				d.next[p.ID] = r.recheck.Next(p.CreatedAt, now)
			}
		}
	}
	// Payments waiting for a virtual account's deposit, on a schedule that
	// tightens near the due date: a deposit whose webhook was lost is seen
	// within minutes, and an account past its due date is ended by the
	// lookup's answer (docs/design.md section 19).
	waiting, err := r.store.ListDepositLooksDue(ctx, r.pool, now, reconcileBatch)
	if err != nil {
		return d, err
	}
	for _, p := range waiting {
		if add(p) {
			d.deposits++
			var due time.Time
			if p.VirtualAccount != nil {
				due = p.VirtualAccount.DueDate
			}
			d.depositNext[p.ID] = r.deposit.Next(due, now)
		}
	}
	lost, err := r.store.ListLookupWanted(ctx, r.pool, before, reconcileBatch)
	if err != nil {
		return d, err
	}
	for _, p := range lost {
		if add(p) {
			d.lost++
		}
	}
	return d, nil
}

// PeriodicJobs returns the relay's periodic jobs: the reconciler, every
// interval. River runs periodic jobs on the elected leader only, so several
// relays do not reconcile the same payments at once.
func PeriodicJobs(interval time.Duration) []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(interval),
			func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil },
			&river.PeriodicJobOpts{ID: "payment_reconcile", RunOnStart: true}),
	}
}
