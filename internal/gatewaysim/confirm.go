package gatewaysim

import (
	"encoding/json"
	"net/http"
)

// defaultOrderName names sessions created without one (auto-authorize, or an
// authorize call that left it out).
const defaultOrderName = "시뮬레이터 테스트 주문"

// confirmRequest is the body of POST /v1/payments/confirm.
type confirmRequest struct {
	PaymentKey string `json:"paymentKey"`
	OrderID    string `json:"orderId"`
	Amount     int64  `json:"amount"`
}

func (s *Simulator) handleConfirm(w http.ResponseWriter, r *http.Request) {
	var req confirmRequest
	body, err := readBody(w, r)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	s.serveV1(w, r, OperationConfirm, req.PaymentKey, func(string) response {
		if err != nil {
			return newError(CodeInvalidRequest, "the request body is not valid JSON for a confirm: %v", err).response()
		}
		return s.confirm(req)
	})
}

// confirm approves (charges) the payment.
func (s *Simulator) confirm(req confirmRequest) response {
	if req.PaymentKey == "" || req.OrderID == "" {
		return newError(CodeInvalidRequest, "paymentKey and orderId are required").response()
	}
	if req.Amount <= 0 {
		return newError(CodeInvalidRequest, "amount must be a positive integer").response()
	}
	cfg := s.faults.current()

	p, ok := s.payments.byPaymentKey(req.PaymentKey)
	if ok && p.gateway != GatewayToss {
		return newError(CodeNotFoundPaymentSession, "no payment session for this paymentKey").response()
	}
	if !ok {
		if !cfg.AutoAuthorize {
			return newError(CodeNotFoundPaymentSession, "no payment session for this paymentKey; it expired or never existed").response()
		}
		if err := validateOrderID(req.OrderID); err != nil {
			return newError(CodeInvalidRequest, "%v", err).response()
		}
		var inserted bool
		p, inserted = s.payments.insert(newPaymentState(req.PaymentKey, req.OrderID, defaultOrderName, req.Amount, s.now()))
		if !inserted && p.paymentKey != req.PaymentKey {
			return newError(CodeDuplicatedOrderID, "orderId %q belongs to another payment", req.OrderID).response()
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.now()
	if p.approved() || p.va != nil {
		return newError(CodeAlreadyProcessedPayment, "the payment has already been processed").response()
	}
	p.expireIfDue(now, cfg.sessionTTL())
	if p.status != StatusInProgress {
		return newError(CodeNotFoundPaymentSession, "the payment session expired; the customer must pay again").response()
	}
	if req.OrderID != p.orderID {
		return newError(CodeInvalidRequest, "orderId does not match the authorized payment").response()
	}
	if req.Amount != p.amount {
		return newError(CodeInvalidRequest, "amount %d does not match the authorized amount", req.Amount).response()
	}
	if p.virtualAccount {
		// A virtual account: the confirm issues the account and nothing
		// is charged until the customer's deposit (Deposit).
		p.issueAccount(now, cfg.virtualAccountDue())
		p.status, p.statusChangedAt = StatusWaitingForDeposit, now
		return jsonResponse(http.StatusOK, p.toPayment())
	}
	p.approve(now)
	return jsonResponse(http.StatusOK, p.toPayment())
}
