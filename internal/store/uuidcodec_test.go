package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// TestRegisterUUID: with the binary codec registered, google/uuid values go
// to Postgres and back unchanged, NULLs included, as parameters, scan
// targets and array elements, and text still scans into strings.
func TestRegisterUUID(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(dbtest.URL(t))
	require.NoError(t, err)
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		store.RegisterUUID(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()

	id := uuid.New()
	var (
		got    uuid.UUID
		gotPtr *uuid.UUID
		text   string
	)
	require.NoError(t, pool.QueryRow(ctx, "SELECT $1::uuid, $1::uuid, $1::uuid::text", id).Scan(&got, &gotPtr, &text))
	require.Equal(t, id, got)
	require.Equal(t, id, *gotPtr)
	require.Equal(t, id.String(), text)

	// A pointer parameter, nil and not; a NULL into a pointer.
	require.NoError(t, pool.QueryRow(ctx, "SELECT $1::uuid", &id).Scan(&got))
	require.Equal(t, id, got)
	var nilID *uuid.UUID
	gotPtr = &id
	require.NoError(t, pool.QueryRow(ctx, "SELECT $1::uuid", nilID).Scan(&gotPtr))
	require.Nil(t, gotPtr)
	require.Error(t, pool.QueryRow(ctx, "SELECT NULL::uuid").Scan(&got), "NULL into a non-pointer")

	// A string parameter and a string target still work.
	require.NoError(t, pool.QueryRow(ctx, "SELECT $1::uuid::text", id.String()).Scan(&text))
	require.Equal(t, id.String(), text)
	require.NoError(t, pool.QueryRow(ctx, "SELECT $1::uuid", id.String()).Scan(&text))
	require.Equal(t, id.String(), text)

	// Arrays.
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	var back []uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, "SELECT $1::uuid[]", ids).Scan(&back))
	require.Equal(t, ids, back)
}

// BenchmarkUUIDParam is the encoding of one uuid parameter, through
// driver.Valuer and text (pgx's default) and through RegisterUUID.
func BenchmarkUUIDParam(b *testing.B) {
	id := uuid.New()
	for _, tt := range []struct {
		name     string
		register bool
	}{{"Valuer", false}, {"Binary", true}} {
		b.Run(tt.name, func(b *testing.B) {
			m := pgtype.NewMap()
			if tt.register {
				store.RegisterUUID(m)
			}
			var buf []byte
			for b.Loop() {
				var err error
				buf, err = m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id, buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				var out uuid.UUID
				if err := m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, buf, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
