package benchseed

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// A small seed satisfies the schema (every constraint and foreign key, which
// the load drops and re-adds, so re-adding validates every row), ends with
// exactly the schema it started with, and keeps the rules the bench's checks
// rely on.
func TestSeedSmall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"default", Options{N: 20_000, BatchSize: 3_000}},
		{"drop indexes", Options{N: 5_000, BatchSize: 2_000, DropIndexes: true}},
		{"keep foreign keys, no webhooks", Options{N: 5_000, BatchSize: 5_000, KeepForeignKeys: true, NoWebhooks: true, Workers: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := dbtest.Pool(t)
			before, err := secondaryObjects(ctx, pool)
			require.NoError(t, err)

			var last int
			st, err := SeedWith(ctx, pool, tc.o, func(done int) { last = max(last, done) })
			require.NoError(t, err)
			require.Equal(t, tc.o.N, last)
			require.EqualValues(t, tc.o.N, st.Rows["payments"])

			after, err := secondaryObjects(ctx, pool)
			require.NoError(t, err)
			require.Equal(t, defs(before), defs(after), "the schema must end as it began")

			problems, err := Verify(ctx, pool)
			require.NoError(t, err)
			require.Empty(t, problems)

			counts, err := StatusCounts(ctx, pool)
			require.NoError(t, err)
			var total int64
			for _, n := range counts {
				total += n
			}
			require.EqualValues(t, tc.o.N, total)
			// The mix: mostly confirmed, about 15% canceled in some way.
			share := func(s ...string) float64 {
				var n int64
				for _, x := range s {
					n += counts[x]
				}
				return float64(n) / float64(total)
			}
			require.InDelta(t, 0.76, share("confirmed"), 0.03)
			require.InDelta(t, 0.15, share("canceled", "partially_canceled"), 0.03)
			require.InDelta(t, 0.04, share("failed"), 0.015)
			require.InDelta(t, 0.02, share("expired"), 0.01)
			require.Positive(t, counts["confirming"])

			var deliveries int64
			require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM webhook_deliveries").Scan(&deliveries))
			if tc.o.NoWebhooks {
				require.Zero(t, deliveries)
			} else {
				require.Positive(t, deliveries)
			}

			// Seeding again without a wipe is refused.
			_, err = SeedWith(ctx, pool, Options{N: 10}, nil)
			require.Error(t, err)

			f, err := Measure(ctx, pool)
			require.NoError(t, err)
			require.EqualValues(t, tc.o.N, f.Payments)
			require.Positive(t, f.BytesPerPayment)
		})
	}
}

// Every hot query plans and runs against a small seed.
func TestExplainSmall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	_, err := SeedWith(ctx, pool, Options{N: 3_000}, nil)
	require.NoError(t, err)
	res, err := Explain(ctx, pool, 2)
	require.NoError(t, err)
	require.Len(t, res, len(HotQueries))
	for _, r := range res {
		require.NotEmpty(t, r.Scans+r.Name)
	}
}
