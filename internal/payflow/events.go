package payflow

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// savePayment is the one way the use cases save a payment. When the save
// changes the payment's status it also, on the same transaction, tells the
// world: a webhook delivery row and its job per endpoint that asked for the
// event (the outbox again: sent only if the change commits, and never lost
// once it has), and a notification for the api processes waiting on the
// payment (GET ?wait=), which Postgres delivers only on commit.
func (f *Flow) savePayment(ctx context.Context, tx pgx.Tx, p *payment.Payment) error {
	from := p.StoredStatus
	if from == "" {
		from = p.Status
	}
	if err := f.store.SavePayment(ctx, tx, p); err != nil {
		return err
	}
	if p.Status == from {
		return nil
	}
	return f.statusChanged(ctx, tx, from, *p)
}

// statusChanged writes what a status change sends: see savePayment.
func (f *Flow) statusChanged(ctx context.Context, tx pgx.Tx, from payment.Status, p payment.Payment) error {
	if err := f.store.NotifyPaymentChanged(ctx, tx, p.ID); err != nil {
		return err
	}
	ev := webhook.NewEvent(from, p, f.now())
	endpoints, err := f.store.WebhookEndpointsFor(ctx, tx, ev.Type)
	if err != nil || len(endpoints) == 0 {
		return err
	}
	body, err := ev.Encode()
	if err != nil {
		return err
	}
	eventID := webhook.NewEventID(uuid.Must(uuid.NewV7()).String())
	for _, e := range endpoints {
		d, err := f.store.InsertWebhookDelivery(ctx, tx, webhook.Delivery{
			ID: uuid.Must(uuid.NewV7()).String(), EndpointID: e.ID, EventID: eventID, EventType: ev.Type,
			PaymentID: p.ID, Payload: body,
		})
		if err != nil {
			return err
		}
		if err := f.enqueue(ctx, tx, paymentjob.WebhookArgs{DeliveryID: d.ID}); err != nil {
			return err
		}
	}
	return nil
}

// Redeliver sends a delivery of endpointID's again: pending once more, and
// its job back in the outbox. A delivery whose job is still waiting to run
// (a retry is scheduled) keeps that job and its time. The endpoint must be
// enabled.
func (f *Flow) Redeliver(ctx context.Context, tx pgx.Tx, endpointID, deliveryID string) (webhook.Delivery, error) {
	e, err := f.store.WebhookEndpoint(ctx, tx, endpointID)
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
