package gatewaysim

import (
	"net/http"
	"unicode/utf8"
)

// defaultConsoleCancelReason is the reason a console refund gets when the
// control call gives none.
const defaultConsoleCancelReason = "refunded in the gateway console"

// ConsoleCancelRequest is the body of POST /sim/v1/console/cancel: shop staff
// refunding a payment by hand in the gateway's own console, outside the
// merchant's API.
type ConsoleCancelRequest struct {
	PaymentKey string `json:"paymentKey"`
	// Amount is what to refund; 0 means the whole balance.
	Amount int64 `json:"amount"`
	// Reason defaults to defaultConsoleCancelReason.
	Reason string `json:"reason"`
}

// ConsoleCancelResult is the answer to a console cancel: the payment's
// balance after it and the refund's transaction key (the id of its entry in
// the payment's cancel list).
type ConsoleCancelResult struct {
	PaymentKey     string `json:"paymentKey"`
	Gateway        string `json:"gateway"`
	Status         string `json:"status"`
	BalanceAmount  int64  `json:"balanceAmount"`
	TransactionKey string `json:"transactionKey"`
}

// ConsoleCancel refunds a payment as a person in the gateway's console does:
// at once, with no Idempotency-Key, no refundableAmount check and none of the
// configured faults. The refund is in the payment's cancel list (Toss
// cancels[], PortOne cancellations[]) and in the ledger as a Refund with
// Console set, and a PortOne payment's webhook is sent as for any other
// status change. Bad input is a 400 *Error, an unknown payment a 404 one, a
// payment that cannot be refunded (never charged, already fully refunded)
// or an amount above the balance a 409 one; each changes nothing.
func (s *Simulator) ConsoleCancel(req ConsoleCancelRequest) (ConsoleCancelResult, error) {
	if req.PaymentKey == "" {
		return ConsoleCancelResult{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "paymentKey is required")
	}
	if req.Amount < 0 {
		return ConsoleCancelResult{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "amount must not be negative (0 is the whole balance)")
	}
	if utf8.RuneCountInString(req.Reason) > maxCancelReasonLength {
		return ConsoleCancelResult{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "reason must be at most %d characters", maxCancelReasonLength)
	}
	if req.Reason == "" {
		req.Reason = defaultConsoleCancelReason
	}
	p, ok := s.payments.byPaymentKey(req.PaymentKey)
	if !ok {
		return ConsoleCancelResult{}, errorWithStatus(http.StatusNotFound, CodeNotFoundPayment, "no payment with this paymentKey")
	}
	// Taken shared, as a /v1 call's perform is, so a Reset does not land
	// half-way through.
	s.resetMu.RLock()
	defer s.resetMu.RUnlock()
	// Runs after the unlock below (deferred first): see PortOnePay.
	var hook *portOneWebhook
	defer func() { s.sendPortOneWebhook(hook) }()
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.now()
	p.expireIfDue(now, s.faults.current().sessionTTL())
	if !p.approved() {
		return ConsoleCancelResult{}, errorWithStatus(http.StatusConflict, CodeNotCancelablePayment, "a payment in status %s cannot be refunded", p.status)
	}
	if p.balance == 0 {
		return ConsoleCancelResult{}, errorWithStatus(http.StatusConflict, CodeAlreadyCanceledPayment, "the payment has already been refunded in full")
	}
	amount := req.Amount
	if amount == 0 {
		amount = p.balance
	}
	if amount > p.balance {
		return ConsoleCancelResult{}, errorWithStatus(http.StatusConflict, CodeNotCancelableAmount, "amount %d exceeds the balance %d", amount, p.balance)
	}
	p.cancel(now, req.Reason, amount, "")
	p.cancels[len(p.cancels)-1].console = true
	if p.gateway == GatewayPortOne {
		hook = p.portOneWebhookFor(s.portOneStoreID)
	}
	return ConsoleCancelResult{
		PaymentKey:     p.paymentKey,
		Gateway:        p.gateway,
		Status:         p.status,
		BalanceAmount:  p.balance,
		TransactionKey: p.lastTransactionKey,
	}, nil
}

func (s *Simulator) handleConsoleCancel(w http.ResponseWriter, r *http.Request) {
	var req ConsoleCancelRequest
	if err := decodeStrict(w, r, &req); err != nil {
		writeControlError(w, err)
		return
	}
	res, err := s.ConsoleCancel(req)
	if err != nil {
		writeControlError(w, err)
		return
	}
	jsonResponse(http.StatusOK, res).write(w)
}
