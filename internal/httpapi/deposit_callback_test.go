package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// depositCallbackBody is a DEPOSIT_CALLBACK the way Toss sends it: its
// members at the top level.
func depositCallbackBody(orderID, secret string) string {
	return fmt.Sprintf(`{"createdAt":"2026-11-21T21:00:05.000000","secret":%q,"status":"DONE",`+
		`"transactionKey":"9FF15E1A29D0E77C218F57262BFA4986","orderId":%q}`, secret, orderID)
}

// waitingForDeposit puts a confirmed-to-be payment in waiting_for_deposit
// with a virtual account and the deposit secret, as the relay records it.
func (b *testBundle) waitingForDeposit(t *testing.T, orderID, paymentKey, secret string) paymentResponse {
	t.Helper()
	p := b.createPayment(t, orderID, 15000)
	b.confirmPayment(t, p.ID, paymentKey, 15000)
	// The confirm's job is done with: the relay completes it once the
	// account is recorded.
	_, err := b.pool.Exec(t.Context(), "DELETE FROM river_job")
	require.NoError(t, err)
	stored, err := b.store.PaymentForUpdate(t.Context(), b.pool, p.ID)
	require.NoError(t, err)
	stored.ApplyAccountIssued(payment.VirtualAccount{Bank: "88", AccountNumber: "79019639679511", Holder: "김토스",
		DueDate: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}, payment.Token(secret), nil)
	require.NoError(t, b.store.SavePayment(t.Context(), b.pool, &stored))
	return p
}

func TestDepositCallback(t *testing.T) {
	t.Parallel()

	t.Run("RightSecretAsksForALookup", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.waitingForDeposit(t, "order-dc-1", "pk_dc_1", "ps_right_secret")
		requireWebhookOK(t, b.postWebhook(t, depositCallbackBody("order-dc-1", "ps_right_secret")))
		require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID))
		got := b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "")
		require.Contains(t, got.Body.String(), `"status":"waiting_for_deposit"`, "a webhook only asks; the lookup settles")
		require.Contains(t, got.Body.String(), `"accountNumber":"79019639679511"`)
		require.NotContains(t, got.Body.String(), "ps_right_secret", "the secret is never shown")
	})

	// A forged callback, or one without a secret: nothing changes and
	// nothing is enqueued, answered as any webhook we do not act on.
	t.Run("WrongSecretChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.waitingForDeposit(t, "order-dc-2", "pk_dc_2", "ps_right_secret")
		before := b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Body.String()
		for _, body := range []string{
			depositCallbackBody("order-dc-2", "ps_wrong_secret"),
			depositCallbackBody("order-dc-2", "ps_right_secre"),
			depositCallbackBody("order-dc-2", "ps_right_secrett"),
			strings.Replace(depositCallbackBody("order-dc-2", "x"), `"secret":"x",`, "", 1),
			depositCallbackBody("order-nobody", "ps_right_secret"),
		} {
			requireWebhookOK(t, b.postWebhook(t, body))
		}
		require.Equal(t, 0, b.countJobs(t, kindLookup, p.ID))
		require.Equal(t, before, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Body.String())
		var wanted *time.Time
		require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT lookup_wanted_at FROM payments WHERE id = $1", p.ID).Scan(&wanted))
		require.Nil(t, wanted)
	})

	// A card payment has no secret: no callback matches it.
	t.Run("NoStoredSecretMatchesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-dc-3", 15000)
		b.confirmPayment(t, p.ID, "pk_dc_3", 15000)
		requireWebhookOK(t, b.postWebhook(t, depositCallbackBody("order-dc-3", "")))
		requireWebhookOK(t, b.postWebhook(t, depositCallbackBody("order-dc-3", "anything")))
		require.Equal(t, 0, b.countJobs(t, kindLookup, p.ID))
	})
}
