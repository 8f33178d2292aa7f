package gatewaysim

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCancel(t *testing.T) {
	t.Parallel()

	t.Run("Full", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-cancel-1", 10_000)
		p := b.cancel(t, auth.PaymentKey, "cancel-1", map[string]any{"cancelReason": "고객 변심"}).payment(t)
		require.Equal(t, StatusCanceled, p.Status)
		require.Zero(t, p.BalanceAmount)
		require.Len(t, p.Cancels, 1)
		c := p.Cancels[0]
		require.EqualValues(t, 10_000, c.CancelAmount)
		require.Equal(t, "고객 변심", c.CancelReason)
		require.Equal(t, "DONE", c.CancelStatus)
		require.Zero(t, c.RefundableAmount)
		require.Regexp(t, `^[0-9A-F]{32}$`, c.TransactionKey)
		require.Equal(t, c.TransactionKey, *p.LastTransactionKey)
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00$`, c.CanceledAt)

		b.cancel(t, auth.PaymentKey, "cancel-2", map[string]any{"cancelReason": "again"}).
			requireError(t, http.StatusBadRequest, CodeAlreadyCanceledPayment)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Equal(t, StatusCanceled, entry.Status)
		require.Equal(t, 1, entry.Approvals)
		require.Len(t, entry.Refunds, 1)
		require.EqualValues(t, 10_000, entry.Refunds[0].Amount)
	})

	t.Run("Partial", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-cancel-2", 10_000)

		p := b.cancel(t, auth.PaymentKey, "cancel-1", map[string]any{"cancelReason": "부분 취소", "cancelAmount": 3_000}).payment(t)
		require.Equal(t, StatusPartialCanceled, p.Status)
		require.EqualValues(t, 7_000, p.BalanceAmount)
		require.EqualValues(t, 10_000, p.TotalAmount)
		require.EqualValues(t, 6_364, p.SuppliedAmount)
		require.EqualValues(t, 636, p.VAT)
		require.Len(t, p.Cancels, 1)
		require.EqualValues(t, 7_000, p.Cancels[0].RefundableAmount)

		b.cancel(t, auth.PaymentKey, "cancel-2", map[string]any{"cancelReason": "too much", "cancelAmount": 7_001}).
			requireError(t, http.StatusForbidden, CodeNotCancelableAmount)

		// No cancelAmount: the whole remaining balance.
		p = b.cancel(t, auth.PaymentKey, "cancel-3", map[string]any{"cancelReason": "나머지"}).payment(t)
		require.Equal(t, StatusCanceled, p.Status)
		require.Zero(t, p.BalanceAmount)
		require.Len(t, p.Cancels, 2)
		require.EqualValues(t, 7_000, p.Cancels[1].CancelAmount)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 2)
		require.Equal(t, "cancel-1", entry.Refunds[0].IdempotencyKey)
		require.Equal(t, "cancel-3", entry.Refunds[1].IdempotencyKey)
	})

	t.Run("RefundableAmount", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-cancel-5", 10_000)
		stale := map[string]any{"cancelReason": "부분 취소", "cancelAmount": 3_000, "refundableAmount": 9_000}

		// A mismatch refunds nothing...
		first := b.cancel(t, auth.PaymentKey, "cancel-stale-1", stale)
		first.requireError(t, http.StatusBadRequest, CodeNotMatchesRefundableAmount)
		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Empty(t, entry.Refunds)
		require.EqualValues(t, 10_000, entry.BalanceAmount)
		// ...and is stored under its key like any answer the gateway gave.
		require.Equal(t, first, b.cancel(t, auth.PaymentKey, "cancel-stale-1", stale))

		// The balance we hold: refunded, and booked under its key.
		p := b.cancel(t, auth.PaymentKey, "cancel-ok-1",
			map[string]any{"cancelReason": "부분 취소", "cancelAmount": 3_000, "refundableAmount": 10_000}).payment(t)
		require.EqualValues(t, 7_000, p.BalanceAmount)

		// The same expectation again is now stale: the balance moved.
		b.cancel(t, auth.PaymentKey, "cancel-stale-2",
			map[string]any{"cancelReason": "부분 취소", "cancelAmount": 3_000, "refundableAmount": 10_000}).
			requireError(t, http.StatusBadRequest, CodeNotMatchesRefundableAmount)
		// A full cancel is checked too.
		b.cancel(t, auth.PaymentKey, "cancel-stale-3", map[string]any{"cancelReason": "전액", "refundableAmount": 10_000}).
			requireError(t, http.StatusBadRequest, CodeNotMatchesRefundableAmount)

		for _, bad := range []int64{0, -1} {
			b.cancel(t, auth.PaymentKey, "", map[string]any{"cancelReason": "x", "refundableAmount": bad}).
				requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		}

		entry = b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 1)
		require.Equal(t, []Refund{{TransactionKey: *p.LastTransactionKey, Amount: 3_000, IdempotencyKey: "cancel-ok-1", At: entry.Refunds[0].At}}, entry.Refunds)
		require.EqualValues(t, 7_000, entry.BalanceAmount)
	})

	t.Run("Rejections", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-cancel-3", 10_000)
		pending := b.authorize(t, "order-cancel-4", 10_000)

		b.cancel(t, "tgen_unknown", "", map[string]any{"cancelReason": "x"}).
			requireError(t, http.StatusNotFound, CodeNotFoundPayment)
		b.cancel(t, auth.PaymentKey, "", map[string]any{}).
			requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		b.cancel(t, auth.PaymentKey, "", map[string]any{"cancelReason": strings.Repeat("가", 201)}).
			requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		b.cancel(t, auth.PaymentKey, "", map[string]any{"cancelReason": "x", "cancelAmount": 0}).
			requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		b.cancel(t, auth.PaymentKey, "", map[string]any{"cancelReason": "x", "cancelAmount": 10_001}).
			requireError(t, http.StatusForbidden, CodeNotCancelableAmount)
		b.cancel(t, pending.PaymentKey, "", map[string]any{"cancelReason": "x"}).
			requireError(t, http.StatusForbidden, CodeNotCancelablePayment)

		require.Empty(t, b.ledgerEntry(t, auth.PaymentKey).Refunds)
		require.EqualValues(t, 10_000, b.ledgerEntry(t, auth.PaymentKey).BalanceAmount)
	})
}
