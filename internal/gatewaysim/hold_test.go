package gatewaysim

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pending is a /v1 call running in the background, e.g. one being held.
type pending struct {
	wg  sync.WaitGroup
	res answer
	err error
}

// start sends a POST in the background under ctx.
func (b *testBundle) start(ctx context.Context, t *testing.T, path, idempotencyKey string, body any) *pending {
	t.Helper()
	p := &pending{}
	p.wg.Go(func() {
		p.res, p.err = b.sendContext(ctx, t, http.MethodPost, path, AuthorizationHeader(DefaultSecretKey), idempotencyKey, body)
	})
	t.Cleanup(p.wg.Wait)
	return p
}

// wait returns the call's answer, which must have arrived.
func (p *pending) wait(t *testing.T) answer {
	t.Helper()
	p.wg.Wait()
	require.NoError(t, p.err)
	return p.res
}

// startHeld turns holds on for every confirm and cancel, starts one call,
// waits until the simulator holds it, and turns holds off again so the
// test's next calls are served at once.
func (b *testBundle) startHeld(ctx context.Context, t *testing.T, holdFor time.Duration, path, idempotencyKey string, body any) *pending {
	t.Helper()
	before := b.sim.holding.Load()
	b.setConfig(t, Config{HoldRate: 1, HoldFor: Duration(holdFor)})
	p := b.start(ctx, t, path, idempotencyKey, body)
	require.Eventually(t, func() bool { return b.sim.holding.Load() == before+1 }, 5*time.Second, time.Millisecond)
	b.setConfig(t, Config{})
	return p
}

// orderedHold is long enough that what a test does while a call is held
// surely happens before the hold ends, even on a loaded machine.
const orderedHold = 2 * time.Second

func cancelPath(paymentKey string) string { return "/v1/payments/" + paymentKey + "/cancel" }

// cancelOutcomes lists the request log's outcomes of cancels alone.
func (b *testBundle) cancelOutcomes(t *testing.T, paymentKey string) []string {
	t.Helper()
	var out []string
	for _, rec := range b.sim.Requests(paymentKey) {
		if rec.Operation == OperationCancel {
			out = append(out, rec.Outcome)
		}
	}
	return out
}

// TestRefundableAmountAloneStopsDoubleRefund is the gateway-level proof of
// the relay's rule 2 (every cancel carries the refundableAmount it expects):
// a cancel held at the gateway past the client's timeout, and the same
// cancel sent again under a new key, refund once whichever is performed
// first, because the second to be performed finds the balance moved. The
// last subtest is the control: without refundableAmount both land.
func TestRefundableAmountAloneStopsDoubleRefund(t *testing.T) {
	t.Parallel()

	body := map[string]any{"cancelReason": "고객 변심", "cancelAmount": 4_000, "refundableAmount": 10_000}

	t.Run("RetryPerformedFirst", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-rule2-1", 10_000)
		held := b.startHeld(context.Background(), t, orderedHold, cancelPath(auth.PaymentKey), "cancel-rule2-1-a", body)

		// While the first is held, the retry under a new key is served.
		p := b.cancel(t, auth.PaymentKey, "cancel-rule2-1-b", body).payment(t)
		require.EqualValues(t, 6_000, p.BalanceAmount)
		require.EqualValues(t, 1, b.sim.holding.Load(), "the first cancel is still held")

		// The held one is performed after the hold, against the new balance.
		held.wait(t).requireError(t, http.StatusBadRequest, CodeNotMatchesRefundableAmount)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 1)
		require.Equal(t, "cancel-rule2-1-b", entry.Refunds[0].IdempotencyKey)
		require.EqualValues(t, 4_000, entry.Refunds[0].Amount)
		require.EqualValues(t, 6_000, entry.BalanceAmount)
		require.Equal(t, []string{OutcomeProcessed, OutcomeHeld}, b.cancelOutcomes(t, auth.PaymentKey))
	})

	t.Run("HeldPerformedFirst", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-rule2-2", 10_000)
		// The client gives up at once, as one whose timeout fired; the held
		// cancel is performed anyway when the hold ends.
		ctx, giveUp := context.WithCancel(context.Background())
		held := b.startHeld(ctx, t, 200*time.Millisecond, cancelPath(auth.PaymentKey), "cancel-rule2-2-a", body)
		giveUp()
		held.wg.Wait()
		require.Error(t, held.err)
		require.Eventually(t, func() bool {
			entry, _ := b.sim.LedgerEntry(auth.PaymentKey)
			return len(entry.Refunds) == 1
		}, 5*time.Second, 5*time.Millisecond)

		// The retry under a new key expects the balance it never saw move.
		b.cancel(t, auth.PaymentKey, "cancel-rule2-2-b", body).
			requireError(t, http.StatusBadRequest, CodeNotMatchesRefundableAmount)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 1)
		require.Equal(t, "cancel-rule2-2-a", entry.Refunds[0].IdempotencyKey)
		require.EqualValues(t, 4_000, entry.Refunds[0].Amount)
		require.EqualValues(t, 6_000, entry.BalanceAmount)
	})

	t.Run("WithoutRefundableAmountBothLand", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-rule2-3", 10_000)
		unchecked := map[string]any{"cancelReason": "고객 변심", "cancelAmount": 4_000}
		held := b.startHeld(context.Background(), t, orderedHold, cancelPath(auth.PaymentKey), "cancel-rule2-3-a", unchecked)
		require.Equal(t, StatusPartialCanceled, b.cancel(t, auth.PaymentKey, "cancel-rule2-3-b", unchecked).payment(t).Status)
		require.EqualValues(t, 2_000, held.wait(t).payment(t).BalanceAmount)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 2, "the double refund rule 2 exists to stop")
		require.EqualValues(t, 2_000, entry.BalanceAmount)
	})
}

