package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// manualPortOnePayment creates a PortOne intent and has the customer
// authenticate it in the (simulated) browser SDK of a store set to manual
// confirm, authenticating paid (the intent's amount when 0). It returns the
// payment, its paymentId and the paymentToken the SDK handed back.
func (b *testBundle) manualPortOnePayment(t *testing.T, amount, paid int64) (payment.Payment, string, string) {
	t.Helper()
	orderID := "order-" + uuid.NewString()[:8]
	in := payment.Intent{OrderID: orderID, OrderName: "Test order", Amount: amount, Gateway: payment.GatewayPortOne}
	require.NoError(t, in.Validate())
	p, created, err := b.store.InsertPayment(context.Background(), b.pool, uuid.NewString(), in)
	require.NoError(t, err)
	require.True(t, created)
	auth, err := b.sim.PortOnePay(gatewaysim.PortOnePayRequest{
		PaymentID: p.PaymentKey, OrderID: orderID, Amount: amount, PaidAmount: paid, Manual: true,
	})
	require.NoError(t, err)
	require.Equal(t, gatewaysim.PortOneReady, auth.Status)
	require.NotEmpty(t, auth.PaymentToken)
	return p, auth.PaymentID, auth.PaymentToken
}

// manualConfirm does what the api does on POST /confirm in manual mode.
func (b *testBundle) manualConfirm(t *testing.T, id, paymentID string, amount int64, token string) {
	t.Helper()
	f, err := payflow.New(payflow.Config{Store: b.store, Outbox: b.client, PortOneConfirmMode: payment.PortOneConfirmManual})
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		_, err := f.Confirm(context.Background(), tx, payment.Everyone(), id, paymentID, amount, token)
		return err
	}))
}

// storedToken reads the payment's token column as it is in the database.
func (b *testBundle) storedToken(t *testing.T, id string) *string {
	t.Helper()
	var tok *string
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT payment_token FROM payments WHERE id = $1", id).Scan(&tok))
	return tok
}

// requireTokenNowhere checks that the token is in no attempt row: the relay
// records what it sent and heard, never the secret it sent.
func (b *testBundle) requireTokenNowhere(t *testing.T, id, token string) {
	t.Helper()
	var found int
	require.NoError(t, b.pool.QueryRow(context.Background(),
		"SELECT count(*) FROM payment_attempts a WHERE a.payment_id = $1 AND strpos(row_to_json(a)::text, $2) > 0",
		id, token).Scan(&found))
	require.Zero(t, found, "the paymentToken is in an attempt row")
}

