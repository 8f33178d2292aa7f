package gateway

import (
	"fmt"
	"time"
)

// TransactionKind says what a gateway transaction did to a payment's money.
type TransactionKind string

// The kinds of transaction.
const (
	// TransactionApproval: the payment was charged (Toss DONE; PortOne's
	// paid payment).
	TransactionApproval TransactionKind = "approval"
	// TransactionCancel: part or all of the payment was refunded (Toss
	// CANCELED, PARTIAL_CANCELED; PortOne's SUCCEEDED cancellation).
	TransactionCancel TransactionKind = "cancel"
	// TransactionOther: a record that moved no money (a deposit awaited,
	// an aborted or expired payment, PortOne's READY or FAILED payment).
	TransactionOther TransactionKind = "other"
)

// Transaction is one entry of a gateway's books, in neutral form: an
// approval or a refund of one payment (docs/design.md, "Reconciliation").
// Toss lists them as they are (GET /v1/transactions); PortOne lists payments
// (GET /payments-by-cursor), and its client turns each into its approval and
// its cancellations.
type Transaction struct {
	PaymentKey string `json:"paymentKey"`
	OrderID    string `json:"orderId,omitempty"`
	// TransactionKey names the transaction at the gateway: Toss's
	// transactionKey, PortOne's transactionId for an approval and the
	// cancellation's id for a refund.
	TransactionKey string          `json:"transactionKey"`
	Kind           TransactionKind `json:"kind"`
	// Status is the gateway's own word for the record (DONE, CANCELED,
	// PAID, ...).
	Status   string `json:"status"`
	Method   string `json:"method,omitempty"`
	Currency string `json:"currency,omitempty"`
	// Amount is what the transaction charged or refunded: always positive
	// for an approval or a cancel.
	Amount int64 `json:"amount"`
	// At is when the gateway performed it (Toss's transactionAt; PortOne's
	// paidAt or cancelledAt); zero when the gateway sent none.
	At time.Time `json:"at"`
}

// TransactionQuery asks for one page of a gateway's books.
type TransactionQuery struct {
	// From and Until bound the window: Toss by when each transaction
	// happened, PortOne by when each payment was created.
	From, Until time.Time
	// Cursor continues a listing where the last page ended: the previous
	// page's Next. Empty for the first page.
	Cursor string
	// Limit is the page size; the client's default when zero, capped at
	// the gateway's maximum.
	Limit int
}

// PageSize checks q and returns the page size to ask the gateway for:
// def when q.Limit is zero or less, and at most max. It fails when the
// window is empty (From or Until unset, or not From before Until).
func (q TransactionQuery) PageSize(def, max int) (int, error) {
	if q.From.IsZero() || q.Until.IsZero() || !q.From.Before(q.Until) {
		return 0, fmt.Errorf("window %s..%s is empty", q.From, q.Until)
	}
	if q.Limit <= 0 {
		return def, nil
	}
	return min(q.Limit, max), nil
}

// TransactionPage is one page of a gateway's books, or why there is none.
// Exactly as for Result: Transactions with a 2xx, Code for the gateway's
// error, Err when there is no usable answer.
type TransactionPage struct {
	Transactions []Transaction
	// Next is the cursor of the page after this one; empty on the last.
	Next string
	// Records is how many records the gateway's page held (Toss
	// transactions, PortOne payments): a page is full when Records equals
	// the limit asked for.
	Records    int
	HTTPStatus int
	Code       string
	Message    string
	Latency    time.Duration
	Err        error
}

// OK reports whether the page is a usable answer.
func (p TransactionPage) OK() bool {
	return p.Err == nil && p.Code == "" && p.HTTPStatus >= 200 && p.HTTPStatus <= 299
}
