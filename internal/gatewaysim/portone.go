package gatewaysim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
)

// PortOne V2 payment statuses, as its Payment object spells them.
const (
	PortOneReady                = "READY"
	PortOnePayPending           = "PAY_PENDING"
	PortOneVirtualAccountIssued = "VIRTUAL_ACCOUNT_ISSUED"
	PortOnePaid                 = "PAID"
	PortOneFailed               = "FAILED"
	PortOnePartialCancelled     = "PARTIAL_CANCELLED"
	PortOneCancelled            = "CANCELLED"
)

// PortOnePayRequest is the body of POST /sim/v1/portone/pay: the customer in
// PortOne's browser SDK, paying (or not) for paymentId.
type PortOnePayRequest struct {
	// PaymentID is the id the shop gave the browser SDK; the relay looks
	// the payment up by it.
	PaymentID string `json:"paymentId"`
	// OrderID is the shop's order, for the ledger (PortOne has no such
	// field; the simulator keeps it so its ledger reads like Toss's).
	OrderID   string `json:"orderId"`
	OrderName string `json:"orderName,omitempty"`
	// Amount is what the shop asked for.
	Amount int64 `json:"amount"`
	// PaidAmount is what the customer paid, when not Amount: a tampered
	// checkout the relay must refund.
	PaidAmount int64 `json:"paidAmount,omitempty"`
	// Currency defaults to KRW.
	Currency string `json:"currency,omitempty"`
	// Status is where the payment ends: PAID (the default), FAILED, READY
	// (the customer walked away), PAY_PENDING or VIRTUAL_ACCOUNT_ISSUED.
	// Paying again for a payment not yet charged moves it on (a deposit
	// arriving, say).
	Status string `json:"status,omitempty"`
	// Manual plays a store set to manual confirm: the customer only
	// authenticates (the payment stays READY, nothing is charged) and the
	// answer carries the paymentToken that POST
	// /payments/{paymentId}/confirm charges with. PaidAmount is then the
	// amount authenticated. Status must be empty. Authenticating again
	// replaces the token.
	Manual bool `json:"manual,omitempty"`
}

// PortOnePayment is the answer to a pay: the payment as PortOne records it.
type PortOnePayment struct {
	PaymentID string `json:"paymentId"`
	StoreID   string `json:"storeId"`
	Status    string `json:"status"`
	// PaymentToken is what the browser SDK hands back in manual confirm
	// (Manual); empty otherwise.
	PaymentToken string `json:"paymentToken,omitempty"`
}

