package gatewaysim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// transactions lists Toss's transactions with the given query.
func (b *testBundle) transactions(t *testing.T, q url.Values) []Transaction {
	t.Helper()
	a := b.toss(t, http.MethodGet, "/v1/transactions?"+q.Encode(), "", nil)
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	var txs []Transaction
	require.NoError(t, json.Unmarshal(a.body, &txs))
	return txs
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t) // the clock stands at 2024-02-13 12:18:14 KST
	first := b.approved(t, "order-books-1", 10_000)
	b.clock.Advance(time.Minute)
	second := b.approved(t, "order-books-2", 7_000)
	b.clock.Advance(time.Minute)
	require.Equal(t, StatusPartialCanceled, b.cancel(t, first.PaymentKey, "cancel-books-1", map[string]any{
		"cancelReason": "one returned", "cancelAmount": 4_000, "refundableAmount": 10_000,
	}).payment(t).Status)
	b.clock.Advance(time.Minute)
	require.Equal(t, StatusCanceled, b.cancel(t, first.PaymentKey, "cancel-books-2", map[string]any{
		"cancelReason": "the rest", "refundableAmount": 6_000,
	}).payment(t).Status)
	b.authorize(t, "order-books-3", 3_000) // authenticated, never confirmed: no transaction
	firstPay := b.toss(t, http.MethodGet, "/v1/payments/"+first.PaymentKey, "", nil).payment(t)

	day := url.Values{"startDate": {"2024-02-13T00:00:00"}, "endDate": {"2024-02-13T23:59:59"}}
	all := b.transactions(t, day)
	var got []string
	for _, tx := range all {
		got = append(got, tx.PaymentKey+" "+tx.Status+" "+tx.TransactionAt)
		require.Equal(t, merchantID, tx.MID)
		require.Equal(t, currencyKRW, tx.Currency)
	}
	require.Equal(t, []string{
		first.PaymentKey + " DONE 2024-02-13T12:18:14+09:00",
		second.PaymentKey + " DONE 2024-02-13T12:19:14+09:00",
		first.PaymentKey + " PARTIAL_CANCELED 2024-02-13T12:20:14+09:00",
		first.PaymentKey + " CANCELED 2024-02-13T12:21:14+09:00",
	}, got, "every approval and every refund, by transactionAt")
	require.Equal(t, []int64{10_000, 7_000, 4_000, 6_000}, []int64{all[0].Amount, all[1].Amount, all[2].Amount, all[3].Amount})
	require.Equal(t, firstPay.Cancels[0].TransactionKey, all[2].TransactionKey, "a refund's transactionKey is its cancel's")
	require.Equal(t, *firstPay.LastTransactionKey, all[3].TransactionKey)

	t.Run("Pages", func(t *testing.T) {
		q := url.Values{"startDate": day["startDate"], "endDate": day["endDate"], "limit": {"3"}}
		page := b.transactions(t, q)
		require.Equal(t, all[:3], page)
		q.Set("startingAfter", page[2].TransactionKey)
		require.Equal(t, all[3:], b.transactions(t, q))
		q.Set("startingAfter", all[3].TransactionKey)
		require.Empty(t, b.transactions(t, q), "after the last one: an empty list")
	})

	t.Run("TheWindowIsByTransactionAt", func(t *testing.T) {
		got := b.transactions(t, url.Values{"startDate": {"2024-02-13T12:19:14"}, "endDate": {"2024-02-13T12:20:14"}})
		require.Equal(t, all[1:3], got, "endDate covers its whole second")
		require.Empty(t, b.transactions(t, url.Values{"startDate": {"2024-02-14T00:00:00.000"}, "endDate": {"2024-02-14T23:59:59.999"}}))
	})

	t.Run("BadQueries", func(t *testing.T) {
		for name, q := range map[string]url.Values{
			"NoStartDate":  {"endDate": day["endDate"]},
			"NoEndDate":    {"startDate": day["startDate"]},
			"WithOffset":   {"startDate": {"2024-02-13T00:00:00+09:00"}, "endDate": day["endDate"]},
			"Backwards":    {"startDate": day["endDate"], "endDate": day["startDate"]},
			"LimitZero":    {"startDate": day["startDate"], "endDate": day["endDate"], "limit": {"0"}},
			"LimitTooMany": {"startDate": day["startDate"], "endDate": day["endDate"], "limit": {"5001"}},
		} {
			a := b.toss(t, http.MethodGet, "/v1/transactions?"+q.Encode(), "", nil)
			require.Equal(t, http.StatusBadRequest, a.status, name)
			a.requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		}
		q := url.Values{"startDate": day["startDate"], "endDate": day["endDate"], "startingAfter": {"not-a-key"}}
		b.toss(t, http.MethodGet, "/v1/transactions?"+q.Encode(), "", nil).requireError(t, http.StatusBadRequest, CodeInvalidTransactionKey)
	})

	t.Run("NeedsTheSecretKey", func(t *testing.T) {
		a, err := b.send(t, http.MethodGet, "/v1/transactions?"+day.Encode(), AuthorizationHeader("test_sk_wrong"), "", nil)
		require.NoError(t, err)
		a.requireError(t, http.StatusUnauthorized, CodeUnauthorizedKey)
	})

	t.Run("PortOnePaymentsAreNotTossTransactions", func(t *testing.T) {
		_, err := b.sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-books-portone", OrderID: "order-books-po", Amount: 1_000})
		require.NoError(t, err)
		require.Len(t, b.transactions(t, day), len(all))
	})
}

