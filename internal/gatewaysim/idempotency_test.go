package gatewaysim

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIdempotency(t *testing.T) {
	t.Parallel()

	t.Run("SameKeyReplaysTheFirstResponse", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-idem-1", 3_000)
		first := b.confirm(t, auth, "confirm-idem-1")
		require.Equal(t, StatusDone, first.payment(t).Status)

		b.clock.Advance(time.Hour)
		second := b.confirm(t, auth, "confirm-idem-1")
		require.Equal(t, first, second)

		// Toss matches the key alone: another body gets the same answer.
		third := b.toss(t, http.MethodPost, "/v1/payments/confirm", "confirm-idem-1", map[string]any{"paymentKey": "x", "orderId": "y", "amount": 1})
		require.Equal(t, first, third)

		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		require.Equal(t, []string{OutcomeProcessed, OutcomeReplayed}, b.outcomes(t, auth.PaymentKey))
	})

	t.Run("OtherKeyAfterDoneIsAlreadyProcessed", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-idem-2", 3_000)
		b.confirm(t, auth, "another-key").requireError(t, http.StatusBadRequest, CodeAlreadyProcessedPayment)
		b.confirm(t, auth, "").requireError(t, http.StatusBadRequest, CodeAlreadyProcessedPayment)
		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals)
	})

	t.Run("StoredAnswerExpiresAfter15Days", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-idem-3", 3_000)
		b.clock.Advance(15*24*time.Hour + time.Second)
		b.confirm(t, auth, "confirm-order-idem-3").requireError(t, http.StatusBadRequest, CodeAlreadyProcessedPayment)
	})

	t.Run("KeyTooLong", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-idem-4", 3_000)
		b.confirm(t, auth, strings.Repeat("k", 301)).requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		require.Equal(t, StatusDone, b.confirm(t, auth, strings.Repeat("k", 300)).payment(t).Status)
	})

	t.Run("InFlightKeyGets409", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-idem-5", 3_000)
		b.script(t, auth.PaymentKey, OperationConfirm, Step{Kind: StepDelay, Delay: Duration(2 * time.Second)})

		var (
			wg       sync.WaitGroup
			first    answer
			firstErr error
		)
		body := map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": auth.Amount}
		authorization := AuthorizationHeader(DefaultSecretKey)
		wg.Go(func() {
			first, firstErr = b.send(t, http.MethodPost, "/v1/payments/confirm", authorization, "confirm-idem-5", body)
		})

		// The first call claims the key before it takes the delay step, so
		// once the step is gone the key is in flight for ~2s.
		require.Eventually(t, func() bool {
			return b.sim.scripts.pending(auth.PaymentKey, OperationConfirm) == 0
		}, time.Second, time.Millisecond)
		conflict, err := b.send(t, http.MethodPost, "/v1/payments/confirm", authorization, "confirm-idem-5", body)
		require.NoError(t, err)
		conflict.requireError(t, http.StatusConflict, CodeIdempotentRequestProcessing)
		wg.Wait()
		require.NoError(t, firstErr)

		require.Equal(t, StatusDone, first.payment(t).Status)
		require.Equal(t, first, b.confirm(t, auth, "confirm-idem-5"))
		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		outcomes := b.outcomes(t, auth.PaymentKey)
		require.Contains(t, outcomes, OutcomeRejected)
		require.Equal(t, OutcomeReplayed, outcomes[len(outcomes)-1])
	})

	t.Run("CancelReplayDoesNotRefundTwice", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-idem-6", 10_000)
		body := map[string]any{"cancelReason": "고객 변심", "cancelAmount": 4_000}
		first := b.cancel(t, auth.PaymentKey, "cancel-idem-6", body)
		require.Equal(t, StatusPartialCanceled, first.payment(t).Status)
		second := b.cancel(t, auth.PaymentKey, "cancel-idem-6", body)
		require.Equal(t, first, second)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 1)
		require.Equal(t, "cancel-idem-6", entry.Refunds[0].IdempotencyKey)
		require.EqualValues(t, 6_000, entry.BalanceAmount)
	})
}

func TestLostResponse(t *testing.T) {
	t.Parallel()

	t.Run("Scripted", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-lost-1", 7_000)
		b.script(t, auth.PaymentKey, OperationConfirm, Step{Kind: StepLost})

		_, err := b.send(t, http.MethodPost, "/v1/payments/confirm", AuthorizationHeader(DefaultSecretKey), "confirm-lost-1",
			map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": auth.Amount})
		require.Error(t, err)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Equal(t, 1, entry.Approvals)
		require.Equal(t, StatusDone, entry.Status)

		p := b.confirm(t, auth, "confirm-lost-1").payment(t)
		require.Equal(t, StatusDone, p.Status)
		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		require.Equal(t, []string{OutcomeLost, OutcomeReplayed}, b.outcomes(t, auth.PaymentKey))
		records := b.sim.Requests(auth.PaymentKey)
		require.Equal(t, http.StatusOK, records[0].HTTPStatus)
	})

	t.Run("ScriptedCancel", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-lost-2", 7_000)
		b.script(t, auth.PaymentKey, OperationCancel, Step{Kind: StepLost})
		_, err := b.send(t, http.MethodPost, "/v1/payments/"+auth.PaymentKey+"/cancel", AuthorizationHeader(DefaultSecretKey),
			"cancel-lost-2", map[string]any{"cancelReason": "재고 없음"})
		require.Error(t, err)
		require.Len(t, b.ledgerEntry(t, auth.PaymentKey).Refunds, 1)

		p := b.cancel(t, auth.PaymentKey, "cancel-lost-2", map[string]any{"cancelReason": "재고 없음"}).payment(t)
		require.Equal(t, StatusCanceled, p.Status)
		require.Len(t, b.ledgerEntry(t, auth.PaymentKey).Refunds, 1)
	})

	t.Run("Random", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		b.setConfig(t, Config{LostResponseRate: 1})
		auth := b.authorize(t, "order-lost-3", 7_000)
		_, err := b.send(t, http.MethodPost, "/v1/payments/confirm", AuthorizationHeader(DefaultSecretKey), "",
			map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": auth.Amount})
		require.Error(t, err)
		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals)

		// Lookups are never lost.
		require.Equal(t, StatusDone, b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t).Status)
	})
}
