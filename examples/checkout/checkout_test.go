package checkout_test

import (
	"context"
	"testing"
	"time"

	"github.com/payment-outbox/payment-outbox/client"
	"github.com/payment-outbox/payment-outbox/examples/checkout"
	"github.com/payment-outbox/payment-outbox/outboxtest"
)

// TestMain lets outboxtest decide about testcontainers' reaper for the
// whole test binary.
func TestMain(m *testing.M) { outboxtest.Main(m) }

// TestPayAndRefund pays for an order, learns the outcome with one wait,
// receives the signed webhook, then refunds it and receives that webhook too.
func TestPayAndRefund(t *testing.T) {
	ctx := context.Background()
	if err := outboxtest.Available(ctx); err != nil {
		t.Skipf("no Docker: %v", err)
	}
	sys, err := outboxtest.Start(ctx, outboxtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Terminate(context.Background()) })

	hooks, err := sys.NewWebhookReceiver(ctx,
		client.EventType(client.StatusConfirmed), client.EventType(client.StatusCanceled))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hooks.Close() })

	shop := &checkout.Checkout{Payments: sys.Client()}
	paymentKey, err := sys.Authorize(ctx, "order-example-0001", 15000) // the customer in the widget
	if err != nil {
		t.Fatal(err)
	}
	p, err := shop.Pay(ctx, "order-example-0001", "Coffee beans 1kg", 15000, paymentKey, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != client.StatusConfirmed {
		t.Fatalf("paid: status %s, want confirmed", p.Status)
	}
	ev := nextEvent(t, hooks)
	if ev.Type != "payment.confirmed" || ev.Data.PaymentID != p.ID || ev.Data.Version != p.Version {
		t.Fatalf("webhook %s for %s version %d; want payment.confirmed for %s version %d",
			ev.Type, ev.Data.PaymentID, ev.Data.Version, p.ID, p.Version)
	}

	p, err = shop.Refund(ctx, p.ID, "customer changed their mind", 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != client.StatusCanceled || p.BalanceAmount != 0 {
		t.Fatalf("refunded: status %s balance %d, want canceled and 0", p.Status, p.BalanceAmount)
	}
	ev = nextEvent(t, hooks)
	if ev.Type != "payment.canceled" || ev.Data.Version != p.Version {
		t.Fatalf("webhook %s version %d; want payment.canceled version %d", ev.Type, ev.Data.Version, p.Version)
	}

	// The gateway's own record: one approval, refunded in full.
	entry, err := sys.Sim().LedgerEntry(ctx, paymentKey)
	if err != nil {
		t.Fatal(err)
	}
	if entry.Approvals != 1 || entry.BalanceAmount != 0 || len(entry.Refunds) != 1 {
		t.Fatalf("gateway ledger: %+v; want one approval and one full refund", entry)
	}
	if n := hooks.Rejected(); n != 0 {
		t.Fatalf("%d deliveries did not verify", n)
	}
}

func nextEvent(t *testing.T, hooks *outboxtest.WebhookReceiver) *client.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := hooks.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