func TestHold(t *testing.T) {
	t.Parallel()

	t.Run("SameKeyGets409ThenTheStoredAnswer", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-hold-1", 10_000)
		body := map[string]any{"cancelReason": "고객 변심", "refundableAmount": 10_000}
		held := b.startHeld(context.Background(), t, orderedHold, cancelPath(auth.PaymentKey), "cancel-hold-1", body)

		b.cancel(t, auth.PaymentKey, "cancel-hold-1", body).
			requireError(t, http.StatusConflict, CodeIdempotentRequestProcessing)
		require.Empty(t, b.ledgerEntry(t, auth.PaymentKey).Refunds, "held: not performed yet")

		first := held.wait(t)
		require.Equal(t, StatusCanceled, first.payment(t).Status)
		require.Equal(t, first, b.cancel(t, auth.PaymentKey, "cancel-hold-1", body))

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 1)
		require.Equal(t, "cancel-hold-1", entry.Refunds[0].IdempotencyKey)
		require.EqualValues(t, 10_000, entry.Refunds[0].Amount)
		require.Equal(t, []string{OutcomeRejected, OutcomeHeld, OutcomeReplayed}, b.cancelOutcomes(t, auth.PaymentKey))
		records := b.sim.Requests(auth.PaymentKey)
		heldRecord := records[len(records)-2]
		require.Equal(t, OutcomeHeld, heldRecord.Outcome)
		require.Equal(t, http.StatusOK, heldRecord.HTTPStatus)
	})

	t.Run("ConfirmIsCheckedWhenPerformed", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-hold-2", 5_000)
		body := map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": auth.Amount}
		held := b.startHeld(context.Background(), t, orderedHold, "/v1/payments/confirm", "confirm-hold-2-a", body)
		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Zero(t, entry.Approvals)
		require.Equal(t, StatusInProgress, entry.Status)

		require.Equal(t, StatusDone, b.confirm(t, auth, "confirm-hold-2-b").payment(t).Status)
		held.wait(t).requireError(t, http.StatusBadRequest, CodeAlreadyProcessedPayment)
		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals)
	})

	t.Run("LookupsAreNeverHeld", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-hold-3", 5_000)
		b.setConfig(t, Config{HoldRate: 1, HoldFor: Duration(time.Minute)})
		require.Equal(t, StatusInProgress, b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t).Status)
		require.Equal(t, []string{OutcomeProcessed}, b.outcomes(t, auth.PaymentKey))
	})

	t.Run("ResetDropsAHeldCall", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		// With AutoAuthorize a confirm creates its payment: a held one that
		// outlived a reset would charge a payment in the fresh gateway.
		// (startHeld is not used: its configs would switch it off.)
		b.setConfig(t, Config{AutoAuthorize: true, HoldRate: 1, HoldFor: Duration(300 * time.Millisecond)})
		dropped := b.start(context.Background(), t, "/v1/payments/confirm", "confirm-hold-4",
			map[string]any{"paymentKey": "tgen_hold_reset_1", "orderId": "order-hold-4", "amount": 1_000})
		require.Eventually(t, func() bool { return b.sim.holding.Load() == 1 }, 5*time.Second, time.Millisecond)
		require.NoError(t, b.control.Reset(context.Background()))

		dropped.wait(t).requireError(t, http.StatusServiceUnavailable, CodeFailedInternalSystemProcessing)
		_, err := b.control.LedgerEntry(context.Background(), "tgen_hold_reset_1")
		requireSimError(t, err, http.StatusNotFound, CodeNotFoundPayment)
		require.Empty(t, b.sim.Requests(""), "a call from before the reset is not logged after it")
	})

	t.Run("CloseEndsHoldsAndTheyArePerformed", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-hold-6", 10_000)
		body := map[string]any{"cancelReason": "종료", "refundableAmount": 10_000}
		held := b.startHeld(context.Background(), t, time.Hour, cancelPath(auth.PaymentKey), "cancel-hold-6", body)
		b.sim.Close()
		require.Equal(t, StatusCanceled, held.wait(t).payment(t).Status)
		require.Len(t, b.ledgerEntry(t, auth.PaymentKey).Refunds, 1)
		require.Zero(t, b.sim.holding.Load())
	})
}

func TestRandomHolds(t *testing.T) {
	t.Parallel()

	b := setup(t)
	b.setConfig(t, Config{Seed: 11, HoldRate: 0.5, HoldFor: Duration(time.Millisecond)})
	held := 0
	for i := range 20 {
		auth := b.authorize(t, fmt.Sprintf("order-hold-random-%d", i), 1_000)
		require.Equal(t, StatusDone, b.confirm(t, auth, "").payment(t).Status)
		if b.sim.Requests(auth.PaymentKey)[0].Outcome == OutcomeHeld {
			held++
		}
	}
	require.Greater(t, held, 0)
	require.Less(t, held, 20)
}
