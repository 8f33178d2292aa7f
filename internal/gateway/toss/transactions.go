package toss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/httpcall"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// opList names the list call in the client's error text. It is no
// payment.Operation of the domain: a listing is about no one payment and
// writes no attempt row.
const opList = payment.Operation("transaction list")

const (
	// TransactionsMaxLimit is the most transactions Toss returns on one page
	// of GET /v1/transactions (docs/design.md, "Reconciliation").
	TransactionsMaxLimit = 5000
	// transactionsDefaultLimit is the page the relay asks for: a Toss
	// transaction is about 300 bytes, so a page stays well inside
	// maxBodyBytes.
	transactionsDefaultLimit = 1000
	// tossDateLayout is how Toss takes startDate and endDate: a local date
	// and time in Korea, without an offset.
	tossDateLayout = "2006-01-02T15:04:05"
)

// wireTransaction is one Toss transaction (the 거래 조회 API's record).
type wireTransaction struct {
	MID            string  `json:"mId"`
	TransactionKey string  `json:"transactionKey"`
	PaymentKey     string  `json:"paymentKey"`
	OrderID        string  `json:"orderId"`
	Currency       string  `json:"currency"`
	Method         string  `json:"method"`
	Amount         *number `json:"amount"`
	Status         string  `json:"status"`
	TransactionAt  string  `json:"transactionAt"`
}

// number reads an amount that must be a whole number.
type number int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *number) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("amount %s is not a whole number", b)
	}
	*n = number(v)
	return nil
}

// errUnusableTransaction is wrapped when a listed transaction lacks what
// every transaction carries.
var errUnusableTransaction = errors.New("transaction has no paymentKey, transactionKey, status or amount")

// Transactions reads one page of the gateway's transactions
// (GET /v1/transactions?startDate=&endDate=&startingAfter=&limit=): every
// approval and cancel whose transactionAt falls in the window, oldest first.
// The next page starts after the last transactionKey of a full page.
func (c *Client) Transactions(ctx context.Context, q gateway.TransactionQuery) gateway.TransactionPage {
	limit, err := q.PageSize(transactionsDefaultLimit, TransactionsMaxLimit)
	if err != nil {
		return gateway.TransactionPage{Err: notSent(opList, err).Err}
	}
	v := url.Values{}
	v.Set("startDate", q.From.In(kst).Format(tossDateLayout))
	v.Set("endDate", q.Until.In(kst).Format(tossDateLayout))
	if q.Cursor != "" {
		v.Set("startingAfter", q.Cursor)
	}
	v.Set("limit", strconv.Itoa(limit))
	var page gateway.TransactionPage
	r := c.send(ctx, httpcall.Request{Op: opList, Method: http.MethodGet, Path: "/v1/transactions?" + v.Encode()},
		func(raw []byte) error {
			txs, err := parseTransactions(raw)
			if err != nil {
				return err
			}
			page.Transactions, page.Records = txs, len(txs)
			if len(txs) == limit {
				page.Next = txs[len(txs)-1].TransactionKey
			}
			return nil
		})
	page.HTTPStatus, page.Code, page.Message, page.Latency, page.Err = r.HTTPStatus, r.Code, r.Message, r.Latency, r.Err
	if page.Err != nil || page.Code != "" {
		page.Transactions, page.Next = nil, ""
	}
	return page
}

// parseTransactions decodes a page: a JSON array of transactions.
func parseTransactions(raw []byte) ([]gateway.Transaction, error) {
	var ws []wireTransaction
	if err := json.Unmarshal(raw, &ws); err != nil {
		return nil, fmt.Errorf("error decoding transactions: %w", err)
	}
	out := make([]gateway.Transaction, 0, len(ws))
	for i, w := range ws {
		if w.PaymentKey == "" || w.TransactionKey == "" || w.Status == "" || w.Amount == nil {
			return nil, fmt.Errorf("error decoding transaction %d: %w", i, errUnusableTransaction)
		}
		t := gateway.Transaction{
			PaymentKey: w.PaymentKey, OrderID: w.OrderID, TransactionKey: w.TransactionKey,
			Kind: tossTransactionKind(w.Status), Status: w.Status, Method: w.Method, Currency: w.Currency,
			Amount: int64(*w.Amount),
		}
		// The books are compared by amount; an unreadable time only
		// leaves the transaction's moment unknown.
		if at, err := time.Parse(time.RFC3339, w.TransactionAt); err == nil {
			t.At = at
		}
		if t.Kind != gateway.TransactionOther && t.Amount <= 0 {
			return nil, fmt.Errorf("error decoding transaction %s: amount %d is not positive", w.TransactionKey, t.Amount)
		}
		out = append(out, t)
	}
	return out, nil
}

// tossTransactionKind reads a Toss transaction's status: an approval is
// DONE, a refund is CANCELED or PARTIAL_CANCELED (the payment's status the
// cancel left); anything else moved no money.
func tossTransactionKind(status string) gateway.TransactionKind {
	switch status {
	case StatusDone:
		return gateway.TransactionApproval
	case StatusCanceled, StatusPartialCanceled:
		return gateway.TransactionCancel
	}
	return gateway.TransactionOther
}
