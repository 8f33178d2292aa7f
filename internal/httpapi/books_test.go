package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// booksRun records a finished run that found a gateway payment we never
// heard of, its order id the gateway's (so anything at all).
func (b *testBundle) booksRun(t *testing.T, orderID string) int64 {
	t.Helper()
	ctx := t.Context()
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	id, err := b.store.StartBooksRun(ctx, b.pool, "toss", until.Add(-48*time.Hour), until, until)
	require.NoError(t, err)
	record := `[{"paymentKey":"tgen_stray","orderId":` + jsonString(orderID) + `,"transactionKey":"TX1","kind":"approval","status":"DONE","amount":12000,"at":"2026-11-30T03:00:00Z"}]`
	_, err = b.store.RecordBooksDifference(ctx, b.pool, id, store.BooksDifference{
		Gateway: "toss", Kind: store.BooksUnknownPayment, PaymentKey: "tgen_stray", Subject: "tgen_stray",
		OccurredAt: until.Add(-21 * time.Hour), GatewayRecord: []byte(record),
	})
	require.NoError(t, err)
	finished := until.Add(time.Minute)
	require.NoError(t, b.store.FinishBooksRun(ctx, b.pool, store.BooksRun{ID: id, FinishedAt: &finished, Transactions: 1, Differences: 1, Listed: 1}))
	return id
}

func jsonString(s string) string {
	out := `"`
	for _, r := range s {
		switch r {
		case '"', '\\':
			out += `\` + string(r)
		default:
			out += string(r)
		}
	}
	return out + `"`
}

func TestOpsBooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	runID := b.booksRun(t, "order-stray-1")

	rec := b.do(t, http.MethodGet, "/v1/ops/books", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := decode[booksReportResponse](t, rec)
	require.Len(t, got.Runs, 1)
	require.Equal(t, runID, got.Runs[0].ID)
	require.Equal(t, 1, got.Runs[0].Listed)
	require.NotNil(t, got.Runs[0].FinishedAt)
	require.Len(t, got.Differences, 1)
	d := got.Differences[0]
	require.Equal(t, "unknown_payment", d.Kind)
	require.Nil(t, d.PaymentID, "none of ours")
	require.False(t, d.Lookup)
	require.Equal(t, []booksTransactionResponse{{
		PaymentKey: "tgen_stray", OrderID: "order-stray-1", TransactionKey: "TX1", Kind: "approval", Status: "DONE",
		Amount: 12000, At: time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC),
	}}, d.GatewayRecord)

	readonly, id := b.createScopedKey(t, "auditor", apikey.ScopeReadonly)
	require.Equal(t, http.StatusOK, b.as(readonly, id).do(t, http.MethodGet, "/v1/ops/books", "").Code)
	checkout, id := b.createScopedKey(t, "shop", apikey.ScopeCheckout)
	require.Equal(t, http.StatusForbidden, b.as(checkout, id).do(t, http.MethodGet, "/v1/ops/books", "").Code)
	require.Equal(t, http.StatusUnauthorized, b.as("", "").do(t, http.MethodGet, "/v1/ops/books", "").Code)
}

func TestOpsBooksEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := b.do(t, http.MethodGet, "/v1/ops/books", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"runs":[],"differences":[]}`, rec.Body.String())
}

func TestConsoleBooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The gateway's record is the gateway's word, shown as text, never
	// markup.
	b.booksRun(t, "<script>alert(1)</script>")
	readonly, _ := b.createScopedKey(t, "auditor", apikey.ScopeReadonly)
	cc := b.console()
	require.Equal(t, http.StatusSeeOther, cc.signIn(t, readonly).Code)
	rec := cc.do(t, http.MethodGet, "/console/books", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	page := rec.Body.String()
	require.Contains(t, page, "unknown_payment")
	require.Contains(t, page, "none of ours")
	require.Contains(t, page, "tgen_stray")
	require.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.NotContains(t, page, "<script>alert")

	require.Equal(t, http.StatusSeeOther, b.console().do(t, http.MethodGet, "/console/books", nil).Code, "no session: to the sign-in page")
}
