package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// runBooks runs the reconciliation once, as its periodic job does, and
// returns each gateway's run once both have finished.
func (b *testBundle) runBooks(t *testing.T) map[string]store.BooksRun {
	t.Helper()
	ctx := context.Background()
	before, err := b.store.BooksRuns(ctx, b.pool, 100)
	require.NoError(t, err)
	_, err = b.client.Insert(ctx, relay.BooksArgs{}, nil)
	require.NoError(t, err)
	runs := map[string]store.BooksRun{}
	require.Eventually(t, func() bool {
		all, err := b.store.BooksRuns(ctx, b.pool, 100)
		require.NoError(t, err)
		clear(runs)
		for _, r := range all[:len(all)-len(before)] {
			if r.FinishedAt != nil {
				runs[r.Gateway] = r
			}
		}
		return len(runs) == 2
	}, 15*time.Second, 10*time.Millisecond)
	for g, r := range runs {
		require.Empty(t, r.Error, g)
	}
	return runs
}

// differences returns the open differences of a gateway.
func (b *testBundle) differences(t *testing.T, gw string) []store.BooksDifference {
	t.Helper()
	all, err := b.store.OpenBooksDifferences(context.Background(), b.pool, 100)
	require.NoError(t, err)
	var out []store.BooksDifference
	for _, d := range all {
		if d.Gateway == gw {
			out = append(out, d)
		}
	}
	return out
}

