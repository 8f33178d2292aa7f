// Package paymentjob defines the River job args that the api writes into the
// outbox and the relay works: the contract between the two processes. Change
// a Kind or a JSON name only with a migration plan for jobs already queued.
package paymentjob

import (
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Queue is the River queue every payment job goes to.
const Queue = river.QueueDefault

// MaxAttempts bounds how often River runs one job that keeps meeting
// transient answers. With the relay's default schedule (1s doubling to 1m)
// 20 attempts span about 15 minutes, past the gateway's 10-minute confirm
// window; after the last one the relay records the payment as unknown for the
// reconciler instead of guessing.
const MaxAttempts = 20

// ConfirmArgs asks the relay to confirm a payment with the gateway.
type ConfirmArgs struct {
	PaymentID string `json:"paymentId"`
}

// Kind names the job in River's table.
func (ConfirmArgs) Kind() string { return "payment_confirm" }

// InsertOpts sets the queue and attempt budget for confirm jobs.
func (ConfirmArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: MaxAttempts}
}

// CancelArgs asks the relay to carry out one cancel request.
type CancelArgs struct {
	PaymentID string `json:"paymentId"`
	CancelID  string `json:"cancelId"`
}

// Kind names the job in River's table.
func (CancelArgs) Kind() string { return "payment_cancel" }

// InsertOpts sets the queue and attempt budget for cancel jobs.
func (CancelArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: MaxAttempts}
}

// LookupArgs asks the relay to look a payment up at the gateway and settle
// it from the gateway's word. The reconciler enqueues it for payments stuck
// in confirming, canceling or unknown, and the api for each gateway webhook:
// an unsigned webhook is only ever a reason to ask.
type LookupArgs struct {
	PaymentID string `json:"paymentId"`
	// ActionID names the operator action (lookup or resolve) that asked for
	// this lookup: the relay records what it found on that audit row. Zero
	// for the reconciler's and the webhook's lookups, whose args (and so
	// uniqueness) are as they always were.
	ActionID int64 `json:"actionId,omitempty"`
	// Resolve insists on an answer newer than our row: where an ordinary
	// lookup whose payment changed while it asked completes and leaves the
	// next lookup to ask afresh, a resolve asks again (River's retry).
	Resolve bool `json:"resolve,omitempty"`
	// CancelID and Decision carry an operator's decision on a cancel in
	// unknown (settle-cancel): the lookup carries it out against the
	// gateway's record it reads (payflow.ApplyCancelDecision). Empty for
	// every other lookup.
	CancelID string `json:"cancelId,omitempty"`
	Decision string `json:"decision,omitempty"`
	// Period is set on the lookups that gateway webhooks ask for: the start
	// of the interval (UTC, RFC 3339) the lookup belongs to. With it in the
	// args, such lookups are unique per payment and interval, completed ones
	// included (WebhookLookupOpts), which is what limits a flood of webhooks
	// to one gateway call per payment per interval (docs/design.md, "A
	// webhook costs at most one lookup per interval"). Empty for every
	// other lookup, whose args and uniqueness are as they always were.
	Period string `json:"period,omitempty"`
}

// Kind names the job in River's table.
func (LookupArgs) Kind() string { return "payment_lookup" }

// InsertOpts makes lookups unique per payment while one is waiting or
// running, so a burst of duplicate webhooks costs one gateway call.
func (LookupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       Queue,
		MaxAttempts: 5,
		UniqueOpts: river.UniqueOpts{
			ByArgs: true,
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
				rivertype.JobStateRunning, rivertype.JobStateScheduled,
			},
		},
	}
}

// WebhookLookupOpts are the insert options of a webhook's lookup (one whose
// args carry a Period): unique by args in every state River keeps a job in
// until its cleaner deletes it, completed included, so that once the
// interval's lookup has run no second one is inserted for that interval.
// scheduledAt, when not zero, is when the lookup runs: the start of its
// interval, for one that waits for the next.
func WebhookLookupOpts(scheduledAt time.Time) *river.InsertOpts {
	opts := LookupArgs{}.InsertOpts()
	opts.UniqueOpts.ByState = rivertype.UniqueOptsByStateDefault()
	opts.ScheduledAt = scheduledAt
	return &opts
}

// WebhookQueue is the River queue webhook deliveries go to: a queue of their
// own, so a slow or dead receiver holds only webhook workers, never the ones
// that confirm and cancel payments.
const WebhookQueue = "webhook"

// WebhookMaxAttempts spaces a delivery's attempts over about three days with
// the relay's webhook schedule (5s doubling to 6h; see
// relay.WebhookSchedule), the time a receiver has to come back before the
// delivery is marked failed and waits for a redelivery.
const WebhookMaxAttempts = 23

// WebhookArgs asks the relay to send one webhook delivery (a row of
// webhook_deliveries, written with the change it reports).
type WebhookArgs struct {
	DeliveryID string `json:"deliveryId"`
}

// Kind names the job in River's table.
func (WebhookArgs) Kind() string { return "webhook_delivery" }

// InsertOpts puts deliveries on their own queue, and makes them unique per
// delivery while one is waiting or running, so a redelivery asked for twice
// sends once.
func (WebhookArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       WebhookQueue,
		MaxAttempts: WebhookMaxAttempts,
		UniqueOpts: river.UniqueOpts{
			ByArgs: true,
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
				rivertype.JobStateRunning, rivertype.JobStateScheduled,
			},
		},
	}
}
