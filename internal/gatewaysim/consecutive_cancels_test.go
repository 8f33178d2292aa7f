package gatewaysim

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConsecutiveCancelWindow(t *testing.T) {
	t.Parallel()

	partial := map[string]any{"cancelReason": "부분 취소", "cancelAmount": 1_000}
	forbidden := StatusForCode(CodeForbiddenConsecutiveRequest)

	t.Run("RefusedWithinTheWindow", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-consec-1", 10_000)
		other := b.approved(t, "order-consec-2", 10_000)
		b.setConfig(t, Config{ConsecutiveCancelWindow: Duration(time.Second)})

		first := b.cancel(t, auth.PaymentKey, "cancel-consec-1", partial)
		require.EqualValues(t, 9_000, first.payment(t).BalanceAmount)
		// The same key replays: the idempotency store answers first.
		require.Equal(t, first, b.cancel(t, auth.PaymentKey, "cancel-consec-1", partial))
		// Another cancel for the payment is refused unprocessed...
		b.cancel(t, auth.PaymentKey, "cancel-consec-2", partial).requireError(t, forbidden, CodeForbiddenConsecutiveRequest)
		// ...while another payment is not affected.
		require.EqualValues(t, 9_000, b.cancel(t, other.PaymentKey, "cancel-consec-other", partial).payment(t).BalanceAmount)

		// A refusal does not restart the window: it runs from the first.
		b.clock.Advance(600 * time.Millisecond)
		b.cancel(t, auth.PaymentKey, "cancel-consec-3", partial).requireError(t, forbidden, CodeForbiddenConsecutiveRequest)
		require.Len(t, b.ledgerEntry(t, auth.PaymentKey).Refunds, 1)

		// Once it has passed, the refused key is processed: the refusal was
		// not stored under it.
		b.clock.Advance(400 * time.Millisecond)
		require.EqualValues(t, 8_000, b.cancel(t, auth.PaymentKey, "cancel-consec-2", partial).payment(t).BalanceAmount)

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Len(t, entry.Refunds, 2)
		require.Equal(t, "cancel-consec-1", entry.Refunds[0].IdempotencyKey)
		require.Equal(t, "cancel-consec-2", entry.Refunds[1].IdempotencyKey)
		require.Equal(t, []string{OutcomeProcessed, OutcomeReplayed, OutcomeRejected, OutcomeRejected, OutcomeProcessed},
			b.cancelOutcomes(t, auth.PaymentKey))
	})

	t.Run("StoredWhenCachedErrorsReplay", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-consec-3", 10_000)
		b.setConfig(t, Config{ConsecutiveCancelWindow: Duration(time.Second), ReplayCachedErrors: true})

		b.cancel(t, auth.PaymentKey, "cancel-consec-4", partial).payment(t)
		refused := b.cancel(t, auth.PaymentKey, "cancel-consec-5", partial)
		refused.requireError(t, forbidden, CodeForbiddenConsecutiveRequest)

		// After the window the key is stuck on its refusal; a new key works.
		b.clock.Advance(time.Second)
		require.Equal(t, refused, b.cancel(t, auth.PaymentKey, "cancel-consec-5", partial))
		require.EqualValues(t, 8_000, b.cancel(t, auth.PaymentKey, "cancel-consec-6", partial).payment(t).BalanceAmount)
		require.Len(t, b.ledgerEntry(t, auth.PaymentKey).Refunds, 2)
	})

	t.Run("Off", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-consec-4", 10_000)
		require.Equal(t, http.StatusOK, b.cancel(t, auth.PaymentKey, "cancel-consec-7", partial).status)
		require.Equal(t, http.StatusOK, b.cancel(t, auth.PaymentKey, "cancel-consec-8", partial).status)
		require.Len(t, b.ledgerEntry(t, auth.PaymentKey).Refunds, 2)
	})
}

func TestConsecutiveCancelsSweep(t *testing.T) {
	t.Parallel()

	c := newConsecutiveCancels()
	at := time.Date(2024, 2, 13, 12, 0, 0, 0, kst)
	for i := range sweepEvery - 1 {
		require.True(t, c.admit(fmt.Sprintf("pk-%d", i), at, time.Second))
	}
	require.Len(t, c.last, sweepEvery-1)
	// The sweep on the next admit forgets what can no longer refuse.
	require.True(t, c.admit("late", at.Add(time.Second), time.Second))
	require.Equal(t, map[string]time.Time{"late": at.Add(time.Second)}, c.last)
}
