package payflow

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// savePayment is the one way the use cases save a payment. When the save
// changes the payment's status it also, on the same transaction, tells the
// world: a webhook delivery row and its job per endpoint that asked for the
// event (the outbox again: sent only if the change commits, and never lost
// once it has). The save and the endpoints' lookup are one statement
// (store.SavePaymentChange); the deliveries, when there are any, one more,
// and their jobs one insert. Requests waiting on the payment (GET ?wait=)
// are not told here: the api polls for them (docs/design.md, "Waiting for a
// payment").
func (f *Flow) savePayment(ctx context.Context, tx pgx.Tx, p *payment.Payment) error {
	from := p.StoredStatus
	if from == "" {
		from = p.Status
	}
	// A record that rests on not having seen money the gateway could still
	// take without us is looked up again for a while; any other has no
	// such schedule.
	p.PlanRecheck(f.now(), f.recheck)
	endpoints, err := f.store.SavePaymentChange(ctx, tx, p)
	if err != nil {
		return err
	}
	if p.Status == from || len(endpoints) == 0 {
		return nil
	}
	return f.writeDeliveries(ctx, tx, from, *p, endpoints)
}

// writeDeliveries writes one delivery of a status change's event per
// endpoint, and its job: see savePayment.
func (f *Flow) writeDeliveries(ctx context.Context, tx pgx.Tx, from payment.Status, p payment.Payment, endpoints []string) error {
	ev := webhook.NewEvent(from, p, f.now())
	body, err := ev.Encode()
	if err != nil {
		return err
	}
	eventID := webhook.NewEventID(uuid.Must(uuid.NewV7()).String())
	ids := make([]string, len(endpoints))
	jobs := make([]river.InsertManyParams, len(endpoints))
	for i := range endpoints {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		jobs[i] = river.InsertManyParams{Args: paymentjob.WebhookArgs{DeliveryID: ids[i]}}
	}
	if err := f.store.InsertWebhookDeliveries(ctx, tx, ids, endpoints, eventID, ev.Type, p.ID, body); err != nil {
		return err
	}
	return f.enqueueMany(ctx, tx, jobs)
}

// Redeliver sends a delivery of endpointID's again: pending once more, and
// its job back in the outbox. A delivery whose job is still waiting to run
// (a retry is scheduled) keeps that job and its time. The endpoint must be
// enabled and within the caller's reach (else it is not found).
func (f *Flow) Redeliver(ctx context.Context, tx pgx.Tx, reach payment.Reach, endpointID, deliveryID string) (webhook.Delivery, error) {
	e, err := f.store.WebhookEndpoint(ctx, tx, reach, endpointID)
	if err != nil {
		return webhook.Delivery{}, err
	}
	if e.DisabledAt != nil {
		return webhook.Delivery{}, payment.Errorf(payment.KindConflict, webhook.CodeEndpointDisabled,
			"webhook endpoint %s is disabled; nothing is sent to it", e.ID)
	}
	d, err := f.store.WebhookDelivery(ctx, tx, deliveryID)
	if err != nil {
		return d, err
	}
	if d.EndpointID != e.ID {
		return webhook.Delivery{}, payment.Errorf(payment.KindNotFound, webhook.CodeDeliveryNotFound,
			"webhook delivery not found")
	}
	if d, err = f.store.RequeueWebhookDelivery(ctx, tx, d.ID); err != nil {
		return d, err
	}
	return d, f.enqueue(ctx, tx, paymentjob.WebhookArgs{DeliveryID: d.ID})
}
