package gatewaysim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// StatusWaitingForDeposit is Toss's status of a payment whose virtual
// account was issued and not yet paid into.
const StatusWaitingForDeposit = "WAITING_FOR_DEPOSIT"

// MethodVirtualAccount is AuthorizeRequest.Method for a customer who chose
// a virtual account (가상계좌) in the checkout widget.
const MethodVirtualAccount = "VIRTUAL_ACCOUNT"

// DefaultVirtualAccountDue is Config.VirtualAccountDue when zero.
const DefaultVirtualAccountDue = 72 * time.Hour

// The simulator's issuing bank, in each API's code form: Toss's two-digit
// bankCode, PortOne's Bank enum.
const (
	simTossBank    = "88"
	simPortOneBank = "SHINHAN"
	simHolder      = "시뮬레이터상점"
)

// simAccount is a virtual account the simulator issued.
type simAccount struct {
	bank, number, holder string
	issuedAt, due        time.Time
	// secret is Toss's Payment.secret, carried by its DEPOSIT_CALLBACK.
	secret    string
	deposited bool
	// closed: the shop canceled it before any deposit.
	closed bool
}

// expiredAt reports whether the account takes no deposit any more at now.
func (a *simAccount) expiredAt(now time.Time) bool {
	return a != nil && !a.deposited && (a.closed || now.After(a.due))
}

// issueAccount gives p a virtual account due after due. Callers hold p.mu.
func (p *paymentState) issueAccount(now time.Time, due time.Duration) {
	bank := simTossBank
	if p.gateway == GatewayPortOne {
		bank = simPortOneBank
	}
	p.va = &simAccount{
		bank: bank, number: randomString(digits, 14), holder: simHolder,
		issuedAt: now, due: now.Add(due), secret: "ps_" + randomString(alnum, 28),
	}
}

// undeposited reports whether p is a virtual account nothing was paid
// into: never charged, whatever its status word says. Callers hold p.mu.
func (p *paymentState) undeposited() bool {
	return p.va != nil && !p.va.deposited
}

// chargedAmount is what the customer was charged: a deposit may differ
// from the order's amount. Callers hold p.mu.
func (p *paymentState) chargedAmount() int64 {
	if p.va != nil && p.va.deposited {
		return p.paidAmount
	}
	return p.amount
}

// wireVirtualAccount is Toss's Payment.virtualAccount.
type wireVirtualAccount struct {
	AccountType          string  `json:"accountType"`
	AccountNumber        string  `json:"accountNumber"`
	BankCode             string  `json:"bankCode"`
	CustomerName         string  `json:"customerName"`
	DueDate              string  `json:"dueDate"`
	Expired              bool    `json:"expired"`
	SettlementStatus     string  `json:"settlementStatus"`
	RefundStatus         string  `json:"refundStatus"`
	RefundReceiveAccount *string `json:"refundReceiveAccount"`
}

// tossAccount is the Payment.virtualAccount of p at now. Callers hold p.mu.
func (p *paymentState) tossAccount(now time.Time) *wireVirtualAccount {
	if p.va == nil {
		return nil
	}
	settlement := "INCOMPLETED"
	if p.va.deposited {
		settlement = "COMPLETED"
	}
	return &wireVirtualAccount{
		AccountType: "일반", AccountNumber: p.va.number, BankCode: p.va.bank, CustomerName: p.va.holder,
		DueDate: formatTossTime(p.va.due), Expired: p.va.expiredAt(now), SettlementStatus: settlement, RefundStatus: "NONE",
	}
}

// DepositRequest is the body of POST /sim/v1/deposit: the customer
// transferring money into a payment's virtual account.
type DepositRequest struct {
	PaymentKey string `json:"paymentKey"`
	// Amount is what the customer transferred; the order's amount when
	// zero (a wrong amount plays a deposit the shop cannot keep).
	Amount int64 `json:"amount,omitempty"`
}

// DepositResult is the answer to a deposit: the payment's status after it.
type DepositResult struct {
	PaymentKey string `json:"paymentKey"`
	Status     string `json:"status"`
	Amount     int64  `json:"amount"`
}

