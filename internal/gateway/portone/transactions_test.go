package portone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

func TestTransactions(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	until := from.Add(48 * time.Hour)
	partial := `{"status":"PARTIAL_CANCELLED","id":"order-0002","transactionId":"tx-0002","storeId":"` + testStoreID + `",
		"requestedAt":"2026-11-21T04:00:00Z","paidAt":"2026-11-21T04:00:05Z","currency":"KRW","orderName":"Tea",
		"amount":{"total":20000,"paid":20000,"cancelled":5000},
		"cancellations":[
			{"status":"SUCCEEDED","id":"can-1","totalAmount":5000,"reason":"console","cancelledAt":"2026-11-21T05:00:00Z","requestedAt":"2026-11-21T05:00:00Z"},
			{"status":"FAILED","id":"can-2","totalAmount":1000,"reason":"console","requestedAt":"2026-11-21T05:10:00Z"}
		]}`
	ready := `{"status":"READY","id":"order-0003","transactionId":"tx-0003","storeId":"` + testStoreID + `","requestedAt":"2026-11-21T06:00:00Z","amount":{"total":3000,"cancelled":0}}`
	list := func(items ...string) string {
		body := `{"items":[`
		for i, it := range items {
			if i > 0 {
				body += ","
			}
			body += fmt.Sprintf(`{"payment":%s,"cursor":"cur-%d"}`, it, i+1)
		}
		return body + `]}`
	}

	t.Run("SendsTheBodyAsTheQueryAndReadsEachPayment", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(200, list(paid("order-0001", testStoreID, 15000, 0, "KRW"), partial, ready)))
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until, Cursor: "cur-0", Limit: 3})
		req := b.next(t)
		require.Equal(t, http.MethodGet, req.method)
		require.Equal(t, "/payments-by-cursor", req.path)
		require.Equal(t, "PortOne "+testSecret, req.header.Get("Authorization"))
		q, err := url.ParseQuery(req.query)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal([]byte(q.Get("requestBody")), &body))
		require.Equal(t, map[string]any{
			"storeId": testStoreID, "from": "2026-11-20T00:00:00Z", "until": "2026-11-22T00:00:00Z",
			"cursor": "cur-0", "size": float64(3),
		}, body)

		require.True(t, page.OK())
		require.Equal(t, 3, page.Records)
		require.Equal(t, "cur-3", page.Next, "a full page continues at its last item's cursor")
		var kinds []string
		for _, tx := range page.Transactions {
			kinds = append(kinds, fmt.Sprintf("%s %s %s %d", tx.PaymentKey, tx.Kind, tx.TransactionKey, tx.Amount))
		}
		require.Equal(t, []string{
			"order-0001 approval 0193d1f0-tx 15000",
			"order-0002 approval tx-0002 20000",
			"order-0002 cancel can-1 5000", // the FAILED cancellation moved no money
			"order-0003 other tx-0003 0",
		}, kinds)
		require.Equal(t, time.Date(2026, 11, 21, 4, 0, 5, 0, time.UTC), page.Transactions[1].At)
		require.Equal(t, time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC), page.Transactions[2].At)
	})

	t.Run("APageShorterThanTheSizeIsTheLast", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(200, list(ready)))
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until})
		q, err := url.ParseQuery(b.next(t).query)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal([]byte(q.Get("requestBody")), &body))
		require.Equal(t, float64(100), body["size"])
		require.NotContains(t, body, "cursor", "the first page sends no cursor")
		require.True(t, page.OK())
		require.Empty(t, page.Next)
	})

	t.Run("SizeIsCappedAtPortOnesMaximum", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(200, `{"items":[]}`))
		b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until, Limit: 5000})
		q, err := url.ParseQuery(b.next(t).query)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.Unmarshal([]byte(q.Get("requestBody")), &body))
		require.Equal(t, float64(1000), body["size"])
	})

	t.Run("AnErrorIsPortOnesType", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(400, `{"type":"INVALID_REQUEST","message":"bad cursor"}`))
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until, Cursor: "x"})
		require.False(t, page.OK())
		require.Equal(t, "INVALID_REQUEST", page.Code)
		require.Nil(t, page.Transactions)
	})

	t.Run("AnUnusableListFailsThePage", func(t *testing.T) {
		t.Parallel()
		for name, body := range map[string]string{
			"NoItems":      `{}`,
			"NoCursor":     `{"items":[{"payment":` + ready + `}]}`,
			"OtherStore":   list(paid("order-0001", "store-other", 15000, 0, "KRW")),
			"PaidNoAmount": `{"items":[{"payment":{"status":"PAID","id":"order-1","storeId":"` + testStoreID + `"},"cursor":"c"}]}`,
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, answerJSON(200, body))
				page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until})
				require.Error(t, page.Err)
				require.False(t, page.OK())
				require.Nil(t, page.Transactions)
			})
		}
	})

	t.Run("AnEmptyWindowIsNotSent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(200, `{"items":[]}`))
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: until, Until: until})
		require.True(t, errors.Is(page.Err, gateway.ErrNotSent))
		require.Empty(t, b.seen)
	})
}
