package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// statementCounter is a pool that counts its Exec statements and the most
// rows one of them changed.
type statementCounter struct {
	*pgxpool.Pool
	statements int
	maxRows    int64
}

func (c *statementCounter) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.Pool.Exec(ctx, sql, args...)
	c.statements++
	c.maxRows = max(c.maxRows, tag.RowsAffected())
	return tag, err
}

// TestSweepExpiredIdempotencyKeys: a backlog of expired records is deleted
// in statements of at most the batch size, looping until none is left, and
// the live records stay.
func TestSweepExpiredIdempotencyKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.Pool(t)
	st := store.New()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

	key, err := apikey.Generate()
	require.NoError(t, err)
	hash := apikey.Hash(key)
	k, err := st.InsertAPIKey(ctx, pool, uuid.NewString(), "sweep", apikey.DisplayPrefix(key), hash[:], apikey.ScopeCheckout, payment.DefaultOwner)
	require.NoError(t, err)
	insert := func(n int, prefix string, expires time.Time) {
		_, err := pool.Exec(ctx, `
			INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, created_at, expires_at)
			SELECT $1::uuid, $2 || i, '\x00', $3, $3 FROM generate_series(1, $4) i`, k.ID, prefix, expires, n)
		require.NoError(t, err)
	}
	insert(2345, "expired-", now.Add(-time.Hour))
	insert(7, "live-", now.Add(time.Hour))
	insert(3, "expiring-now-", now) // expires_at < now only: these stay

	db := &statementCounter{Pool: pool}
	n, err := st.SweepExpiredIdempotencyKeys(ctx, db, now, 500)
	require.NoError(t, err)
	require.Equal(t, int64(2345), n)
	require.Equal(t, 5, db.statements, "4 full batches of 500, then the 345 left: one statement each")
	require.Equal(t, int64(500), db.maxRows, "no statement deletes more than the batch")

	var left int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM idempotency_keys WHERE idempotency_key LIKE 'expired-%'").Scan(&left))
	require.Zero(t, left)
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM idempotency_keys").Scan(&left))
	require.Equal(t, 10, left, "the live records stay")

	// Nothing left to do: one statement that finds nothing.
	db = &statementCounter{Pool: pool}
	n, err = st.SweepExpiredIdempotencyKeys(ctx, db, now, 500)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, 1, db.statements)

	// A backlog that is an exact multiple of the batch ends on an empty one.
	insert(1000, "round-", now.Add(-time.Minute))
	db = &statementCounter{Pool: pool}
	n, err = st.SweepExpiredIdempotencyKeys(ctx, db, now, 500)
	require.NoError(t, err)
	require.Equal(t, int64(1000), n)
	require.Equal(t, 3, db.statements)
}