func TestPortOneManualConfirm(t *testing.T) {
	t.Parallel()

	t.Run("Approved", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{portOneManual: true})
		p, id, token := b.manualPortOnePayment(t, 15000, 0)
		b.manualConfirm(t, p.ID, id, 15000, token)
		require.Equal(t, token, *b.storedToken(t, p.ID), "kept for the relay while confirming")

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.ApprovedAmount)
		require.Equal(t, int64(15000), got.BalanceAmount)
		require.Len(t, got.Attempts, 1, "one call: PortOne's answer is booked, no lookup after it")
		require.Equal(t, string(gateway.ClassSuccess), got.Attempts[0].Classification)
		require.Equal(t, got.ConfirmIdempotencyKey, got.Attempts[0].IdempotencyKey)

		e := b.ledger(t, id)
		require.Equal(t, 1, e.Approvals)
		require.Equal(t, gatewaysim.PortOnePaid, e.Status)
		reqs := b.sim.Requests(id)
		require.Len(t, reqs, 1)
		require.Equal(t, http.MethodPost, reqs[0].Method)
		require.Equal(t, "/payments/"+id+"/confirm", reqs[0].Path)
		require.Equal(t, got.ConfirmIdempotencyKey, reqs[0].IdempotencyKey)

		require.Nil(t, b.storedToken(t, p.ID), "spent: dropped once the payment left confirming")
		b.requireTokenNowhere(t, p.ID, token)
	})

	// PortOne charged, and its answer never reached us: the retry under the
	// same key replays the charge, and the ledger shows one approval.
	t.Run("AnswerLost", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{portOneManual: true})
		p, id, token := b.manualPortOnePayment(t, 15000, 0)
		b.script(t, id, gatewaysim.OperationConfirm, gatewaysim.Step{Kind: gatewaysim.StepLost})
		b.manualConfirm(t, p.ID, id, 15000, token)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.ApprovedAmount)
		e := b.ledger(t, id)
		require.Equal(t, 1, e.Approvals)
		var outcomes, keys []string
		for _, r := range b.sim.Requests(id) {
			if r.Operation == gatewaysim.OperationConfirm {
				outcomes, keys = append(outcomes, r.Outcome), append(keys, r.IdempotencyKey)
			}
		}
		require.Equal(t, []string{gatewaysim.OutcomeLost, gatewaysim.OutcomeReplayed}, outcomes)
		require.Equal(t, []string{got.ConfirmIdempotencyKey, got.ConfirmIdempotencyKey}, keys, "one key")
		require.Nil(t, b.storedToken(t, p.ID))
		b.requireTokenNowhere(t, p.ID, token)
	})

	// The customer authenticated another amount than the intent's (a
	// tampered checkout): PortOne refuses the confirm and charges nothing.
	t.Run("OtherAmountIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{portOneManual: true})
		p, id, token := b.manualPortOnePayment(t, 15000, 1000)
		b.manualConfirm(t, p.ID, id, 15000, token)
		got := b.waitStatus(t, p.ID, payment.StatusFailed)
		require.Equal(t, "INFORMATION_MISMATCH", got.FailureCode)
		require.Zero(t, b.ledger(t, id).Approvals)
		require.Nil(t, b.storedToken(t, p.ID))
	})

	t.Run("WrongTokenIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{portOneManual: true})
		p, id, _ := b.manualPortOnePayment(t, 15000, 0)
		b.manualConfirm(t, p.ID, id, 15000, "ptok_not_the_customers")
		got := b.waitStatus(t, p.ID, payment.StatusFailed)
		require.Equal(t, "INVALID_PAYMENT_TOKEN", got.FailureCode)
		require.Zero(t, b.ledger(t, id).Approvals)
	})

	// Already paid when our confirm arrives (a confirm whose key PortOne no
	// longer replays, say): unclear, so the payment is looked up, and
	// PortOne's record is what is booked.
	t.Run("AlreadyPaidIsLookedUp", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{portOneManual: true})
		p, id, token := b.manualPortOnePayment(t, 15000, 0)
		status, err := portOneConfirmDirect(b, id, token)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		b.manualConfirm(t, p.ID, id, 15000, token)
		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, []string{"confirm:unclear", "lookup:success"}, ops(got.Attempts))
		require.Equal(t, 1, b.ledger(t, id).Approvals)
	})

	// A customer who authenticates and never comes back to the shop is
	// never charged: PortOne charges only at our confirm, and without the
	// checkout's confirm there is none. A webhook's lookup sees READY, and
	// the intent is canceled without a gateway call.
	t.Run("NeverConfirmedIsNeverCharged", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{portOneManual: true})
		p, id, _ := b.manualPortOnePayment(t, 15000, 0)
		// PortOne's webhook for the payment enqueues a lookup, nothing more.
		require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
			_, err := b.client.InsertTx(context.Background(), tx, paymentjob.LookupArgs{PaymentID: p.ID}, nil)
			return err
		}))
		b.waitDrained(t)
		b.requestCancel(t, p.ID, 0)
		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Zero(t, got.ApprovedAmount)
		b.waitDrained(t)

		e := b.ledger(t, id)
		require.Zero(t, e.Approvals)
		require.Equal(t, gatewaysim.PortOneReady, e.Status)
		for _, r := range b.sim.Requests(id) {
			require.NotEqual(t, gatewaysim.OperationConfirm, r.Operation, "no confirm was ever sent")
		}
	})
}

// portOneConfirmDirect confirms a manual payment at the simulator as
// another system would, under a key of its own.
func portOneConfirmDirect(b *testBundle, paymentID, token string) (int, error) {
	res := b.po.Confirm(context.Background(), gateway.ConfirmRequest{
		PaymentKey: paymentID, Amount: 15000, Currency: "KRW", PaymentToken: payment.Token(token),
	}, "someone-elses-key-"+uuid.NewString())
	if res.Err != nil {
		return 0, fmt.Errorf("error confirming directly: %w", res.Err)
	}
	return res.HTTPStatus, nil
}
