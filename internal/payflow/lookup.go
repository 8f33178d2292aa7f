package payflow

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// DefaultWebhookLookupInterval is how often, at most, gateway webhooks make
// us look one payment up when the deployment does not say
// (WEBHOOK_LOOKUP_INTERVAL). docs/design.md, "A webhook costs at most one
// lookup per interval", argues the figure.
const DefaultWebhookLookupInterval = 10 * time.Second

// RequestLookup records that someone (a gateway webhook) asked for a lookup
// of the payment, and puts one into the outbox. Webhooks are unsigned (Toss)
// or replayable, so what they may cost is bounded: at most one lookup per
// payment per interval (Config.WebhookLookupInterval), counting lookups
// that already ran. A request is never dropped for that, only delayed: the
// stamp it leaves (payments.lookup_wanted_at) is answered by the lookup
// that waits for the start of the next interval, and one that was lost is
// found by the reconciler. It reports whether a new lookup job was inserted
// (now or for the next interval). A payment with no payment key was never
// sent to the gateway and cannot be asked about: nothing is recorded for
// it.
func (f *Flow) RequestLookup(ctx context.Context, tx pgx.Tx, p payment.Payment) (bool, error) {
	if p.PaymentKey == "" {
		return false, nil
	}
	if _, err := f.store.WantLookup(ctx, tx, p.ID); err != nil {
		return false, err
	}
	return f.webhookLookup(ctx, tx, p.ID)
}

// webhookLookup puts the lookup that answers a webhook's request into the
// outbox, under the one-per-interval rule: this interval's lookup if none
// was inserted yet; nothing if this interval's lookup has not started (it
// reads the payment, and so the request, when it does); else the next
// interval's, scheduled at its start (unique, so every request of this
// interval shares it).
func (f *Flow) webhookLookup(ctx context.Context, tx pgx.Tx, paymentID string) (bool, error) {
	now := f.now()
	this := now.Truncate(f.lookupEvery)
	res, err := f.insertWebhookLookup(ctx, tx, paymentID, this, time.Time{})
	if err != nil {
		return false, err
	}
	if !res.UniqueSkippedAsDuplicate {
		return true, nil
	}
	if res.Job != nil && notStarted(res.Job.State) {
		return false, nil
	}
	next := this.Add(f.lookupEvery)
	res, err = f.insertWebhookLookup(ctx, tx, paymentID, next, next)
	if err != nil {
		return false, err
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

func (f *Flow) insertWebhookLookup(ctx context.Context, tx pgx.Tx, paymentID string, period, at time.Time) (*rivertype.JobInsertResult, error) {
	args := paymentjob.LookupArgs{PaymentID: paymentID, Period: period.UTC().Format(time.RFC3339)}
	res, err := f.outbox.InsertTx(ctx, tx, args, paymentjob.WebhookLookupOpts(at))
	if err != nil {
		return nil, fmt.Errorf("error enqueuing lookup job: %w", err)
	}
	if res == nil {
		return &rivertype.JobInsertResult{}, nil
	}
	return res, nil
}

// notStarted reports whether a job in state s has yet to read the payment:
// it will see a request made now. A retryable job counts, as its next
// attempt reads afresh; a running one may have read already.
func notStarted(s rivertype.JobState) bool {
	switch s {
	case rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStatePending, rivertype.JobStateRetryable:
		return true
	}
	return false
}

// LookupAnswered is called by a lookup that has read the gateway, in the
// transaction that completes its job (after the completion, so that the
// lookup is no longer the one waiting or running). seen is the payment's
// lookup request as it was before the gateway was asked: it is answered
// now. A request that came while the gateway was being asked is not: the
// answer may predate the change it reports, so a follow-up lookup goes into
// the outbox. The request is a webhook's, so its follow-up is under the
// webhook's rule (one lookup per payment per interval): after a lookup of
// this interval, the follow-up is the next interval's, which the webhook
// itself may already have put there. It reports whether a new one was
// inserted.
func (f *Flow) LookupAnswered(ctx context.Context, tx pgx.Tx, paymentID string, seen *time.Time) (bool, error) {
	still, err := f.store.LookupAnswered(ctx, tx, paymentID, seen)
	if err != nil || still == nil {
		return false, err
	}
	return f.webhookLookup(ctx, tx, paymentID)
}

// ParseWebhookLookupInterval reads WEBHOOK_LOOKUP_INTERVAL, which the api
// and the relay both take: a Go duration from one second to an hour;
// DefaultWebhookLookupInterval when empty. Its error is one line naming
// the variable.
func ParseWebhookLookupInterval(v string) (time.Duration, error) {
	if v == "" {
		return DefaultWebhookLookupInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > time.Hour {
		return 0, fmt.Errorf("WEBHOOK_LOOKUP_INTERVAL must be a duration from 1s to 1h (e.g. 10s), got %q", v)
	}
	return d, nil
}

// AcceptDelivery records that a signed gateway webhook delivery (named by
// its webhook-id) is being acted on in tx, and reports whether it is new.
// false means a delivery with that id was already accepted and its receipt
// has not expired (expiresAt: when the signature it came with stops
// verifying): a replay, or the gateway's retry of a delivery we took, which
// must do nothing. The receipt commits with tx, so a delivery whose
// handling failed is taken when it is retried.
func (f *Flow) AcceptDelivery(ctx context.Context, tx pgx.Tx, webhookID string, expiresAt time.Time) (bool, error) {
	return f.store.AcceptWebhookReceipt(ctx, tx, webhookID, expiresAt, f.now())
}
