package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// TestPaymentTokenLivesWithTheConfirm: the token is saved with the confirm
// request, read back for the relay, and gone with the save that settles the
// confirm; the database refuses a token on a payment past its confirm.
func TestPaymentTokenLivesWithTheConfirm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()
	p := insertPayment(t, st, pool)

	_, err := p.RequestConfirm("pay-token", 5000, time.Now())
	require.NoError(t, err)
	p.PaymentToken = "ptok_1"
	require.NoError(t, st.SavePayment(ctx, pool, &p))
	read, _, err := st.PaymentForConfirm(ctx, pool, p.ID)
	require.NoError(t, err)
	require.Equal(t, "ptok_1", read.PaymentToken.Reveal())

	read.ApplyRefusal(payment.StatusFailed, "INFORMATION_MISMATCH", "m", nil, time.Now())
	require.NoError(t, st.SavePayment(ctx, pool, &read))
	require.Empty(t, read.PaymentToken)
	var tok *string
	require.NoError(t, pool.QueryRow(ctx, "SELECT payment_token FROM payments WHERE id = $1", p.ID).Scan(&tok))
	require.Nil(t, tok)

	_, err = pool.Exec(ctx, "UPDATE payments SET payment_token = 'ptok_2' WHERE id = $1", p.ID)
	require.ErrorContains(t, err, "payments_payment_token_in_confirm")
}