// portOneList lists PortOne's payments with the given body as the
// requestBody query parameter.
func portOneList(t *testing.T, b *testBundle, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.baseURL+"/payments-by-cursor?requestBody="+url.QueryEscape(body), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "PortOne "+DefaultPortOneSecret)
	res, err := b.http.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}

func TestPortOneList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i, id := range []string{"pay-list-1", "pay-list-2", "pay-list-3"} {
		status := PortOnePaid
		if i == 2 {
			status = PortOneFailed
		}
		_, err := b.sim.PortOnePay(PortOnePayRequest{PaymentID: id, OrderID: "order-" + id, Amount: 5_000, Status: status})
		require.NoError(t, err)
		b.clock.Advance(time.Minute)
	}
	code, _ := portOneCallB(t, b, http.MethodPost, "/payments/pay-list-1/cancel", "cancel-list-0000001",
		`{"reason":"console","amount":2000,"currentCancellableAmount":5000}`)
	require.Equal(t, http.StatusOK, code)
	b.authorize(t, "order-books-toss", 1_000) // a Toss payment is not PortOne's

	window := `"from":"2024-02-13T00:00:00Z","until":"2024-02-14T00:00:00Z"`
	ids := func(out map[string]any) (got []string, cursors []string) {
		for _, it := range out["items"].([]any) {
			item := it.(map[string]any)
			p := item["payment"].(map[string]any)
			got = append(got, p["id"].(string)+" "+p["status"].(string))
			cursors = append(cursors, item["cursor"].(string))
		}
		return got, cursors
	}
	status, out := portOneList(t, b, `{`+window+`,"size":2}`)
	require.Equal(t, http.StatusOK, status, "%v", out)
	got, cursors := ids(out)
	require.Equal(t, []string{"pay-list-1 PARTIAL_CANCELLED", "pay-list-2 PAID"}, got, "by creation, oldest first")
	first := out["items"].([]any)[0].(map[string]any)["payment"].(map[string]any)
	require.Equal(t, float64(2000), first["amount"].(map[string]any)["cancelled"])
	require.Len(t, first["cancellations"], 1)

	status, out = portOneList(t, b, `{`+window+`,"size":2,"cursor":"`+cursors[1]+`"}`)
	require.Equal(t, http.StatusOK, status)
	got, _ = ids(out)
	require.Equal(t, []string{"pay-list-3 FAILED"}, got)

	t.Run("TheWindowIsByCreation", func(t *testing.T) {
		status, out := portOneList(t, b, `{"from":"2024-02-13T03:19:00Z","until":"2024-02-13T03:20:00Z"}`)
		require.Equal(t, http.StatusOK, status)
		got, _ := ids(out)
		require.Equal(t, []string{"pay-list-2 PAID"}, got)
	})

	t.Run("TheBodyMayComeAsTheBody", func(t *testing.T) {
		code, out := portOneCallB(t, b, http.MethodGet, "/payments-by-cursor", "", `{`+window+`,"size":10}`)
		require.Equal(t, http.StatusOK, code)
		require.Len(t, out["items"], 3)
	})

	t.Run("BadBodies", func(t *testing.T) {
		for name, body := range map[string]string{
			"SizeZero":    `{"size":0}`,
			"SizeTooMany": `{"size":1001}`,
			"BadCursor":   `{"cursor":"nope"}`,
			"NotJSON":     `{`,
			"BadTime":     `{"from":"yesterday"}`,
		} {
			status, out := portOneList(t, b, body)
			require.Equal(t, http.StatusBadRequest, status, name)
			require.Equal(t, PortOneInvalidRequest, out["type"], name)
		}
		status, out := portOneList(t, b, `{"storeId":"store-other"}`)
		require.Equal(t, http.StatusForbidden, status)
		require.Equal(t, PortOneForbidden, out["type"])
	})
}

// portOneCallB is portOneCall against a test bundle's simulator.
func portOneCallB(t *testing.T, b *testBundle, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.baseURL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "PortOne "+DefaultPortOneSecret)
	if key != "" {
		req.Header.Set("Idempotency-Key", `"`+key+`"`)
	}
	res, err := b.http.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}
