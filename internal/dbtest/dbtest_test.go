package dbtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestPool(t *testing.T) {
	t.Parallel()

	ctx := t.Context()

	t.Run("Migrated", func(t *testing.T) {
		t.Parallel()
		pool := dbtest.Pool(t)

		// River's tables, empty.
		for _, table := range []string{"river_job", "river_leader", "river_queue"} {
			require.Zero(t, count(t, pool, table), table)
		}
		// The project's tables, empty.
		for _, table := range []string{"payments", "payment_attempts", "payment_cancels"} {
			require.Zero(t, count(t, pool, table), table)
		}
		var versions []string
		rows, err := pool.Query(ctx, "SELECT version FROM payment_outbox_migrations ORDER BY version")
		require.NoError(t, err)
		versions, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Contains(t, versions, "0001_payments")
	})

	t.Run("Isolated", func(t *testing.T) {
		t.Parallel()
		pool1, pool2 := dbtest.Pool(t), dbtest.Pool(t)

		require.NotEqual(t, databaseName(t, pool1), databaseName(t, pool2))

		insertPayment(t, pool1, "order_isolated_1")
		_, err := pool1.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state)
			VALUES ('{}', 'probe', 1, 'default', 'available')`)
		require.NoError(t, err)

		require.Equal(t, 1, count(t, pool1, "payments"))
		require.Equal(t, 1, count(t, pool1, "river_job"))
		require.Zero(t, count(t, pool2, "payments"))
		require.Zero(t, count(t, pool2, "river_job"))

		// The same order ID is free in the other database.
		insertPayment(t, pool2, "order_isolated_1")
	})

	t.Run("DroppedAtCleanup", func(t *testing.T) {
		t.Parallel()

		var name string
		t.Run("Owner", func(t *testing.T) {
			pool := dbtest.Pool(t)
			name = databaseName(t, pool)
			require.True(t, databaseExists(t, name))
		})
		require.NotEmpty(t, name)
		require.False(t, databaseExists(t, name), "database %s outlived its test", name)
	})

	t.Run("URL", func(t *testing.T) {
		t.Parallel()
		conn, err := pgx.Connect(ctx, dbtest.URL(t))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })

		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM river_job").Scan(&n))
		require.Zero(t, n)
	})

	// Many clones of one template at once, as parallel tests make them.
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		for i := range 8 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				pool := dbtest.Pool(t)
				insertPayment(t, pool, "order_concurrent")
				require.Equal(t, 1, count(t, pool, "payments"))
			})
		}
	})
}

func TestServerURL(t *testing.T) {
	t.Parallel()

	conn, err := pgx.Connect(t.Context(), dbtest.ServerURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	var canCreate bool
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").Scan(&canCreate))
	require.True(t, canCreate, "the server URL must allow creating databases")
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n))
	return n
}

func databaseName(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var name string
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name))
	return name
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbtest.ServerURL(t))
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var exists bool
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	return exists
}

func insertPayment(t *testing.T, pool *pgxpool.Pool, orderID string) {
	t.Helper()
	_, err := pool.Exec(t.Context(), `INSERT INTO payments (id, order_id, order_name, amount, status)
		VALUES (gen_random_uuid(), $1, 'Coffee', 4500, 'ready')`, orderID)
	require.NoError(t, err)
}
