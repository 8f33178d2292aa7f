package gatewaysim

import (
	"encoding/json"
	"net/http"
	"unicode/utf8"
)

// maxCancelReasonLength is Toss's limit on cancelReason, in characters.
const maxCancelReasonLength = 200

// cancelRequest is the body of POST /v1/payments/{paymentKey}/cancel.
// CancelAmount is a pointer because absent means "the whole balance", which
// is not the same as 0; RefundableAmount because absent means "no balance
// check", as Toss treats it as optional.
type cancelRequest struct {
	CancelReason     string `json:"cancelReason"`
	CancelAmount     *int64 `json:"cancelAmount"`
	RefundableAmount *int64 `json:"refundableAmount"`
	// RefundReceiveAccount is required for a deposited virtual account.
	RefundReceiveAccount *struct {
		Bank          string `json:"bank"`
		AccountNumber string `json:"accountNumber"`
		HolderName    string `json:"holderName"`
	} `json:"refundReceiveAccount"`
}

func (s *Simulator) handleCancel(w http.ResponseWriter, r *http.Request) {
	paymentKey := r.PathValue("paymentKey")
	var req cancelRequest
	body, err := readBody(w, r)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	s.serveV1(w, r, OperationCancel, paymentKey, func(idempotencyKey string) response {
		if err != nil {
			return newError(CodeInvalidRequest, "the request body is not valid JSON for a cancel: %v", err).response()
		}
		return s.cancel(paymentKey, req, idempotencyKey)
	})
}

// cancel refunds the payment, wholly or in part.
func (s *Simulator) cancel(paymentKey string, req cancelRequest, idempotencyKey string) response {
	if req.CancelReason == "" {
		return newError(CodeInvalidRequest, "cancelReason is required").response()
	}
	if utf8.RuneCountInString(req.CancelReason) > maxCancelReasonLength {
		return newError(CodeInvalidRequest, "cancelReason must be at most %d characters", maxCancelReasonLength).response()
	}
	if req.CancelAmount != nil && *req.CancelAmount <= 0 {
		return newError(CodeInvalidRequest, "cancelAmount must be a positive integer").response()
	}
	if req.RefundableAmount != nil && *req.RefundableAmount <= 0 {
		return newError(CodeInvalidRequest, "refundableAmount must be a positive integer").response()
	}
	p, ok := s.payments.tossPayment(paymentKey)
	if !ok {
		return newError(CodeNotFoundPayment, "no payment with this paymentKey").response()
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.now()
	cfg := s.faults.current()
	p.expireIfDue(now, cfg.sessionTTL())
	if p.status == StatusWaitingForDeposit && p.undeposited() {
		// Canceling an account before its deposit closes it and refunds
		// nothing.
		p.va.closed = true
		p.status, p.statusChangedAt = StatusCanceled, now
		p.balance = 0
		return jsonResponse(http.StatusOK, p.toPayment())
	}
	switch p.status {
	case StatusDone, StatusPartialCanceled:
	case StatusCanceled:
		return newError(CodeAlreadyCanceledPayment, "the payment has already been canceled").response()
	default:
		// Never approved (in progress, expired): there is nothing to refund.
		return newError(CodeNotCancelablePayment, "a payment in status %s cannot be canceled", p.status).response()
	}
	// Checked here, under the payment's lock, against the balance at the
	// moment the cancel is applied, not when it arrived: a cancel held up
	// while another one landed must see the new balance.
	if req.RefundableAmount != nil && *req.RefundableAmount != p.balance && !cfg.IgnoreRefundableAmount {
		return newError(CodeNotMatchesRefundableAmount, "refundableAmount %d does not match the refundable balance %d",
			*req.RefundableAmount, p.balance).response()
	}
	amount := p.balance
	if req.CancelAmount != nil {
		amount = *req.CancelAmount
	}
	if amount > p.balance {
		return newError(CodeNotCancelableAmount, "cancelAmount %d exceeds the cancelable balance %d", amount, p.balance).response()
	}
	var refundTo string
	if p.va != nil {
		a := req.RefundReceiveAccount
		if a == nil || a.Bank == "" || a.AccountNumber == "" || a.HolderName == "" {
			return newError(CodeInvalidRequest, "refundReceiveAccount {bank, accountNumber, holderName} is required to refund a virtual account").response()
		}
		refundTo = a.Bank + " ****" + last4(a.AccountNumber)
	}
	p.cancel(now, req.CancelReason, amount, idempotencyKey)
	p.cancels[len(p.cancels)-1].refundAccount = refundTo
	return jsonResponse(http.StatusOK, p.toPayment())
}
