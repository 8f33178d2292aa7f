// Package checkout is an example of a checkout service taking payments
// through the payment outbox with its Go client: the part of a checkout that
// pays for an order and refunds it. Its test runs it against the whole
// outbox in Docker (outboxtest), as a service in another repository would.
package checkout

import (
	"context"
	"fmt"
	"time"

	"github.com/payment-outbox/payment-outbox/client"
)

// Checkout pays for orders through the outbox.
type Checkout struct {
	Payments *client.Client
}

// Pay records the order's payment intent and, once the customer has
// authenticated in the gateway's widget (paymentKey), confirms it and waits
// for the outcome. A payment still confirming after wait is left to the
// relay; its webhook tells the outcome later.
func (c *Checkout) Pay(ctx context.Context, orderID, orderName string, amount int64, paymentKey string, wait time.Duration) (*client.Payment, error) {
	p, err := c.Payments.CreatePayment(ctx, client.CreatePaymentRequest{OrderID: orderID, Amount: amount, OrderName: orderName})
	if err != nil {
		return nil, fmt.Errorf("error creating payment for %s: %w", orderID, err)
	}
	// A key per logical confirm that survives our own restarts: a retry
	// after a crash replays the first confirm instead of making another.
	if _, err := c.Payments.ConfirmPayment(ctx, p.ID, client.ConfirmRequest{PaymentKey: paymentKey, Amount: amount},
		client.WithIdempotencyKey("confirm-"+p.ID)); err != nil {
		return nil, fmt.Errorf("error confirming payment %s: %w", p.ID, err)
	}
	return c.Payments.WaitPayment(ctx, p.ID, wait)
}

// Refund gives back amount (0: everything left) and waits for the outcome.
func (c *Checkout) Refund(ctx context.Context, paymentID, reason string, amount int64, wait time.Duration) (*client.Payment, error) {
	if _, err := c.Payments.CancelPayment(ctx, paymentID, client.CancelRequest{Reason: reason, Amount: amount}); err != nil {
		return nil, fmt.Errorf("error canceling payment %s: %w", paymentID, err)
	}
	return c.Payments.WaitPayment(ctx, paymentID, wait)
}
