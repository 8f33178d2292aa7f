package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// TestBooksDifferences holds the differences' life to what docs/design.md
// ("Reconciliation") says: found again, a difference outlives a run; not
// found again by a run whose window covers it, it is resolved; outside the
// window it stays open; only the latest run of a gateway explains what is
// unexplained now.
func TestBooksDifferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	run := func(gw string, until time.Time) int64 {
		id, err := st.StartBooksRun(ctx, pool, gw, until.Add(-48*time.Hour), until, until)
		require.NoError(t, err)
		return id
	}
	found := func(runID int64, subject string, at time.Time) int {
		n, err := st.RecordBooksDifference(ctx, pool, runID, store.BooksDifference{
			Gateway: "toss", Kind: store.BooksUnknownPayment, PaymentKey: subject, Subject: subject, OccurredAt: at,
			GatewayRecord: []byte(`[]`),
		})
		require.NoError(t, err)
		return n
	}
	finish := func(id int64) {
		at := day
		require.NoError(t, st.FinishBooksRun(ctx, pool, store.BooksRun{ID: id, FinishedAt: &at}))
	}

	first := run("toss", day)
	require.Equal(t, 1, found(first, "pk-old", day.Add(-47*time.Hour)))
	require.Equal(t, 1, found(first, "pk-settled", day.Add(-time.Hour)))
	require.Equal(t, 1, found(first, "pk-stays", day.Add(-time.Hour)))
	finish(first)
	unexplained, err := st.BooksUnexplained(ctx, pool)
	require.NoError(t, err)
	require.Len(t, unexplained, 3)

	// A day later: pk-stays is found again; pk-settled is not, and its
	// moment is in the window; pk-old's has left it.
	second := run("toss", day.Add(24*time.Hour))
	require.Equal(t, 2, found(second, "pk-stays", day.Add(-time.Hour)))
	resolved, err := st.ResolveBooksDifferences(ctx, pool, "toss", second, day.Add(-24*time.Hour), day.Add(24*time.Hour), day.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, resolved)
	finish(second)
	// A run of another gateway explains nothing of Toss's.
	finish(run("portone", day.Add(24*time.Hour)))

	open, err := st.OpenBooksDifferences(ctx, pool, 10)
	require.NoError(t, err)
	var subjects []string
	for _, d := range open {
		subjects = append(subjects, d.Subject)
	}
	require.ElementsMatch(t, []string{"pk-old", "pk-stays"}, subjects)
	unexplained, err = st.BooksUnexplained(ctx, pool)
	require.NoError(t, err)
	require.Len(t, unexplained, 1, "only what the latest run found")
	require.Equal(t, "pk-stays", unexplained[0].Subject)
	require.Equal(t, 2, unexplained[0].Runs)
	require.Equal(t, first, unexplained[0].FirstRunID)

	// A later run that failed compared nothing: it hides nothing.
	failed := run("toss", day.Add(48*time.Hour))
	at := day.Add(48 * time.Hour)
	require.NoError(t, st.FinishBooksRun(ctx, pool, store.BooksRun{ID: failed, FinishedAt: &at, Error: "HTTP 401 UNAUTHORIZED_KEY"}))
	unexplained, err = st.BooksUnexplained(ctx, pool)
	require.NoError(t, err)
	require.Len(t, unexplained, 1)

	stats, err := st.BooksStats(ctx, pool)
	require.NoError(t, err)
	require.Len(t, stats, 2)
	require.Equal(t, store.BooksStats{Gateway: "portone", LastSuccess: day}, normalizedStats(stats[0]))
	require.Equal(t, store.BooksStats{Gateway: "toss", LastSuccess: day, Open: 2, Persisting: 1}, normalizedStats(stats[1]),
		"the failed run is no success")

	runs, err := st.BooksRuns(ctx, pool, 2)
	require.NoError(t, err)
	require.Len(t, runs, 2, "newest first, at most the limit")
	require.Equal(t, failed, runs[0].ID)
	require.Equal(t, "HTTP 401 UNAUTHORIZED_KEY", runs[0].Error)
}

func normalizedStats(s store.BooksStats) store.BooksStats {
	s.LastSuccess = s.LastSuccess.UTC()
	return s
}
