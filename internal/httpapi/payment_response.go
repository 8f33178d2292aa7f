package httpapi

import (
	"time"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// paymentResponse is a payment as the API shows it. Times are UTC RFC 3339;
// a time or amount that does not apply yet is null, never a zero value that
// could be mistaken for data.
type paymentResponse struct {
	ID             string           `json:"id"`
	Owner          string           `json:"owner"`
	OrderID        string           `json:"orderId"`
	OrderName      string           `json:"orderName"`
	Amount         int64            `json:"amount"`
	Currency       string           `json:"currency"`
	Gateway        string           `json:"gateway"`
	Status         string           `json:"status"`
	PaymentKey     string           `json:"paymentKey,omitempty"`
	ApprovedAmount int64            `json:"approvedAmount"`
	BalanceAmount  int64            `json:"balanceAmount"`
	CanceledAmount int64            `json:"canceledAmount"`
	Method         string           `json:"method"`
	ApprovedAt     *time.Time       `json:"approvedAt"`
	Failure        *failureResponse `json:"failure,omitempty"`
	// VirtualAccount is the account to transfer to (va_response.go).
	VirtualAccount *virtualAccountResponse `json:"virtualAccount,omitempty"`
	CreatedAt      time.Time               `json:"createdAt"`
	UpdatedAt      time.Time               `json:"updatedAt"`
	// Version grows with every change of the payment, as in webhook
	// events: the higher one is the newer state.
	Version int64            `json:"version"`
	Cancels []cancelResponse `json:"cancels"`
	// Attempts are the newest of the payment's gateway calls (at most
	// store.HistoryAttempts), oldest first; AttemptCount is how many it
	// has in all. GET /v1/payments/{id}/attempts reads the rest.
	Attempts     []attemptResponse `json:"attempts"`
	AttemptCount int               `json:"attemptCount"`
}

// failureResponse is why a payment or a cancel failed, in the gateway's
// words (or ours, for an approval we could not keep).
type failureResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// cancelResponse is one cancel request.
type cancelResponse struct {
	ID             string           `json:"id"`
	Kind           string           `json:"kind"`
	Amount         *int64           `json:"amount"` // null: the whole balance
	Reason         string           `json:"reason"`
	Status         string           `json:"status"`
	IdempotencyKey string           `json:"idempotencyKey"`
	CanceledAmount int64            `json:"canceledAmount"`
	TransactionKey string           `json:"transactionKey,omitempty"`
	Failure        *failureResponse `json:"failure,omitempty"`
	// RefundReceiveAccount is what the audit keeps of the refund account
	// (va_response.go).
	RefundReceiveAccount *refundAccountResponse `json:"refundReceiveAccount,omitempty"`
	CreatedAt            time.Time              `json:"createdAt"`
	CompletedAt          *time.Time             `json:"completedAt"`
}

// attemptResponse is one gateway call the relay made.
type attemptResponse struct {
	ID             int64      `json:"id"`
	CancelID       string     `json:"cancelId,omitempty"`
	Operation      string     `json:"operation"`
	IdempotencyKey string     `json:"idempotencyKey"`
	HTTPStatus     *int       `json:"httpStatus"`
	GatewayCode    string     `json:"gatewayCode"`
	GatewayMessage string     `json:"gatewayMessage"`
	Classification string     `json:"classification"`
	LatencyMs      *float64   `json:"latencyMs"`
	RequestedAt    time.Time  `json:"requestedAt"`
	FinishedAt     *time.Time `json:"finishedAt"`
	Error          string     `json:"error"`
	// Note says what the relay concluded beyond the classification, such
	// as the idempotency key this lookup justified replacing.
	Note string `json:"note"`
}

// toPaymentResponse converts a domain payment, with whatever history it was
// loaded with, for the wire.
func toPaymentResponse(p payment.Payment) paymentResponse {
	r := paymentResponse{
		ID:             p.ID,
		Owner:          string(p.Owner),
		OrderID:        p.OrderID,
		OrderName:      p.OrderName,
		Amount:         p.Amount,
		Currency:       p.Currency,
		Gateway:        p.Gateway,
		Status:         string(p.Status),
		PaymentKey:     p.PaymentKey,
		ApprovedAmount: p.ApprovedAmount,
		BalanceAmount:  p.BalanceAmount,
		CanceledAmount: p.CanceledAmount,
		Method:         p.Method,
		ApprovedAt:     utcPtr(p.ApprovedAt),
		Failure:        toFailureResponse(p.FailureCode, p.FailureMessage),
		VirtualAccount: toVirtualAccountResponse(p.VirtualAccount),
		CreatedAt:      p.CreatedAt.UTC(),
		UpdatedAt:      p.UpdatedAt.UTC(),
		Version:        p.Version,
		// Empty lists, not null, so clients can iterate without a check.
		Cancels:      make([]cancelResponse, 0, len(p.Cancels)),
		Attempts:     make([]attemptResponse, 0, len(p.Attempts)),
		AttemptCount: max(p.AttemptCount, len(p.Attempts)),
	}
	for _, c := range p.Cancels {
		r.Cancels = append(r.Cancels, toCancelResponse(c))
	}
	for _, a := range p.Attempts {
		r.Attempts = append(r.Attempts, toAttemptResponse(a))
	}
	return r
}

// toCancelResponse converts a domain cancel request for the wire.
func toCancelResponse(c payment.Cancel) cancelResponse {
	r := cancelResponse{
		ID:                   c.ID,
		Kind:                 string(c.Kind),
		Reason:               c.Reason,
		Status:               string(c.Status),
		IdempotencyKey:       c.IdempotencyKey,
		CanceledAmount:       c.CanceledAmount,
		TransactionKey:       c.TransactionKey,
		Failure:              toFailureResponse(c.FailureCode, c.FailureMessage),
		RefundReceiveAccount: toRefundAccountResponse(c),
		CreatedAt:            c.CreatedAt.UTC(),
		CompletedAt:          utcPtr(c.CompletedAt),
	}
	if c.Amount > 0 {
		amount := c.Amount
		r.Amount = &amount
	}
	return r
}

// toAttemptResponse converts a recorded gateway call for the wire. Latency
// and status are null while the call is in flight (or if the relay died
// during it): zero would read as an instant answer.
func toAttemptResponse(a payment.Attempt) attemptResponse {
	r := attemptResponse{
		ID:             a.ID,
		CancelID:       a.CancelID,
		Operation:      string(a.Operation),
		IdempotencyKey: a.IdempotencyKey,
		GatewayCode:    a.GatewayCode,
		GatewayMessage: a.GatewayMessage,
		Classification: a.Classification,
		RequestedAt:    a.RequestedAt.UTC(),
		FinishedAt:     utcPtr(a.FinishedAt),
		Error:          a.Error,
		Note:           a.Note,
	}
	if a.HTTPStatus != 0 {
		status := a.HTTPStatus
		r.HTTPStatus = &status
	}
	if a.FinishedAt != nil {
		ms := float64(a.Latency.Microseconds()) / 1000
		r.LatencyMs = &ms
	}
	return r
}

func toFailureResponse(code, message string) *failureResponse {
	if code == "" && message == "" {
		return nil
	}
	return &failureResponse{Code: code, Message: message}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// paymentListResponse is a list of payments.
type paymentListResponse struct {
	Payments []paymentSummaryResponse `json:"payments"`
}

// paymentSummaryResponse is a payment in a list: its own fields without its
// cancels and attempts, which GET /v1/payments/{id} shows. A separate type
// rather than paymentResponse with empty lists, which would read as "no
// attempts were made".
type paymentSummaryResponse struct {
	ID                 string           `json:"id"`
	Owner              string           `json:"owner"`
	OrderID            string           `json:"orderId"`
	OrderName          string           `json:"orderName"`
	Amount             int64            `json:"amount"`
	Currency           string           `json:"currency"`
	Status             string           `json:"status"`
	PaymentKey         string           `json:"paymentKey,omitempty"`
	ApprovedAmount     int64            `json:"approvedAmount"`
	BalanceAmount      int64            `json:"balanceAmount"`
	CanceledAmount     int64            `json:"canceledAmount"`
	Failure            *failureResponse `json:"failure,omitempty"`
	ConfirmRequestedAt *time.Time       `json:"confirmRequestedAt"`
	CreatedAt          time.Time        `json:"createdAt"`
	UpdatedAt          time.Time        `json:"updatedAt"`
}

// toPaymentSummaryResponse converts a domain payment for a list.
func toPaymentSummaryResponse(p payment.Payment) paymentSummaryResponse {
	return paymentSummaryResponse{
		ID:                 p.ID,
		Owner:              string(p.Owner),
		OrderID:            p.OrderID,
		OrderName:          p.OrderName,
		Amount:             p.Amount,
		Currency:           p.Currency,
		Status:             string(p.Status),
		PaymentKey:         p.PaymentKey,
		ApprovedAmount:     p.ApprovedAmount,
		BalanceAmount:      p.BalanceAmount,
		CanceledAmount:     p.CanceledAmount,
		Failure:            toFailureResponse(p.FailureCode, p.FailureMessage),
		ConfirmRequestedAt: utcPtr(p.ConfirmRequestedAt),
		CreatedAt:          p.CreatedAt.UTC(),
		UpdatedAt:          p.UpdatedAt.UTC(),
	}
}
