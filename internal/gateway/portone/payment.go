package portone

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// The payment statuses PortOne V2 reports: the discriminator of its Payment
// object (PAY_PENDING there, where the PaymentStatus filter enum spells it
// PENDING; both are read).
const (
	StatusReady                = "READY"
	StatusPayPending           = "PAY_PENDING"
	StatusPending              = "PENDING"
	StatusVirtualAccountIssued = "VIRTUAL_ACCOUNT_ISSUED"
	StatusPaid                 = "PAID"
	StatusFailed               = "FAILED"
	StatusPartialCancelled     = "PARTIAL_CANCELLED"
	StatusCancelled            = "CANCELLED"
)

// MethodVirtualAccount is the type of PortOne's PaymentMethodVirtualAccount.
const MethodVirtualAccount = "PaymentMethodVirtualAccount"

// The statuses of a PaymentCancellation.
const (
	CancellationSucceeded = "SUCCEEDED"
	CancellationRequested = "REQUESTED"
	CancellationFailed    = "FAILED"
)

// phases maps PortOne's statuses to the relay's phases.
var phases = map[string]gateway.Phase{
	StatusReady:                gateway.PhaseOpen,
	StatusPayPending:           gateway.PhaseWaiting,
	StatusPending:              gateway.PhaseWaiting,
	StatusVirtualAccountIssued: gateway.PhaseWaiting,
	StatusPaid:                 gateway.PhaseCharged,
	StatusPartialCancelled:     gateway.PhaseCharged,
	StatusCancelled:            gateway.PhaseCharged,
	StatusFailed:               gateway.PhaseFailed,
}

// record is a PortOne payment as read: the gateway's neutral form, plus the
// store it belongs to, which the client checks and the relay never needs.
type record struct {
	gateway.Payment
	storeID string
}

// errMissingAmount is wrapped when a charged payment lacks amount.total or
// amount.cancelled: reading either as 0 would tell the relay that nothing
// was charged, or nothing refunded.
var errMissingAmount = errors.New("payment has no amount")

// errUnusablePayment is wrapped when a 2xx body is JSON but lacks what every
// PortOne payment carries.
var errUnusablePayment = errors.New("payment has no id, status or storeId")

type wireAmount struct {
	Total     *int64 `json:"total"`
	Cancelled *int64 `json:"cancelled"`
}

type wireCancellation struct {
	Status      string   `json:"status"`
	ID          string   `json:"id"`
	TotalAmount int64    `json:"totalAmount"`
	Reason      string   `json:"reason"`
	CancelledAt wireTime `json:"cancelledAt"`
	// Trigger is where the cancel came from (API, CONSOLE, PORTONE_ADMIN,
	// CHARGEBACK; absent in older records).
	Trigger string `json:"trigger"`
}

// wirePayment is the subset of PortOne's Payment object the outbox reads.
type wirePayment struct {
	Status    string      `json:"status"`
	ID        string      `json:"id"`
	StoreID   string      `json:"storeId"`
	OrderName string      `json:"orderName"`
	Amount    *wireAmount `json:"amount"`
	Currency  string      `json:"currency"`
	Method    *struct {
		Type string `json:"type"`
		// PaymentMethodVirtualAccount's fields, for a virtual account.
		Bank          string   `json:"bank"`
		AccountNumber string   `json:"accountNumber"`
		RemitteeName  string   `json:"remitteeName"`
		ExpiredAt     wireTime `json:"expiredAt"`
	} `json:"method"`
	RequestedAt   wireTime           `json:"requestedAt"`
	PaidAt        wireTime           `json:"paidAt"`
	Cancellations []wireCancellation `json:"cancellations"`
	Failure       *struct {
		Reason    string `json:"reason"`
		PgCode    string `json:"pgCode"`
		PgMessage string `json:"pgMessage"`
	} `json:"failure"`
}