// PortOnePay records the customer's payment in PortOne's browser SDK. It is
// the PortOne counterpart of Authorize: invalid input is a 400 *Error, a
// payment id of a Toss payment or one already charged a 409 *Error.
func (s *Simulator) PortOnePay(req PortOnePayRequest) (PortOnePayment, error) {
	if req.PaymentID == "" || len(req.PaymentID) > 200 {
		return PortOnePayment{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "paymentId must be 1 to 200 characters")
	}
	if err := validateOrderID(req.OrderID); err != nil {
		return PortOnePayment{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "%v", err)
	}
	if req.Amount <= 0 || req.PaidAmount < 0 {
		return PortOnePayment{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "amount must be a positive integer")
	}
	if req.PaidAmount == 0 {
		req.PaidAmount = req.Amount
	}
	if req.Currency == "" {
		req.Currency = currencyKRW
	}
	if req.OrderName == "" {
		req.OrderName = defaultOrderName
	}
	switch {
	case req.Manual && req.Status != "":
		return PortOnePayment{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "a manual-confirm payment is only authenticated: leave status out")
	case req.Manual:
		req.Status = PortOneReady
	}
	switch req.Status {
	case "":
		req.Status = PortOnePaid
	case PortOnePaid, PortOneFailed, PortOneReady, PortOnePayPending, PortOneVirtualAccountIssued:
	default:
		return PortOnePayment{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "status %q is not one a customer can leave a payment in", req.Status)
	}
	now := s.now()
	fresh := newPaymentState(req.PaymentID, req.OrderID, req.OrderName, req.Amount, now)
	fresh.gateway, fresh.status, fresh.currency, fresh.statusChangedAt = GatewayPortOne, PortOneReady, req.Currency, now
	p, _ := s.payments.insert(fresh)
	if p.gateway != GatewayPortOne || p.paymentKey != req.PaymentID || p.orderID != req.OrderID {
		return PortOnePayment{}, errorWithStatus(http.StatusConflict, CodeDuplicatedOrderID, "paymentId or orderId belongs to another payment")
	}
	// Deferred before the unlock, so it runs after it: the webhook is built
	// under the lock and sent without it.
	var hook *portOneWebhook
	defer func() { s.sendPortOneWebhook(hook) }()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.approved() || p.status == PortOneFailed {
		if p.status == req.Status {
			return PortOnePayment{PaymentID: p.paymentKey, StoreID: s.portOneStoreID, Status: p.status}, nil
		}
		return PortOnePayment{}, errorWithStatus(http.StatusConflict, CodeAlreadyProcessedPayment, "payment %s is already %s", p.paymentKey, p.status)
	}
	changed := p.status != req.Status
	p.status, p.statusChangedAt = req.Status, now
	p.amount, p.currency = req.Amount, req.Currency
	switch req.Status {
	case PortOnePaid:
		p.paidAmount, p.balance = req.PaidAmount, req.PaidAmount
		p.approvals++
		p.approvedAt = now
		p.lastTransactionKey = newTransactionKey()
	case PortOneFailed:
		p.failureReason = "카드 승인이 거절되었습니다 (simulated)"
	case PortOneVirtualAccountIssued:
		if p.va == nil {
			p.issueAccount(now, s.faults.current().virtualAccountDue())
		}
	}
	p.paymentToken = ""
	if req.Manual {
		p.paidAmount = req.PaidAmount
		p.paymentToken = "ptok_" + randomString(alnum, 32)
	}
	if changed {
		hook = p.portOneWebhookFor(s.portOneStoreID)
	}
	return PortOnePayment{PaymentID: p.paymentKey, StoreID: s.portOneStoreID, Status: p.status, PaymentToken: p.paymentToken}, nil
}

// portOneWirePayment is PortOne's Payment object, the fields PortOne always
// sends and the ones the relay reads.
type portOneWirePayment struct {
	Status        string `json:"status"`
	ID            string `json:"id"`
	TransactionID string `json:"transactionId"`
	MerchantID    string `json:"merchantId"`
	StoreID       string `json:"storeId"`
	// Method is a *portOneMethod, or a *portOneVirtualAccount for a
	// virtual account.
	Method          any                       `json:"method,omitempty"`
	Channel         map[string]string         `json:"channel,omitempty"`
	Version         string                    `json:"version"`
	RequestedAt     string                    `json:"requestedAt"`
	UpdatedAt       string                    `json:"updatedAt"`
	StatusChangedAt string                    `json:"statusChangedAt"`
	OrderName       string                    `json:"orderName"`
	Amount          portOneAmount             `json:"amount"`
	Currency        string                    `json:"currency"`
	Customer        struct{}                  `json:"customer"`
	PaidAt          string                    `json:"paidAt,omitempty"`
	CancelledAt     string                    `json:"cancelledAt,omitempty"`
	Cancellations   []portOneWireCancellation `json:"cancellations,omitempty"`
	Failure         *portOneFailure           `json:"failure,omitempty"`
}

type portOneMethod struct {
	Type string `json:"type"`
}

type portOneFailure struct {
	Reason string `json:"reason"`
}

type portOneAmount struct {
	Total            int64 `json:"total"`
	TaxFree          int64 `json:"taxFree"`
	Vat              int64 `json:"vat"`
	Supply           int64 `json:"supply"`
	Discount         int64 `json:"discount"`
	Paid             int64 `json:"paid"`
	Cancelled        int64 `json:"cancelled"`
	CancelledTaxFree int64 `json:"cancelledTaxFree"`
}

