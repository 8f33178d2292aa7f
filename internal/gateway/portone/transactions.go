package portone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/httpcall"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// opList names the list call in the client's error text; it is no domain
// operation (a listing writes no attempt row).
const opList = payment.Operation("payment list")

const (
	// ListMaxSize is the largest page GET /payments-by-cursor serves
	// (GetAllPaymentsByCursorBody.size: "default 10, at most 1000").
	ListMaxSize = 1000
	// listDefaultSize is the page the relay asks for: a PortOne payment is
	// a few KiB, so a page stays well inside httpcall.MaxBodyBytes.
	listDefaultSize = 100
)

// listBody is GetAllPaymentsByCursorBody. PortOne takes it on a GET as the
// JSON value of the requestBody query parameter, as its server SDK sends it.
type listBody struct {
	StoreID string `json:"storeId"`
	From    string `json:"from"`
	Until   string `json:"until"`
	Cursor  string `json:"cursor,omitempty"`
	Size    int    `json:"size"`
}

// listItem is PaymentWithCursor: a payment and the cursor after it.
type listItem struct {
	Payment json.RawMessage `json:"payment"`
	Cursor  string          `json:"cursor"`
}

// errOtherStore is wrapped when a listed payment is of another store.
var errOtherStore = errors.New("listed payment is of another store")

// Transactions reads one page of PortOne's payments created in the window
// (GET /payments-by-cursor) and returns each paid payment's approval and
// each of its performed cancellations as transactions. A payment that moved
// no money (READY, FAILED, pending) is one TransactionOther. The next page
// starts at the last item's cursor when the page was full.
func (c *Client) Transactions(ctx context.Context, q gateway.TransactionQuery) gateway.TransactionPage {
	size, err := q.PageSize(listDefaultSize, ListMaxSize)
	if err != nil {
		return gateway.TransactionPage{Err: notSent(opList, err).Err}
	}
	body, err := json.Marshal(listBody{
		StoreID: c.storeID, From: q.From.UTC().Format(time.RFC3339Nano), Until: q.Until.UTC().Format(time.RFC3339Nano),
		Cursor: q.Cursor, Size: size,
	})
	if err != nil {
		return gateway.TransactionPage{Err: notSent(opList, fmt.Errorf("error encoding the list body: %w", err)).Err}
	}
	res, raw := c.do(ctx, httpcall.Request{Op: opList, Method: http.MethodGet, Path: "/payments-by-cursor?requestBody=" + url.QueryEscape(string(body))})
	page := gateway.TransactionPage{HTTPStatus: res.HTTPStatus, Code: res.Code, Message: res.Message, Latency: res.Latency, Err: res.Err}
	if raw == nil {
		return page
	}
	txs, items, next, err := c.parseList(raw)
	if err != nil {
		page.Err = c.caller.AnswerError(opList, res.HTTPStatus, err)
		return page
	}
	page.Transactions, page.Records = txs, items
	if items == size {
		page.Next = next
	}
	return page
}

// parseList decodes GetAllPaymentsByCursorResponse into transactions, and
// returns how many payments it held and the last item's cursor.
func (c *Client) parseList(raw []byte) ([]gateway.Transaction, int, string, error) {
	var w struct {
		Items *[]listItem `json:"items"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, 0, "", fmt.Errorf("error decoding payment list: %w", err)
	}
	if w.Items == nil {
		return nil, 0, "", errors.New("error decoding payment list: no items")
	}
	var out []gateway.Transaction
	next := ""
	for i, it := range *w.Items {
		if it.Cursor == "" {
			return nil, 0, "", fmt.Errorf("error decoding payment list item %d: no cursor", i)
		}
		p, err := parsePayment(it.Payment)
		if err != nil {
			return nil, 0, "", fmt.Errorf("error decoding payment list item %d: %w", i, err)
		}
		if p.storeID != c.storeID {
			return nil, 0, "", fmt.Errorf("%w: payment %s of store %q, ours is %q", errOtherStore, p.PaymentKey, p.storeID, c.storeID)
		}
		var ids struct {
			TransactionID string `json:"transactionId"`
		}
		_ = json.Unmarshal(it.Payment, &ids) // parsePayment read the same bytes
		out = append(out, transactionsOf(p.Payment, ids.TransactionID)...)
		next = it.Cursor
	}
	return out, len(*w.Items), next, nil
}

// transactionsOf turns one PortOne payment into its transactions: the
// approval of a charged payment (its total, at paidAt) and each performed
// cancellation.
func transactionsOf(p gateway.Payment, transactionID string) []gateway.Transaction {
	base := gateway.Transaction{PaymentKey: p.PaymentKey, Status: p.Status, Method: p.Method, Currency: p.Currency}
	if p.Phase != gateway.PhaseCharged {
		t := base
		t.Kind, t.TransactionKey, t.At = gateway.TransactionOther, transactionID, p.RequestedAt
		if t.TransactionKey == "" {
			t.TransactionKey = p.PaymentKey
		}
		return []gateway.Transaction{t}
	}
	approval := base
	approval.Kind, approval.TransactionKey, approval.Amount, approval.At = gateway.TransactionApproval, transactionID, p.TotalAmount, p.ApprovedAt
	if approval.TransactionKey == "" {
		approval.TransactionKey = p.PaymentKey
	}
	out := []gateway.Transaction{approval}
	for _, c := range p.Cancels {
		t := base
		t.Kind, t.TransactionKey, t.Amount, t.At = gateway.TransactionCancel, c.TransactionKey, c.CancelAmount, c.CanceledAt
		out = append(out, t)
	}
	return out
}