func TestBooks(t *testing.T) {
	t.Parallel()

	t.Run("BooksThatAgreeShowNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{booksLag: time.Millisecond})
		p, key := b.confirmed(t, 10000)
		b.requestCancel(t, p.ID, 3000)
		b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		b.confirmed(t, 5000)
		q, _ := b.portOneConfirmed(t, 8000)
		b.requestCancel(t, q.ID, 0)
		b.waitStatus(t, q.ID, payment.StatusCanceled)
		b.waitDrained(t)

		runs := b.runBooks(t)
		toss, portone := runs[payment.GatewayToss], runs[payment.GatewayPortOne]
		require.Equal(t, 3, toss.Transactions, "two approvals and a refund")
		require.Equal(t, 3, toss.Matched)
		require.Zero(t, toss.Differences)
		require.Equal(t, 2, portone.Transactions, "an approval and its refund")
		require.Equal(t, 2, portone.Matched)
		require.Zero(t, portone.Differences)
		require.Empty(t, b.differences(t, payment.GatewayToss))
		unexplained, err := b.store.BooksUnexplained(context.Background(), b.pool)
		require.NoError(t, err)
		require.Empty(t, unexplained)
		require.Len(t, b.ledger(t, key).Refunds, 1)
	})

	t.Run("APaymentWeNeverRecordedIsListed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{booksLag: time.Millisecond})
		// Charged at the gateway by a checkout whose intent never reached
		// us: no row of ours has the paymentKey.
		key := b.authorize(t, "order-stray-0001", 12000, nil)
		res := b.gw.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: key, OrderID: "order-stray-0001", Amount: 12000}, "confirm-stray-0001")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))

		run := b.runBooks(t)[payment.GatewayToss]
		require.Equal(t, 1, run.Differences)
		require.Equal(t, 1, run.Listed)
		require.Zero(t, run.Lookups, "there is no payment of ours to look up")
		diffs := b.differences(t, payment.GatewayToss)
		require.Len(t, diffs, 1)
		require.Equal(t, store.BooksUnknownPayment, diffs[0].Kind)
		require.Equal(t, key, diffs[0].PaymentKey)
		require.Empty(t, diffs[0].PaymentID)
		require.Contains(t, string(diffs[0].GatewayRecord), `"amount": 12000`)
		unexplained, err := b.store.BooksUnexplained(context.Background(), b.pool)
		require.NoError(t, err)
		require.Len(t, unexplained, 1)

		// Found again, it has outlived a run; still one difference.
		again := b.runBooks(t)[payment.GatewayToss]
		require.Equal(t, 1, again.Differences)
		require.Equal(t, 1, again.Persisting)
		diffs = b.differences(t, payment.GatewayToss)
		require.Len(t, diffs, 1)
		require.Equal(t, 2, diffs[0].Runs)
	})

	t.Run("ARefundMadeAtTheGatewayIsLookedUp", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{booksLag: time.Millisecond})
		p, key := b.confirmed(t, 10000)
		// Refunded in the gateway's console: no cancel of ours, no webhook.
		res := b.gw.Cancel(context.Background(), key, gateway.CancelRequest{Reason: "console", Amount: 4000, RefundableAmount: 10000}, "console-refund-0001")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		before, err := b.store.Payment(context.Background(), b.pool, p.ID)
		require.NoError(t, err)
		require.Equal(t, int64(10000), before.BalanceAmount)

		run := b.runBooks(t)[payment.GatewayToss]
		require.Equal(t, 1, run.Differences)
		require.Equal(t, 1, run.Lookups)
		require.Zero(t, run.Listed)
		diffs := b.differences(t, payment.GatewayToss)
		require.Len(t, diffs, 1)
		require.Equal(t, store.BooksRefundMissing, diffs[0].Kind)
		require.Equal(t, p.ID, diffs[0].PaymentID)

		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, b.ledger(t, key).BalanceAmount, got.BalanceAmount)
		require.Equal(t, int64(6000), got.BalanceAmount)
		b.waitDrained(t)

		// The next run finds the books agreeing and closes the difference.
		again := b.runBooks(t)[payment.GatewayToss]
		require.Zero(t, again.Differences)
		require.Equal(t, 1, again.Resolved)
		require.Empty(t, b.differences(t, payment.GatewayToss))
	})

	t.Run("AChargeTheGatewayDoesNotShowIsLookedUpAndOutlivesTheRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{booksLag: time.Millisecond})
		p, _ := b.newPayment(t, 9000, nil)
		// Our books say charged two hours ago under a key the gateway does
		// not know (a row written wrongly, say).
		_, err := b.pool.Exec(context.Background(), `UPDATE payments SET status = 'confirmed', payment_key = 'tgen_not_at_gateway',
			approved_amount = 9000, balance_amount = 9000, approved_at = now() - interval '2 hours' WHERE id = $1`, p.ID)
		require.NoError(t, err)

		run := b.runBooks(t)[payment.GatewayToss]
		require.Equal(t, 1, run.Differences)
		require.Equal(t, 1, run.Lookups)
		diffs := b.differences(t, payment.GatewayToss)
		require.Len(t, diffs, 1)
		require.Equal(t, store.BooksMissingAtGateway, diffs[0].Kind)
		require.Equal(t, p.ID, diffs[0].PaymentID)
		require.Contains(t, diffs[0].Ours, "confirmed, approved 9000")
		b.waitDrained(t)

		// The lookup found nothing to settle (the gateway does not know
		// the key) and changed nothing; the next run finds it again.
		got, err := b.store.Payment(context.Background(), b.pool, p.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusConfirmed, got.Status)
		again := b.runBooks(t)[payment.GatewayToss]
		require.Equal(t, 1, again.Persisting)
		unexplained, err := b.store.BooksUnexplained(context.Background(), b.pool)
		require.NoError(t, err)
		require.Len(t, unexplained, 1)
		require.Equal(t, again.ID, unexplained[0].LastRunID)
	})

	t.Run("RecentTransactionsAreNotComparedYet", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{booksLag: time.Hour})
		// The gateway's: a payment charged a moment ago that we have no
		// row of (its intent may be on its way), and a refund made a
		// moment ago (its webhook may be on its way).
		key := b.authorize(t, "order-stray-0002", 12000, nil)
		res := b.gw.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: key, OrderID: "order-stray-0002", Amount: 12000}, "confirm-stray-0002")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		_, refunded := b.confirmed(t, 10000)
		res = b.gw.Cancel(context.Background(), refunded, gateway.CancelRequest{Reason: "console", Amount: 4000, RefundableAmount: 10000}, "console-refund-0002")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		p, _ := b.newPayment(t, 9000, nil)
		_, err := b.pool.Exec(context.Background(), `UPDATE payments SET status = 'confirmed', payment_key = 'tgen_just_now',
			approved_amount = 9000, balance_amount = 9000, approved_at = now() WHERE id = $1`, p.ID)
		require.NoError(t, err)
		run := b.runBooks(t)[payment.GatewayToss]
		require.Zero(t, run.Differences, "gateways list with a lag, and our relay hears with one")
		require.Equal(t, 3, run.Transactions)
	})

	t.Run("AFailedListingIsARunWithItsError", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{secretKey: "test_sk_wrong_key"})
		ctx := context.Background()
		_, err := b.client.Insert(ctx, relay.BooksArgs{}, nil)
		require.NoError(t, err)
		var run store.BooksRun
		require.Eventually(t, func() bool {
			runs, err := b.store.BooksRuns(ctx, b.pool, 10)
			require.NoError(t, err)
			for _, r := range runs {
				if r.Gateway == payment.GatewayToss && r.FinishedAt != nil {
					run = r
					return true
				}
			}
			return false
		}, 15*time.Second, 10*time.Millisecond)
		require.Contains(t, run.Error, "UNAUTHORIZED_KEY")
		require.Zero(t, run.Differences, "nothing is compared from a listing that failed")
	})
}