type portOneWireCancellation struct {
	Status        string `json:"status"`
	ID            string `json:"id"`
	TotalAmount   int64  `json:"totalAmount"`
	TaxFreeAmount int64  `json:"taxFreeAmount"`
	VatAmount     int64  `json:"vatAmount"`
	Reason        string `json:"reason"`
	CancelledAt   string `json:"cancelledAt"`
	RequestedAt   string `json:"requestedAt"`
	// Trigger is where the cancel came from, as PortOne's
	// PaymentCancellation.trigger says: "API" for the merchant's API,
	// "CONSOLE" for a refund made in the console.
	Trigger string `json:"trigger"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// toPortOne converts the state to PortOne's Payment object. Callers hold
// p.mu.
func (p *paymentState) toPortOne(storeID string) portOneWirePayment {
	total := p.amount
	if p.approved() {
		total = p.paidAmount
	}
	cancelled := total - p.balance
	if !p.approved() {
		cancelled = 0
	}
	supply, vat := supplyAndVAT(total)
	w := portOneWirePayment{
		Status: p.status, ID: p.paymentKey, TransactionID: "tx-" + p.paymentKey, MerchantID: "merchant-gatewaysim",
		StoreID: storeID, Version: "V2",
		RequestedAt: rfc3339(p.authenticatedAt), UpdatedAt: rfc3339(p.statusChangedAt), StatusChangedAt: rfc3339(p.statusChangedAt),
		OrderName: p.orderName, Currency: p.currency,
		Amount: portOneAmount{Total: total, Vat: vat, Supply: supply, Cancelled: cancelled},
	}
	if p.va != nil {
		w.Method = &portOneVirtualAccount{
			Type: "PaymentMethodVirtualAccount", Bank: p.va.bank, AccountNumber: p.va.number, AccountType: "NORMAL",
			RemitteeName: p.va.holder, ExpiredAt: rfc3339(p.va.due), IssuedAt: rfc3339(p.va.issuedAt),
		}
		w.Channel = map[string]string{"type": "TEST", "pgProvider": "TOSSPAYMENTS"}
	} else if p.status != PortOneReady {
		w.Method = &portOneMethod{Type: "PaymentMethodCard"}
		w.Channel = map[string]string{"type": "TEST", "pgProvider": "TOSSPAYMENTS"}
	}
	if p.approved() {
		w.Amount.Paid = total
		w.PaidAt = rfc3339(p.approvedAt)
	}
	if p.status == PortOneFailed {
		w.Failure = &portOneFailure{Reason: p.failureReason}
	}
	for _, c := range p.cancels {
		w.Cancellations = append(w.Cancellations, cancellationOf(c))
		w.CancelledAt = rfc3339(c.at)
	}
	return w
}

func cancellationOf(c cancelRecord) portOneWireCancellation {
	_, vat := supplyAndVAT(c.amount)
	trigger := "API"
	if c.console {
		trigger = "CONSOLE"
	}
	return portOneWireCancellation{
		Status: "SUCCEEDED", ID: c.transactionKey, TotalAmount: c.amount, VatAmount: vat, Reason: c.reason,
		CancelledAt: rfc3339(c.at), RequestedAt: rfc3339(c.at), Trigger: trigger,
	}
}

func (s *Simulator) handlePortOneLookup(w http.ResponseWriter, r *http.Request) {
	paymentID := r.PathValue("paymentId")
	storeID := r.URL.Query().Get("storeId")
	s.serve(w, r, portOneAPI{s}, OperationLookup, paymentID, func(string) response {
		if storeID != "" && storeID != s.portOneStoreID {
			return portOneResponse(PortOneForbidden, "the API secret has no access to store "+storeID)
		}
		p, ok := s.payments.portOnePayment(paymentID)
		if !ok {
			return portOneResponse(PortOnePaymentNotFound, "no payment with this paymentId")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return jsonResponse(http.StatusOK, p.toPortOne(s.portOneStoreID))
	})
}

// portOneCancelRequest is POST /payments/{paymentId}/cancel's body. Amount
// and CurrentCancellableAmount are pointers: absent means "everything" and
// "no balance check", as PortOne reads them.
type portOneCancelRequest struct {
	StoreID                  string `json:"storeId"`
	Amount                   *int64 `json:"amount"`
	Reason                   string `json:"reason"`
	CurrentCancellableAmount *int64 `json:"currentCancellableAmount"`
	// RefundAccount is required to refund a deposited virtual account.
	RefundAccount *struct {
		Bank       string `json:"bank"`
		Number     string `json:"number"`
		HolderName string `json:"holderName"`
	} `json:"refundAccount"`
}

func (s *Simulator) handlePortOneCancel(w http.ResponseWriter, r *http.Request) {
	paymentID := r.PathValue("paymentId")
	var req portOneCancelRequest
	body, err := readBody(w, r)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	s.serve(w, r, portOneAPI{s}, OperationCancel, paymentID, func(idempotencyKey string) response {
		if err != nil {
			return portOneResponse(PortOneInvalidRequest, fmt.Sprintf("the request body is not valid JSON for a cancel: %v", err))
		}
		return s.portOneCancel(paymentID, req, idempotencyKey)
	})
}

// portOneCancel refunds a PortOne payment, wholly or in part.
func (s *Simulator) portOneCancel(paymentID string, req portOneCancelRequest, idempotencyKey string) response {
	switch {
	case req.StoreID != "" && req.StoreID != s.portOneStoreID:
		return portOneResponse(PortOneForbidden, "the API secret has no access to store "+req.StoreID)
	case req.Reason == "" || utf8.RuneCountInString(req.Reason) > maxCancelReasonLength:
		return portOneResponse(PortOneInvalidRequest, "reason is required (at most 200 characters)")
	case req.Amount != nil && *req.Amount <= 0:
		return portOneResponse(PortOneInvalidRequest, "amount must be a positive integer")
	}
	p, ok := s.payments.portOnePayment(paymentID)
	if !ok {
		return portOneResponse(PortOnePaymentNotFound, "no payment with this paymentId")
	}
	// Runs after the unlock below (deferred first): see PortOnePay.
	var hook *portOneWebhook
	defer func() { s.sendPortOneWebhook(hook) }()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.status {
	case PortOnePaid, PortOnePartialCancelled:
	case PortOneCancelled:
		return portOneResponse(PortOnePaymentAlreadyCancelled, "the payment is already cancelled")
	default:
		return portOneResponse(PortOnePaymentNotPaid, "a payment in status "+p.status+" is not paid")
	}
	// Checked under the payment's lock, when the cancel is applied, not
	// when it arrived: a held cancel must see a balance that moved meanwhile.
	if req.CurrentCancellableAmount != nil && *req.CurrentCancellableAmount != p.balance && !s.faults.current().IgnoreRefundableAmount {
		return portOneResponse(PortOneCancellableAmountConsistencyBroken,
			fmt.Sprintf("currentCancellableAmount %d does not match the cancellable amount %d", *req.CurrentCancellableAmount, p.balance))
	}
	amount := p.balance
	if req.Amount != nil {
		amount = *req.Amount
	}
	if amount > p.balance {
		return portOneResponse(PortOneCancelAmountExceedsCancellable,
			fmt.Sprintf("amount %d exceeds the cancellable amount %d", amount, p.balance))
	}
	var refundTo string
	if p.va != nil {
		a := req.RefundAccount
		if a == nil || a.Bank == "" || a.Number == "" || a.HolderName == "" {
			return portOneResponse(PortOneInvalidRequest, "refundAccount {bank, number, holderName} is required to refund a virtual account")
		}
		refundTo = a.Bank + " ****" + last4(a.Number)
	}
	p.cancel(s.now(), req.Reason, amount, idempotencyKey)
	p.cancels[len(p.cancels)-1].refundAccount = refundTo
	hook = p.portOneWebhookFor(s.portOneStoreID)
	return jsonResponse(http.StatusOK, map[string]portOneWireCancellation{"cancellation": cancellationOf(p.cancels[len(p.cancels)-1])})
}

// portOneConfirmRequest is POST /payments/{paymentId}/confirm's body
// (ConfirmPaymentBody, the fields the simulator checks). TotalAmount and
// Currency are PortOne's verification parameters: compared when given.
type portOneConfirmRequest struct {
	StoreID      string `json:"storeId"`
	PaymentToken string `json:"paymentToken"`
	TotalAmount  *int64 `json:"totalAmount"`
	Currency     string `json:"currency"`
}

// portOneConfirmation is the manual confirm's answer
// (ConfirmedPaymentSummary).
type portOneConfirmation struct {
	PgTxID string `json:"pgTxId"`
	PaidAt string `json:"paidAt"`
}

func (s *Simulator) handlePortOneConfirm(w http.ResponseWriter, r *http.Request) {
	paymentID := r.PathValue("paymentId")
	var req portOneConfirmRequest
	body, err := readBody(w, r)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	s.serve(w, r, portOneAPI{s}, OperationConfirm, paymentID, func(string) response {
		if err != nil {
			return portOneResponse(PortOneInvalidRequest, fmt.Sprintf("the request body is not valid JSON for a confirm: %v", err))
		}
		return s.portOneConfirm(paymentID, req)
	})
}

// portOneConfirm charges a payment the customer authenticated in manual
// confirm: once, with its token, for what was authenticated.
func (s *Simulator) portOneConfirm(paymentID string, req portOneConfirmRequest) response {
	switch {
	case req.StoreID != "" && req.StoreID != s.portOneStoreID:
		return portOneResponse(PortOneForbidden, "the API secret has no access to store "+req.StoreID)
	case req.PaymentToken == "":
		return portOneResponse(PortOneInvalidRequest, "paymentToken is required")
	}
	p, ok := s.payments.portOnePayment(paymentID)
	if !ok {
		return portOneResponse(PortOnePaymentNotFound, "no payment with this paymentId")
	}
	// Runs after the unlock below (deferred first): see PortOnePay.
	var hook *portOneWebhook
	defer func() { s.sendPortOneWebhook(hook) }()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.approved():
		// Checked before the token: a repeat after the charge, under
		// another key, is told the payment is paid.
		return portOneResponse(PortOneAlreadyPaid, "the payment is already paid")
	case p.status != PortOneReady || p.paymentToken == "" ||
		subtle.ConstantTimeCompare([]byte(p.paymentToken), []byte(req.PaymentToken)) != 1:
		return portOneResponse(PortOneInvalidPaymentToken, "the paymentToken is not valid for this payment")
	case req.TotalAmount != nil && *req.TotalAmount != p.paidAmount:
		return portOneResponse(PortOneInformationMismatch,
			fmt.Sprintf("totalAmount %d does not match the authenticated amount", *req.TotalAmount))
	case req.Currency != "" && req.Currency != p.currency:
		return portOneResponse(PortOneInformationMismatch, "currency "+req.Currency+" does not match the authenticated payment")
	}
	now := s.now()
	p.status, p.statusChangedAt = PortOnePaid, now
	p.balance = p.paidAmount
	p.approvals++
	p.approvedAt = now
	p.lastTransactionKey = newTransactionKey()
	p.paymentToken = ""
	hook = p.portOneWebhookFor(s.portOneStoreID)
	return jsonResponse(http.StatusOK, portOneConfirmation{PgTxID: "pg-" + p.lastTransactionKey, PaidAt: rfc3339(now)})
}

func (s *Simulator) handlePortOnePay(w http.ResponseWriter, r *http.Request) {
	var req PortOnePayRequest
	body, err := readBody(w, r)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "invalid pay request: %v", err).response().write(w)
		return
	}
	res, err := s.PortOnePay(req)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.response().write(w)
			return
		}
		errorWithStatus(http.StatusInternalServerError, CodeCommonError, "%v", err).response().write(w)
		return
	}
	jsonResponse(http.StatusOK, res).write(w)
}
