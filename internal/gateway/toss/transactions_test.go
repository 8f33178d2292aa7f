package toss

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

func TestTransactions(t *testing.T) {
	t.Parallel()
	from := time.Date(2024, 2, 11, 15, 0, 0, 0, time.UTC) // 2024-02-12 00:00 KST
	until := from.Add(48 * time.Hour)

	t.Run("SendsTheWindowInKoreaAndReadsTheList", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`[
				{"mId":"tosspayments","transactionKey":"tx-1","paymentKey":"pk-1","orderId":"order-1","currency":"KRW","method":"카드","customerKey":"","useEscrow":false,"amount":10000,"status":"DONE","transactionAt":"2024-02-12T12:11:34+09:00"},
				{"mId":"tosspayments","transactionKey":"tx-2","paymentKey":"pk-1","orderId":"order-1","currency":"KRW","method":"카드","amount":4000,"status":"PARTIAL_CANCELED","transactionAt":"2024-02-13T09:00:00+09:00"},
				{"mId":"tosspayments","transactionKey":"tx-3","paymentKey":"pk-2","orderId":"order-2","currency":"KRW","method":"가상계좌","amount":5000,"status":"WAITING_FOR_DEPOSIT","transactionAt":"2024-02-13T10:00:00+09:00"}
			]`))
		})
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until, Cursor: "tx-0", Limit: 3})
		req := b.next(t)
		require.Equal(t, http.MethodGet, req.Method)
		require.Equal(t, testAuthorization, req.Header.Get("Authorization"))
		u, err := url.Parse(req.RequestURI)
		require.NoError(t, err)
		require.Equal(t, "/v1/transactions", u.Path)
		require.Equal(t, url.Values{
			"startDate": {"2024-02-12T00:00:00"}, "endDate": {"2024-02-14T00:00:00"},
			"startingAfter": {"tx-0"}, "limit": {"3"},
		}, u.Query())
		require.Empty(t, req.Header.Get("Idempotency-Key"))

		require.True(t, page.OK())
		require.Equal(t, 3, page.Records)
		require.Equal(t, "tx-3", page.Next, "a full page continues after its last transactionKey")
		require.Len(t, page.Transactions, 3)
		require.Equal(t, gateway.Transaction{
			PaymentKey: "pk-1", OrderID: "order-1", TransactionKey: "tx-1", Kind: gateway.TransactionApproval, Status: "DONE",
			Method: "카드", Currency: "KRW", Amount: 10000, At: time.Date(2024, 2, 12, 3, 11, 34, 0, time.UTC),
		}, normalized(page.Transactions[0]))
		require.Equal(t, gateway.TransactionCancel, page.Transactions[1].Kind)
		require.Equal(t, int64(4000), page.Transactions[1].Amount)
		require.Equal(t, gateway.TransactionOther, page.Transactions[2].Kind)
	})

	t.Run("APageShorterThanTheLimitIsTheLast", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`[]`)) })
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until})
		u, err := url.Parse(b.next(t).RequestURI)
		require.NoError(t, err)
		require.Equal(t, "1000", u.Query().Get("limit"), "the default page")
		require.False(t, u.Query().Has("startingAfter"))
		require.True(t, page.OK())
		require.Empty(t, page.Next)
		require.Empty(t, page.Transactions)
	})

	t.Run("LimitIsCappedAtTheGatewaysMaximum", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`[]`)) })
		b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until, Limit: 100000})
		u, err := url.Parse(b.next(t).RequestURI)
		require.NoError(t, err)
		require.Equal(t, "5000", u.Query().Get("limit"))
	})

	t.Run("AnErrorIsTheGatewaysCode", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"code":"INVALID_TRANSACTION_KEY","message":"잘못된 페이징 키 입니다."}`))
		})
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until, Cursor: "nope"})
		require.False(t, page.OK())
		require.Equal(t, http.StatusBadRequest, page.HTTPStatus)
		require.Equal(t, "INVALID_TRANSACTION_KEY", page.Code)
		require.Nil(t, page.Transactions)
	})

	t.Run("AnUnusableRecordFailsThePage", func(t *testing.T) {
		t.Parallel()
		for name, body := range map[string]string{
			"NotAList":     `{"transactions":[]}`,
			"NoAmount":     `[{"transactionKey":"tx-1","paymentKey":"pk-1","status":"DONE","amount":null}]`,
			"NoKey":        `[{"transactionKey":"","paymentKey":"pk-1","status":"DONE","amount":1000}]`,
			"Fractional":   `[{"transactionKey":"tx-1","paymentKey":"pk-1","status":"DONE","amount":10.5}]`,
			"ZeroApproval": `[{"transactionKey":"tx-1","paymentKey":"pk-1","status":"DONE","amount":0}]`,
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
				page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: from, Until: until})
				require.Error(t, page.Err)
				require.False(t, page.OK())
				require.Nil(t, page.Transactions)
			})
		}
	})

	t.Run("AnEmptyWindowIsNotSent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`[]`)) })
		page := b.client.Transactions(context.Background(), gateway.TransactionQuery{From: until, Until: from})
		require.True(t, errors.Is(page.Err, gateway.ErrNotSent))
		require.Zero(t, b.hits.Load())
	})
}

// normalized puts a transaction's time in UTC, for comparison.
func normalized(tx gateway.Transaction) gateway.Transaction {
	tx.At = tx.At.UTC()
	return tx
}
