package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// JobsInStates finds the jobs in the states asked for, newest first, among
// finished ones (it compares states as River's enum, so its index is used).
func TestJobsInStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	_, err := pool.Exec(ctx, `
INSERT INTO river_job (state, kind, args, max_attempts, finalized_at, errors) VALUES
    ('completed', 'payment_confirm', '{"paymentId": "a"}', 20, now(), NULL),
    ('retryable', 'payment_confirm', '{"paymentId": "b"}', 20, NULL, ARRAY['{"at": "2026-01-01T00:00:00Z", "attempt": 1, "error": "boom"}'::jsonb]),
    ('discarded', 'webhook_delivery', '{"deliveryId": "c"}', 23, now(), NULL),
    ('available', 'payment_cancel', '{"paymentId": "d"}', 20, NULL, NULL)`)
	require.NoError(t, err)

	s := store.New()
	jobs, err := s.JobsInStates(ctx, pool, []string{"retryable", "discarded"}, 10)
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	require.Equal(t, "discarded", jobs[0].State)
	require.Equal(t, "retryable", jobs[1].State)
	require.Equal(t, "boom", jobs[1].LastError())

	jobs, err = s.JobsInStates(ctx, pool, []string{"retryable"}, 10)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
}
