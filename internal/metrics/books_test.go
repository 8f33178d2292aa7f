package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestBooksGauges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.Pool(t)
	st := store.New()
	r := NewRegistry(nil)
	clock := &testClock{now: time.Now()}
	registerBooksDB(r, DBConfig{DB: pool, Stats: st, Now: clock.Now})

	// No run yet: no last success, nothing open.
	got := gathered(t, r)
	require.NotContains(t, got, nameBooksLastSuccess)
	require.Contains(t, got, `payment_outbox_books_open_differences{gateway="toss"} 0`)

	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	record := func(kind, subject string) {
		id, err := st.StartBooksRun(ctx, pool, "toss", until.Add(-48*time.Hour), until, until)
		require.NoError(t, err)
		_, err = st.RecordBooksDifference(ctx, pool, id, store.BooksDifference{
			Gateway: "toss", Kind: kind, PaymentKey: subject, Subject: subject, OccurredAt: until.Add(-time.Hour),
		})
		require.NoError(t, err)
		finished := until.Add(time.Minute)
		require.NoError(t, st.FinishBooksRun(ctx, pool, store.BooksRun{ID: id, FinishedAt: &finished}))
	}
	record(store.BooksUnknownPayment, "pk-1")
	record(store.BooksUnknownPayment, "pk-1") // found again: outlived a run
	record(store.BooksRefundMissing, "tx-2")

	clock.Advance(DefaultDBCacheFor)
	got = gathered(t, r)
	for _, want := range []string{
		`payment_outbox_books_open_differences{gateway="toss"} 2`,
		`payment_outbox_books_persisting_differences{gateway="toss"} 1`,
		`payment_outbox_books_open_differences{gateway="portone"} 0`,
	} {
		require.Contains(t, got, want)
	}
	require.Contains(t, got, `payment_outbox_books_last_success_timestamp_seconds{gateway="toss"} 1.79608326e+09`)
}

func TestBooksCountersStartAtZero(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	m := NewRelay(r)
	got := gathered(t, r)
	for _, want := range []string{
		`payment_outbox_books_runs_total{gateway="portone",result="error"} 0`,
		`payment_outbox_books_differences_found_total{gateway="toss",kind="refund_missing"} 0`,
		`payment_outbox_books_differences_persisting_total{gateway="toss"} 0`,
	} {
		require.Contains(t, got, want)
	}
	m.BooksRun("toss", true, map[string]int{store.BooksRefundMissing: 2}, 1)
	got = gathered(t, r)
	require.Contains(t, got, `payment_outbox_books_runs_total{gateway="toss",result="ok"} 1`)
	require.Contains(t, got, `payment_outbox_books_differences_found_total{gateway="toss",kind="refund_missing"} 2`)
	require.Contains(t, got, `payment_outbox_books_differences_persisting_total{gateway="toss"} 1`)
	var none *Relay
	none.BooksRun("toss", false, nil, 0)
}
