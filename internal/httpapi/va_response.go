package httpapi

import (
	"time"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// virtualAccountResponse is the virtual account a payment by bank transfer
// waits on, as the gateway issued it: what the checkout shows the customer
// (docs/design.md section 19). dueDate is null when the gateway gave none.
type virtualAccountResponse struct {
	Bank          string     `json:"bank"`
	AccountNumber string     `json:"accountNumber"`
	HolderName    string     `json:"holderName"`
	DueDate       *time.Time `json:"dueDate"`
}

func toVirtualAccountResponse(va *payment.VirtualAccount) *virtualAccountResponse {
	if va == nil {
		return nil
	}
	r := &virtualAccountResponse{Bank: va.Bank, AccountNumber: va.AccountNumber, HolderName: va.Holder}
	if !va.DueDate.IsZero() {
		due := va.DueDate.UTC()
		r.DueDate = &due
	}
	return r
}

// refundAccountResponse is what the audit keeps of a cancel's refund
// account: the bank and the last four digits, never the whole number or
// the holder (docs/design.md section 19).
type refundAccountResponse struct {
	Bank         string `json:"bank"`
	AccountLast4 string `json:"accountLast4"`
}

func toRefundAccountResponse(c payment.Cancel) *refundAccountResponse {
	if c.RefundBank == "" && c.RefundLast4 == "" {
		return nil
	}
	return &refundAccountResponse{Bank: c.RefundBank, AccountLast4: c.RefundLast4}
}
