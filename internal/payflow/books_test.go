package payflow_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestLookUpForBooks: reconciliation's use case puts one lookup per payment
// into the outbox, none for a payment whose lookup is already waiting, and
// changes no payment.
func TestLookUpForBooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()
	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	flow, err := payflow.New(payflow.Config{Store: st, Outbox: outbox})
	require.NoError(t, err)

	var ids []string
	for range 2 {
		in := payment.Intent{OrderID: "order-" + uuid.NewString()[:8], OrderName: "Tea", Amount: 5000, Gateway: payment.GatewayToss}
		require.NoError(t, in.Validate())
		p, _, err := st.InsertPayment(ctx, pool, uuid.NewString(), in)
		require.NoError(t, err)
		ids = append(ids, p.ID)
	}
	enqueue := func(ids []string) int {
		var n int
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			n, err = flow.LookUpForBooks(ctx, tx, ids)
			return err
		}))
		return n
	}
	require.Equal(t, 2, enqueue(ids))
	require.Equal(t, 0, enqueue(ids[:1]), "its lookup is already waiting")
	require.Equal(t, 0, enqueue(nil))

	var jobs int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = $1", paymentjob.LookupArgs{}.Kind()).Scan(&jobs))
	require.Equal(t, 2, jobs)
	for _, id := range ids {
		p, err := st.Payment(ctx, pool, id)
		require.NoError(t, err)
		require.Equal(t, payment.StatusReady, p.Status, "a lookup settles; this does not")
	}
}