// parsePayment decodes a PortOne payment. It fails when the body is not
// JSON, lacks id, status or storeId, or is charged without its amounts:
// every such failure means "we cannot tell what PortOne did".
func parsePayment(body []byte) (record, error) {
	var w wirePayment
	if err := json.Unmarshal(body, &w); err != nil {
		return record{}, fmt.Errorf("error decoding payment: %w", err)
	}
	if w.ID == "" || w.Status == "" || w.StoreID == "" {
		return record{}, fmt.Errorf("error decoding payment: %w", errUnusablePayment)
	}
	phase := phases[w.Status]
	var total, cancelled int64
	if w.Amount != nil && w.Amount.Total != nil {
		total = *w.Amount.Total
	}
	if w.Amount != nil && w.Amount.Cancelled != nil {
		cancelled = *w.Amount.Cancelled
	}
	if phase == gateway.PhaseCharged {
		if w.Amount == nil || w.Amount.Total == nil || w.Amount.Cancelled == nil {
			return record{}, fmt.Errorf("error decoding payment: %w: %s payment without amount.total or amount.cancelled", errMissingAmount, w.Status)
		}
		if cancelled < 0 || cancelled > total {
			return record{}, fmt.Errorf("error decoding payment: cancelled %d is outside 0..total %d", cancelled, total)
		}
	}
	p := record{storeID: w.StoreID, Payment: gateway.Payment{
		PaymentKey:  w.ID,
		OrderName:   w.OrderName,
		Status:      w.Status,
		Phase:       phase,
		Currency:    w.Currency,
		TotalAmount: total,
		// What PortOne can still cancel: the total less what was
		// cancelled, the balance its currentCancellableAmount check
		// compares.
		BalanceAmount: total - cancelled,
		RequestedAt:   time.Time(w.RequestedAt),
		ApprovedAt:    time.Time(w.PaidAt),
	}}
	if w.Method != nil {
		p.Method = w.Method.Type
		if w.Method.Type == MethodVirtualAccount && w.Method.AccountNumber != "" {
			p.VirtualAccount = &payment.VirtualAccount{
				Bank: w.Method.Bank, AccountNumber: w.Method.AccountNumber, Holder: w.Method.RemitteeName,
				DueDate: time.Time(w.Method.ExpiredAt),
			}
			if p.ApprovedAt.IsZero() && p.Phase == gateway.PhaseCharged {
				// Closed before any deposit: never charged.
				p.Phase = gateway.PhaseFailed
			}
		}
	}
	if w.Failure != nil {
		p.FailureReason = w.Failure.Reason
		if w.Failure.PgCode != "" || w.Failure.PgMessage != "" {
			p.FailureReason = fmt.Sprintf("%s (PG %s: %s)", w.Failure.Reason, w.Failure.PgCode, w.Failure.PgMessage)
		}
	}
	// Only performed refunds are the payment's cancels: a REQUESTED or
	// FAILED cancellation moved no money.
	for _, c := range w.Cancellations {
		if c.Status != CancellationSucceeded {
			continue
		}
		p.Cancels = append(p.Cancels, gateway.Cancel{
			TransactionKey: c.ID, CancelReason: c.Reason, CancelStatus: c.Status,
			CancelAmount: c.TotalAmount, CanceledAt: time.Time(c.CancelledAt), Trigger: c.Trigger,
		})
	}
	return p, nil
}

// parseCancellation reads a cancel's answer ({"cancellation": …}) as the
// payment's record after it (see Client.Cancel).
func parseCancellation(body []byte, paymentID string, req gateway.CancelRequest) (*gateway.Payment, error) {
	var w struct {
		Cancellation *wireCancellation `json:"cancellation"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("error decoding cancellation: %w", err)
	}
	c := w.Cancellation
	switch {
	case c == nil || c.ID == "" || c.Status == "":
		return nil, errors.New("error decoding cancellation: no cancellation id or status")
	case c.Status != CancellationSucceeded:
		return nil, fmt.Errorf("cancellation %s is %s, not SUCCEEDED", c.ID, c.Status)
	case c.TotalAmount <= 0 || c.TotalAmount > req.RefundableAmount:
		return nil, fmt.Errorf("cancellation %s of %d does not fit the cancellable amount %d", c.ID, c.TotalAmount, req.RefundableAmount)
	case req.Amount > 0 && c.TotalAmount != req.Amount:
		// Not what we asked for (a promotion's adjustment, say): only the
		// payment's record says what is left.
		return nil, fmt.Errorf("cancellation %s is of %d, we asked for %d", c.ID, c.TotalAmount, req.Amount)
	case req.Amount == 0 && c.TotalAmount != req.RefundableAmount:
		return nil, fmt.Errorf("cancellation %s is of %d, we asked for the whole %d", c.ID, c.TotalAmount, req.RefundableAmount)
	}
	balance := req.RefundableAmount - c.TotalAmount
	status := StatusPartialCancelled
	if balance == 0 {
		status = StatusCancelled
	}
	return &gateway.Payment{
		PaymentKey:    paymentID,
		Status:        status,
		Phase:         gateway.PhaseCharged,
		BalanceAmount: balance,
		Cancels: []gateway.Cancel{{
			TransactionKey: c.ID, CancelReason: c.Reason, CancelStatus: c.Status,
			CancelAmount: c.TotalAmount, RefundableAmount: balance, CanceledAt: time.Time(c.CancelledAt),
		}},
	}, nil
}

// parseConfirmation reads a manual confirm's answer
// (ConfirmedPaymentSummary: pgTxId, paidAt) as the payment's record after it
// (see Client.confirmPayment).
func parseConfirmation(body []byte, req gateway.ConfirmRequest) (*gateway.Payment, error) {
	var w struct {
		PgTxID string `json:"pgTxId"`
		PaidAt string `json:"paidAt"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("error decoding confirmation: %w", err)
	}
	if w.PgTxID == "" {
		return nil, errors.New("error decoding confirmation: no pgTxId")
	}
	paidAt, err := time.Parse(time.RFC3339Nano, w.PaidAt)
	if err != nil {
		// Unlike a record's cosmetic timestamps, paidAt is what says the
		// summary is of a payment made.
		return nil, fmt.Errorf("error decoding confirmation: paidAt %q is not a time", w.PaidAt)
	}
	return &gateway.Payment{
		PaymentKey:    req.PaymentKey,
		Status:        StatusPaid,
		Phase:         gateway.PhaseCharged,
		Currency:      req.Currency,
		TotalAmount:   req.Amount,
		BalanceAmount: req.Amount,
		ApprovedAt:    paidAt,
	}, nil
}

// wireTime reads PortOne's RFC 3339 timestamps leniently: anything else is
// the zero time, so a cosmetic field never makes an answer unusable.
type wireTime time.Time

// UnmarshalJSON implements json.Unmarshaler. It never fails.
func (t *wireTime) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
			*t = wireTime(tm)
		}
	}
	return nil
}
