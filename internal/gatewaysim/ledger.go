package gatewaysim

import "time"

// LedgerEntry is the gateway's account of one payment: how often it was
// charged and what was refunded. Tests use it as the ground truth: Approvals
// above 1 is a double charge.
type LedgerEntry struct {
	// Gateway is the API the payment lives in: "toss" or "portone".
	Gateway    string `json:"gateway"`
	PaymentKey string `json:"paymentKey"`
	OrderID    string `json:"orderId"`
	Status     string `json:"status"`
	// TotalAmount is what was charged (for PortOne, what the customer
	// paid, which may differ from what the shop asked for).
	TotalAmount   int64      `json:"totalAmount"`
	BalanceAmount int64      `json:"balanceAmount"`
	Approvals     int        `json:"approvals"`
	ApprovedAt    *time.Time `json:"approvedAt"`
	Refunds       []Refund   `json:"refunds"`
}

// Refund is one performed cancel, with the Idempotency-Key it was requested
// under (empty when the request had none). Console is true for a refund
// made by hand in the gateway's console (ConsoleCancel), which has no key.
type Refund struct {
	TransactionKey string `json:"transactionKey"`
	Amount         int64  `json:"amount"`
	IdempotencyKey string `json:"idempotencyKey"`
	Console        bool   `json:"console"`
	// RefundAccount is where a virtual account's refund went, as the
	// audit keeps it ("bank ****1234"); empty for a card.
	RefundAccount string    `json:"refundAccount,omitempty"`
	At            time.Time `json:"at"`
}

// Ledger is the body of GET /sim/v1/ledger.
type Ledger struct {
	Payments []LedgerEntry `json:"payments"`
}

// Ledger returns every payment the gateway knows, in authorization order.
func (s *Simulator) Ledger() Ledger {
	payments := s.payments.all()
	now, ttl := s.now(), s.faults.current().sessionTTL()
	ledger := Ledger{Payments: make([]LedgerEntry, 0, len(payments))}
	for _, p := range payments {
		ledger.Payments = append(ledger.Payments, ledgerEntryOf(p, now, ttl))
	}
	return ledger
}

// LedgerEntry returns the ledger entry of one payment, and false when the
// gateway does not know the paymentKey.
func (s *Simulator) LedgerEntry(paymentKey string) (LedgerEntry, bool) {
	p, ok := s.payments.byPaymentKey(paymentKey)
	if !ok {
		return LedgerEntry{}, false
	}
	return ledgerEntryOf(p, s.now(), s.faults.current().sessionTTL()), true
}

func ledgerEntryOf(p *paymentState, now time.Time, ttl time.Duration) LedgerEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireIfDue(now, ttl)
	return p.toLedgerEntry()
}
