package store_test

import (
	"context"
	"fmt"
	"io/fs"
	neturl "net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/db"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// TestOwnersMigration: migration 0013 gives every row made before it the
// default owner, and rewrites neither payments nor the other tables it adds
// a column to (their files stay the same: the constant default lives in the
// catalog).
func TestOwnersMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := emptyDatabase(t)

	// The schema as it was before owners: River's and ours up to 0012,
	// recorded as applied so that Migrate applies only what follows.
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	require.NoError(t, err)
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `CREATE TABLE payment_outbox_migrations (
		version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		if version >= "0013" {
			break
		}
		sql, err := fs.ReadFile(db.Migrations, name)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, string(sql))
		require.NoError(t, err, version)
		_, err = pool.Exec(ctx, "INSERT INTO payment_outbox_migrations (version) VALUES ($1)", version)
		require.NoError(t, err)
	}

	// Rows of a deployment that ran before owners; two keys that picked
	// the same Idempotency-Key.
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO api_keys (id, name, display_prefix, key_hash, scope) VALUES
			('0190a0c8-0000-7000-8000-000000000001', 'a', 'po_a', decode(repeat('aa', 32), 'hex'), 'checkout'),
			('0190a0c8-0000-7000-8000-000000000002', 'b', 'po_b', decode(repeat('bb', 32), 'hex'), 'checkout')`,
		`INSERT INTO payments (id, order_id, order_name, amount, currency, gateway, status)
			SELECT gen_random_uuid(), 'order-old-' || i, 'x', 100, 'KRW', 'toss', 'ready' FROM generate_series(1, 100) i`,
		`INSERT INTO webhook_endpoints (id, url, events, secret) VALUES
			('0190a0c8-0000-7000-8000-0000000000e1', 'https://shop.example/hooks', '{payment.confirmed}', 'whsec_dGVzdA==')`,
		`INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, created_at, expires_at) VALUES
			('0190a0c8-0000-7000-8000-000000000001', 'same', '\x00', $1, $2),
			('0190a0c8-0000-7000-8000-000000000002', 'same', '\x00', $1::timestamptz + interval '1 second', $2),
			('0190a0c8-0000-7000-8000-000000000002', 'other', '\x00', $1, $2)`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{now, now.Add(24 * time.Hour)}
		}
		_, err := pool.Exec(ctx, q, args...)
		require.NoError(t, err)
	}
	files := func() map[string]uint32 {
		out := map[string]uint32{}
		rows, err := pool.Query(ctx, `SELECT relname, relfilenode FROM pg_class
			WHERE relname IN ('payments', 'api_keys', 'webhook_endpoints')`)
		require.NoError(t, err)
		for rows.Next() {
			var name string
			var node uint32
			require.NoError(t, rows.Scan(&name, &node))
			out[name] = node
		}
		require.NoError(t, rows.Err())
		return out
	}
	before := files()

	res, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Contains(t, res.Applied, "0013_owners")
	require.Equal(t, before, files(), "no table was rewritten")

	for _, table := range []string{"api_keys", "payments", "webhook_endpoints", "idempotency_keys"} {
		var other int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE owner <> 'default'").Scan(&other))
		require.Zero(t, other, table)
	}
	var records []string
	rows, err := pool.Query(ctx, `SELECT idempotency_key || ' ' || api_key_id FROM idempotency_keys ORDER BY 1`)
	require.NoError(t, err)
	records, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{
		"other 0190a0c8-0000-7000-8000-000000000002",
		"same 0190a0c8-0000-7000-8000-000000000002",
	}, records, "of two records under one key, the newest is kept")

	keys, err := store.New().APIKeys(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, "default", keys[0].Owner)
}

// emptyDatabase returns a pool on a new, unmigrated database of the test
// server, dropped when the test ends.
func emptyDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := t.Context()
	serverURL := dbtest.ServerURL(t)
	admin, err := pgx.Connect(ctx, serverURL)
	require.NoError(t, err)
	name := fmt.Sprintf("store_owners_%d", time.Now().UnixNano())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	url := serverURL + " dbname=" + name // keyword/value form: a later keyword wins
	if u, err := neturl.Parse(serverURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path, u.RawPath = "/"+name, ""
		url = u.String()
	}
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.Close()
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = admin.Close(ctx)
	})
	return pool
}