// Deposit plays the customer's transfer into a virtual account: the
// payment is charged (Toss DONE, PortOne PAID) for the amount deposited,
// and the gateway's webhook goes out (Toss's DEPOSIT_CALLBACK with the
// payment's secret, PortOne's Transaction.Paid). An unknown payment is a
// 404 *Error; one without an account, already paid into, closed or past
// its due date a 409 *Error.
func (s *Simulator) Deposit(req DepositRequest) (DepositResult, error) {
	if req.Amount < 0 {
		return DepositResult{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "amount must be a positive integer when given")
	}
	p, ok := s.payments.byPaymentKey(req.PaymentKey)
	if !ok {
		return DepositResult{}, errorWithStatus(http.StatusNotFound, CodeNotFoundPayment, "no payment with this paymentKey")
	}
	var (
		hook *portOneWebhook
		cb   *tossDepositCallback
	)
	defer func() {
		s.sendPortOneWebhook(hook)
		s.sendTossDepositCallback(cb)
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.now()
	switch {
	case p.va == nil:
		return DepositResult{}, errorWithStatus(http.StatusConflict, CodeInvalidRequest, "payment %s has no virtual account", p.paymentKey)
	case p.va.deposited:
		return DepositResult{}, errorWithStatus(http.StatusConflict, CodeAlreadyProcessedPayment, "payment %s was already paid into", p.paymentKey)
	case p.va.expiredAt(now):
		return DepositResult{}, errorWithStatus(http.StatusConflict, CodeInvalidRequest, "the virtual account of payment %s is closed or past its due date", p.paymentKey)
	}
	amount := req.Amount
	if amount == 0 {
		amount = p.amount
	}
	p.va.deposited = true
	p.paidAmount, p.balance = amount, amount
	p.statusChangedAt = now
	if p.gateway == GatewayPortOne {
		p.status = PortOnePaid
		p.approvals++
		p.approvedAt = now
		p.lastTransactionKey = newTransactionKey()
		p.approvalKey = p.lastTransactionKey
		hook = p.portOneWebhookFor(s.portOneStoreID)
	} else {
		p.approve(now)
		cb = &tossDepositCallback{CreatedAt: formatTossTime(now), Secret: p.va.secret, Status: StatusDone,
			TransactionKey: p.lastTransactionKey, OrderID: p.orderID}
	}
	return DepositResult{PaymentKey: p.paymentKey, Status: p.status, Amount: amount}, nil
}

func (s *Simulator) handleDeposit(w http.ResponseWriter, r *http.Request) {
	var req DepositRequest
	if err := decodeStrict(w, r, &req); err != nil {
		writeControlError(w, err)
		return
	}
	res, err := s.Deposit(req)
	if err != nil {
		writeControlError(w, err)
		return
	}
	jsonResponse(http.StatusOK, res).write(w)
}

// tossDepositCallback is Toss's DEPOSIT_CALLBACK body: its members at the
// top level.
type tossDepositCallback struct {
	CreatedAt      string `json:"createdAt"`
	Secret         string `json:"secret"`
	Status         string `json:"status"`
	TransactionKey string `json:"transactionKey"`
	OrderID        string `json:"orderId"`
}

// sendTossDepositCallback posts cb to the configured Toss webhook URL in
// the background, subject to the Toss webhook faults and retried like the
// PortOne webhooks; nil or no URL sends nothing (a lost webhook, for the
// relay's sweep to make up for).
func (s *Simulator) sendTossDepositCallback(cb *tossDepositCallback) {
	if cb == nil {
		return
	}
	url := s.faults.current().TossWebhookURL
	if url == "" {
		return
	}
	body, err := json.Marshal(cb)
	if err != nil {
		s.logger.Error("Toss deposit callback not sent", slog.String("error", err.Error()))
		return
	}
	s.tossWebhooks.events.Add(1)
	fate := s.faults.drawTossWebhook()
	if fate.drop {
		s.tossWebhooks.dropped.Add(1)
		return
	}
	if len(fate.delays) > 1 {
		s.tossWebhooks.duplicated.Add(1)
	}
	for _, delay := range fate.delays {
		if delay > 0 {
			s.tossWebhooks.delayed.Add(1)
		}
		go func() {
			s.sleep(delay)
			s.deliverTossWebhook(url, cb.OrderID, body)
		}()
	}
}

// deliverTossWebhook tries one delivery until the receiver answers 2xx,
// portOneWebhookAttempts attempts pass, or the Simulator is closed.
func (s *Simulator) deliverTossWebhook(url, orderID string, body []byte) {
	log := s.logger.With(slog.String("event_type", "DEPOSIT_CALLBACK"), slog.String("order_id", orderID))
	backoff := portOneWebhookBackoff
	for attempt := 1; ; attempt++ {
		err := postTossWebhook(url, body)
		if err == nil {
			s.tossWebhooks.delivered.Add(1)
			return
		}
		if attempt == portOneWebhookAttempts {
			s.tossWebhooks.givenUp.Add(1)
			log.Warn("Toss webhook given up", slog.Int("attempts", attempt), slog.String("error", err.Error()))
			return
		}
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-s.closed:
			timer.Stop()
			s.tossWebhooks.givenUp.Add(1)
			return
		}
		backoff *= 2
	}
}

// TossWebhookStats returns what became of Toss's DEPOSIT_CALLBACKs since
// the last Reset: the body of GET /sim/v1/webhooks/toss.
func (s *Simulator) TossWebhookStats() WebhookStats {
	return s.tossWebhooks.stats()
}

// postTossWebhook makes one delivery attempt. Toss's webhooks are unsigned.
func postTossWebhook(url string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), portOneWebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// portOneVirtualAccount is PortOne's PaymentMethodVirtualAccount.
type portOneVirtualAccount struct {
	Type          string `json:"type"`
	Bank          string `json:"bank"`
	AccountNumber string `json:"accountNumber"`
	AccountType   string `json:"accountType"`
	RemitteeName  string `json:"remitteeName"`
	ExpiredAt     string `json:"expiredAt"`
	IssuedAt      string `json:"issuedAt"`
}

// handlePortOneCloseAccount is POST /payments/{paymentId}/virtual-account/close
// (가상계좌 말소): an issued account nothing was paid into is closed and
// takes no deposit; any other payment is PaymentNotWaitingForDeposit.
func (s *Simulator) handlePortOneCloseAccount(w http.ResponseWriter, r *http.Request) {
	paymentID := r.PathValue("paymentId")
	s.serve(w, r, portOneAPI{s}, OperationCancel, paymentID, func(string) response {
		p, ok := s.payments.portOnePayment(paymentID)
		if !ok {
			return portOneResponse(PortOnePaymentNotFound, "no payment with this paymentId")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		now := s.now()
		if p.va == nil || p.va.deposited || p.va.closed || p.status != PortOneVirtualAccountIssued {
			return portOneResponse(PortOnePaymentNotWaitingForDeposit, "the payment is not waiting for a deposit")
		}
		p.va.closed = true
		p.status, p.statusChangedAt = PortOneCancelled, now
		p.balance = 0
		return jsonResponse(http.StatusOK, map[string]string{"closedAt": rfc3339(now)})
	})
}

// last4 is the last four characters of an account number.
func last4(n string) string {
	if len(n) <= 4 {
		return n
	}
	return n[len(n)-4:]
}
