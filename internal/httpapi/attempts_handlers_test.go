package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// TestPaymentAnswerIsBounded: a payment looked up again and again (a
// webhook flood, a long outage) keeps every attempt row, but its answer
// carries only the newest store.HistoryAttempts of them and says how many
// there are; the rest are read a page at a time. On a payment with more
// attempts than that, the answer without the bound grew with each one.
func TestPaymentAnswerIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-att-0001", 15000)
	b.confirmPayment(t, p.ID, "pk_att_0001", 15000)

	const n = 3*store.HistoryAttempts + 7
	var ids []int64
	require.NoError(t, pgx.BeginFunc(t.Context(), b.pool, func(tx pgx.Tx) error {
		for i := range n {
			id, err := b.store.StartAttempt(t.Context(), tx, payment.Attempt{
				PaymentID: p.ID, Operation: payment.OperationLookup, RequestedAt: b.now.Add(time.Duration(i) * time.Second),
			})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))

	got := decode[paymentResponse](t, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, ""))
	require.Len(t, got.Attempts, store.HistoryAttempts)
	require.Equal(t, n, got.AttemptCount)
	require.Equal(t, ids[n-store.HistoryAttempts], got.Attempts[0].ID, "the newest, oldest first")
	require.Equal(t, ids[n-1], got.Attempts[len(got.Attempts)-1].ID)

	// Paged from the newest back, every attempt once, in order.
	var seen []int64
	before := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, n, "paging ends")
		rec := b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"/attempts?limit=40"+before, "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		page := decode[attemptListResponse](t, rec)
		require.Equal(t, n, page.AttemptCount)
		require.LessOrEqual(t, len(page.Attempts), 40)
		var ids []int64
		for _, a := range page.Attempts {
			ids = append(ids, a.ID)
		}
		seen = append(ids, seen...)
		if page.NextBefore == nil {
			break
		}
		require.Equal(t, page.Attempts[0].ID, *page.NextBefore)
		before = fmt.Sprintf("&before=%d", *page.NextBefore)
	}
	require.Equal(t, ids, seen)

	// The default page is the answer's own attempts.
	first := decode[attemptListResponse](t, b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"/attempts", ""))
	require.Equal(t, got.Attempts, first.Attempts)

	// A payment with few attempts shows them all, and says so.
	q := b.createPayment(t, "order-att-0002", 15000)
	none := decode[paymentResponse](t, b.do(t, http.MethodGet, "/v1/payments/"+q.ID, ""))
	require.Empty(t, none.Attempts)
	require.Zero(t, none.AttemptCount)
	empty := b.do(t, http.MethodGet, "/v1/payments/"+q.ID+"/attempts", "")
	require.Equal(t, http.StatusOK, empty.Code)
	require.JSONEq(t, `{"attempts":[],"attemptCount":0,"nextBefore":null}`, empty.Body.String())

	// The console's payment page shows the same bound, and says so.
	cc := b.console()
	cc.signIn(t, b.apiKey)
	page := cc.do(t, http.MethodGet, "/console/payments/"+p.ID, nil)
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body.String(), fmt.Sprintf("Showing the newest %d of %d gateway calls", store.HistoryAttempts, n))
	require.Contains(t, page.Body.String(), fmt.Sprintf("attempts?before=%d", ids[n-store.HistoryAttempts]))
	require.Equal(t, store.HistoryAttempts, strings.Count(page.Body.String(), `class="ev-attempt"`))
	few := cc.do(t, http.MethodGet, "/console/payments/"+q.ID, nil)
	require.NotContains(t, few.Body.String(), "attempts-bound")

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		for _, query := range []string{"limit=0", "limit=201", "limit=x", "limit=1&limit=2", "before=0", "before=-3", "before=1e3", "before=" + strings.Repeat("9", 30)} {
			requireProblem(t, b.do(t, http.MethodGet, "/v1/payments/"+p.ID+"/attempts?"+query, ""), http.StatusBadRequest, payment.CodeInvalidRequest)
		}
		requireProblem(t, b.do(t, http.MethodGet, "/v1/payments/0198f1a0-0000-7000-8000-000000000000/attempts", ""), http.StatusNotFound, payment.CodeNotFound)
		requireProblem(t, b.as("", "").do(t, http.MethodGet, "/v1/payments/"+p.ID+"/attempts", ""), http.StatusUnauthorized, codeUnauthorized)
		// Another owner's key reaches the attempts no more than the payment.
		other := b.as(b.createOwnedKey(t, "shop b", apikey.ScopeCheckout, "shop-b"))
		requireProblem(t, other.do(t, http.MethodGet, "/v1/payments/"+p.ID+"/attempts", ""), http.StatusNotFound, payment.CodeNotFound)
		mine := b.as(b.createScopedKey(t, "shop", apikey.ScopeCheckout))
		require.Equal(t, http.StatusOK, mine.do(t, http.MethodGet, "/v1/payments/"+p.ID+"/attempts", "").Code)
	})
}
