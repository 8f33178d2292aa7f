package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// TestLookupRequests: every request makes the stamp strictly larger, so a
// lookup clears only the request it saw, and one that came after its read
// (or committed after it) survives for a follow-up.
func TestLookupRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()
	p := insertPayment(t, st, pool)

	still, err := st.LookupAnswered(ctx, pool, p.ID, nil)
	require.NoError(t, err)
	require.Nil(t, still, "no request, nothing waits")

	first, err := st.WantLookup(ctx, pool, p.ID)
	require.NoError(t, err)
	// A request whose transaction started earlier than the one before
	// still leaves a larger value.
	_, err = pool.Exec(ctx, "UPDATE payments SET lookup_wanted_at = now() + interval '1 hour' WHERE id = $1", p.ID)
	require.NoError(t, err)
	future, err := st.Payment(ctx, pool, p.ID)
	require.NoError(t, err)
	second, err := st.WantLookup(ctx, pool, p.ID)
	require.NoError(t, err)
	require.True(t, second.After(*future.LookupWantedAt), "strictly larger than the one before, whatever the clock says")
	require.True(t, second.After(first))

	still, err = st.LookupAnswered(ctx, pool, p.ID, &first)
	require.NoError(t, err)
	require.NotNil(t, still, "a request after the one the lookup saw is not answered")
	require.True(t, still.Equal(second))

	still, err = st.LookupAnswered(ctx, pool, p.ID, &second)
	require.NoError(t, err)
	require.Nil(t, still)
	got, err := st.Payment(ctx, pool, p.ID)
	require.NoError(t, err)
	require.Nil(t, got.LookupWantedAt)
	require.True(t, got.UpdatedAt.Equal(p.UpdatedAt), "a lookup request is not a change to the payment")
	require.Equal(t, p.Version, got.Version)

	lost, err := st.ListLookupWanted(ctx, pool, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, lost)
}
