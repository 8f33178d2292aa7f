package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
)

// TestGrowth runs the growth phase on its own, in a database of its own
// (cloned from DATABASE_URL's server by dbtest and dropped afterwards):
//
//	DATABASE_URL=$(scripts/localpg start /tmp/pg-growth 55651) \
//	GROWTH_N=1000000 GROWTH_PARTITION=1 go test -run TestGrowth -v -timeout 0 ./cmd/bench/
//
// GROWTH_N is the number of payments (10000000 for the figure);
// without it the test is skipped. GROWTH_JSON names a file for the results.
func TestGrowth(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GROWTH_N"))
	if n <= 0 {
		t.Skip("set GROWTH_N (e.g. 1000000) to grow the tables; see the test's comment")
	}
	if os.Getenv("DATABASE_URL") == "" {
		t.Skip("DATABASE_URL not set")
	}
	ctx := context.Background()
	pool := dbtest.Pool(t)
	res, err := runGrowth(ctx, pool, growthOptions{
		N:                     n,
		Explain:               true,
		Partition:             os.Getenv("GROWTH_PARTITION") != "",
		PartitionCopyBaseline: os.Getenv("GROWTH_PARTITION") == "copy",
		DropIndexes:           os.Getenv("GROWTH_DROP_INDEXES") != "",
	}, os.Stdout)
	require.NoError(t, err)
	require.Empty(t, res.Problems)
	if f := os.Getenv("GROWTH_JSON"); f != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f, b, 0o644))
	}
}

// The growth phase end to end on a tiny seed.
func TestGrowthSmall(t *testing.T) {
	if os.Getenv("DATABASE_URL") == "" {
		t.Skip("DATABASE_URL not set")
	}
	pool := dbtest.Pool(t)
	var out bytes.Buffer
	res, err := runGrowth(context.Background(), pool, growthOptions{N: 3_000, SmallN: 500, Runs: 2, Explain: true, Partition: true, PartitionCopyBaseline: true}, &out)
	t.Log(out.String())
	require.NoError(t, err)
	require.Empty(t, res.Problems)
	require.EqualValues(t, 3_000, res.Footprint.Payments)
	require.Len(t, res.Grown, len(res.Small))
	require.NotNil(t, res.Partitioning)
	require.Positive(t, res.Partitioning.Rows)
}
