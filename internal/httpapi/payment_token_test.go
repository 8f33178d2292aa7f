package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// createGatewayPayment creates a payment for orderID through gw.
func (b *testBundle) createGatewayPayment(t *testing.T, orderID, gw string, amount int64) paymentResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"orderId": orderID, "amount": amount, "orderName": "Blue shirt", "gateway": gw})
	require.NoError(t, err)
	rec := b.postJSON(t, "/v1/payments", string(body))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return decode[paymentResponse](t, rec)
}

// storedToken reads the payment's token column as it is in the database.
func (b *testBundle) storedToken(t *testing.T, id string) *string {
	t.Helper()
	var tok *string
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT payment_token FROM payments WHERE id = $1", id).Scan(&tok))
	return tok
}

func withMode(mode payment.PortOneConfirmMode) func(*Config) {
	return func(c *Config) {
		c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
		c.PortOneConfirmMode = mode
	}
}

func TestConfirmPaymentToken(t *testing.T) {
	t.Parallel()
	const token = "ptok_0193d1f0_secret_of_the_customer"

	t.Run("ManualKeepsItUnseen", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMode(payment.PortOneConfirmManual))
		p := b.createGatewayPayment(t, "order-t-0001", payment.GatewayPortOne, 15000)
		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"`+p.PaymentKey+`","amount":15000,"paymentToken":"`+token+`"}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.NotContains(t, rec.Body.String(), token, "never answered")
		require.Equal(t, "confirming", decode[paymentResponse](t, rec).Status)
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))
		require.Equal(t, token, *b.storedToken(t, p.ID), "kept for the relay")

		got := b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "")
		require.Equal(t, http.StatusOK, got.Code)
		require.NotContains(t, got.Body.String(), token)
		require.NotEmpty(t, b.logs.rawLines())
		for _, l := range b.logs.rawLines() {
			require.NotContains(t, string(l), token, "never logged")
		}
	})

	// A manual-mode PortOne confirm without its token could never charge:
	// refused, and nothing is written.
	t.Run("ManualWithoutToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMode(payment.PortOneConfirmManual))
		p := b.createGatewayPayment(t, "order-t-0002", payment.GatewayPortOne, 15000)
		for _, body := range []string{
			`{"paymentKey":"` + p.PaymentKey + `","amount":15000}`,
			`{"paymentKey":"` + p.PaymentKey + `","amount":15000,"paymentToken":""}`,
		} {
			rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", body)
			pr := requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
			require.Contains(t, pr.Detail, "paymentToken is required")
		}
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
		require.Nil(t, b.storedToken(t, p.ID))
		stored, err := b.store.Payment(t.Context(), b.pool, p.ID)
		require.NoError(t, err)
		require.Equal(t, p.PaymentKey, stored.PaymentKey, "bound at create, nothing else written")
	})

	// Refused where there is nothing to confirm with a token: Toss payments
	// (in either mode) and PortOne payments of a browser-mode deployment.
	t.Run("RefusedElsewhere", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name   string
			mode   payment.PortOneConfirmMode
			gw     string
			detail string
		}{
			{"TossInManual", payment.PortOneConfirmManual, payment.GatewayToss, "only for PortOne's manual confirm"},
			{"TossInBrowser", payment.PortOneConfirmBrowser, payment.GatewayToss, "only for PortOne's manual confirm"},
			{"PortOneInBrowser", payment.PortOneConfirmBrowser, payment.GatewayPortOne, "complete in the browser"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, withMode(tt.mode))
				p := b.createGatewayPayment(t, "order-t-"+strings.ToLower(tt.name), tt.gw, 15000)
				rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_t_1","amount":15000,"paymentToken":"`+token+`"}`)
				pr := requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
				require.Contains(t, pr.Detail, tt.detail)
				require.NotContains(t, rec.Body.String(), token)
				require.Equal(t, payment.StatusReady, b.status(t, p.ID))
				require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
				require.Nil(t, b.storedToken(t, p.ID))
			})
		}
	})

	t.Run("BadForm", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMode(payment.PortOneConfirmManual))
		p := b.createGatewayPayment(t, "order-t-0003", payment.GatewayPortOne, 15000)
		for name, tok := range map[string]string{
			"Space":   "ptok 1",
			"Control": `ptok\u0000`,
			"Long":    strings.Repeat("t", payment.PaymentTokenMaxLen+1),
		} {
			rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"`+p.PaymentKey+`","amount":15000,"paymentToken":"`+tok+`"}`)
			requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
			require.Equal(t, payment.StatusReady, b.status(t, p.ID), name)
		}
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
	})
}
