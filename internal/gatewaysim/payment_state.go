package gatewaysim

import (
	"crypto/rand"
	"sync"
	"time"
)

// paymentState is the gateway's own record of one payment: its session, its
// approval and its cancels. mu serialises every operation on the payment, which
// is what makes a second approval impossible however many confirms race.
type paymentState struct {
	mu sync.Mutex

	// Set at authorization and never changed, so readable without mu.
	// gateway is the API the payment lives in (GatewayToss, GatewayPortOne);
	// each API finds only its own payments.
	gateway         string
	paymentKey      string
	orderID         string
	orderName       string
	amount          int64
	authenticatedAt time.Time

	status string
	// paidAmount is what a PortOne customer paid (Authorize's amount for
	// Toss, where the confirm charges exactly that); currency its currency.
	paidAmount int64
	currency   string
	// failureReason is why a PortOne payment FAILED.
	failureReason string
	// paymentToken is what a PortOne manual-confirm customer authenticated
	// with, until the confirm spends it (PortOnePayRequest.Manual).
	paymentToken       string
	statusChangedAt    time.Time
	approvals          int
	approvedAt         time.Time
	approveNo          string
	balance            int64
	lastTransactionKey string
	// approvalKey is the approval's transactionKey, which the books list
	// (lastTransactionKey moves on with each cancel).
	approvalKey string
	cancels     []cancelRecord
	// virtualAccount: the customer chose a virtual account at authorize
	// (Toss); va is the account once issued.
	virtualAccount bool
	va             *simAccount
	// lastSeen is the clock at the newest read of the payment, for the
	// account's expired flag in toPayment.
	lastSeen time.Time
}

// cancelRecord is one performed cancel (a refund).
type cancelRecord struct {
	transactionKey string
	reason         string
	amount         int64
	refundable     int64 // the balance left after this cancel
	at             time.Time
	idempotencyKey string
	receiptKey     string
	// console marks a refund made by hand in the gateway's console
	// (ConsoleCancel), not through the merchant's API.
	console bool
	// refundAccount is where a deposited virtual account's refund went
	// ("bank ****1234"); empty for every other refund.
	refundAccount string
}

func newPaymentState(paymentKey, orderID, orderName string, amount int64, authenticatedAt time.Time) *paymentState {
	return &paymentState{
		gateway:         GatewayToss,
		paymentKey:      paymentKey,
		orderID:         orderID,
		orderName:       orderName,
		amount:          amount,
		authenticatedAt: authenticatedAt,
		status:          StatusInProgress,
		balance:         amount,
	}
}

// expireIfDue moves a session that was never confirmed to EXPIRED once its TTL
// has passed, as Toss does. Callers hold p.mu.
func (p *paymentState) expireIfDue(now time.Time, ttl time.Duration) {
	// The clock toPayment reads the account's expiry by.
	p.lastSeen = now
	if p.status == StatusInProgress && now.Sub(p.authenticatedAt) > ttl {
		p.status = StatusExpired
	}
}

// approve charges the payment. Callers hold p.mu and have checked the status.
// approvals is counted on every call, not set to 1, so that a bug letting a
// second approval through shows up in the ledger instead of being hidden.
func (p *paymentState) approve(now time.Time) {
	p.approvals++
	p.status = StatusDone
	p.approvedAt = now
	p.approveNo = randomString(digits, 8)
	p.lastTransactionKey = newTransactionKey()
	p.approvalKey = p.lastTransactionKey
}

// cancel refunds amount. Callers hold p.mu and have checked the status and
// that amount ≤ balance.
func (p *paymentState) cancel(now time.Time, reason string, amount int64, idempotencyKey string) {
	p.balance -= amount
	txKey := newTransactionKey()
	p.cancels = append(p.cancels, cancelRecord{
		transactionKey: txKey,
		reason:         reason,
		amount:         amount,
		refundable:     p.balance,
		at:             now,
		idempotencyKey: idempotencyKey,
		receiptKey:     randomString(alnum, 20),
	})
	p.lastTransactionKey = txKey
	p.statusChangedAt = now
	switch {
	case p.gateway == GatewayPortOne && p.balance == 0:
		p.status = PortOneCancelled
	case p.gateway == GatewayPortOne:
		p.status = PortOnePartialCancelled
	case p.balance == 0:
		p.status = StatusCanceled
	default:
		p.status = StatusPartialCanceled
	}
}

// approved reports whether the payment has been charged (and so may be
// canceled or may not be confirmed again).
func (p *paymentState) approved() bool {
	if p.undeposited() {
		// A closed account reads CANCELLED at PortOne and CANCELED at
		// Toss without ever having been paid.
		return false
	}
	switch p.status {
	case StatusDone, StatusCanceled, StatusPartialCanceled, PortOnePaid, PortOneCancelled, PortOnePartialCancelled:
		return true
	}
	return false
}

// toPayment converts the state to Toss's Payment object. Callers hold p.mu.
func (p *paymentState) toPayment() Payment {
	supplied, vat := supplyAndVAT(p.balance)
	pay := Payment{
		MID:                 merchantID,
		Version:             apiVersion,
		PaymentKey:          p.paymentKey,
		Type:                paymentType,
		OrderID:             p.orderID,
		OrderName:           p.orderName,
		Status:              p.status,
		RequestedAt:         formatTossTime(p.authenticatedAt),
		TotalAmount:         p.chargedAmount(),
		BalanceAmount:       p.balance,
		SuppliedAmount:      supplied,
		VAT:                 vat,
		Method:              methodCard,
		Currency:            currencyKRW,
		Country:             "KR",
		IsPartialCancelable: true,
		Checkout:            &Receipt{URL: "https://api.tosspayments.com/v1/payments/" + p.paymentKey + "/checkout"},
	}
	if p.va != nil {
		pay.Method = methodVirtualAccount
		pay.VirtualAccount = p.tossAccount(p.lastSeen)
		secret := p.va.secret
		pay.Secret = &secret
		if p.undeposited() {
			pay.BalanceAmount = 0
		}
	}
	if !p.approved() {
		return pay
	}
	approvedAt := formatTossTime(p.approvedAt)
	txKey := p.lastTransactionKey
	pay.ApprovedAt = &approvedAt
	pay.LastTransactionKey = &txKey
	pay.Receipt = &Receipt{URL: "https://dashboard.tosspayments.com/receipt/redirection?transactionId=" + p.paymentKey}
	acquireStatus := "READY"
	if p.status == StatusCanceled {
		acquireStatus = "CANCELED"
	}
	if p.va == nil {
		pay.Card = &Card{
			Amount:        p.amount,
			IssuerCode:    "61",
			AcquirerCode:  "31",
			Number:        "43301234****123*",
			ApproveNo:     p.approveNo,
			CardType:      "신용",
			OwnerType:     "개인",
			AcquireStatus: acquireStatus,
		}
	}
	if len(p.cancels) > 0 {
		pay.Cancels = make([]Cancel, 0, len(p.cancels))
		for _, c := range p.cancels {
			pay.Cancels = append(pay.Cancels, Cancel{
				TransactionKey:   c.transactionKey,
				CancelReason:     c.reason,
				CancelAmount:     c.amount,
				CanceledAt:       formatTossTime(c.at),
				CancelStatus:     "DONE",
				RefundableAmount: c.refundable,
				ReceiptKey:       c.receiptKey,
			})
		}
	}
	return pay
}

// toLedgerEntry converts the state to its ledger entry. Callers hold p.mu.
func (p *paymentState) toLedgerEntry() LedgerEntry {
	total := p.chargedAmount()
	if p.gateway == GatewayPortOne {
		total = p.paidAmount
	}
	entry := LedgerEntry{
		Gateway:       p.gateway,
		PaymentKey:    p.paymentKey,
		OrderID:       p.orderID,
		Status:        p.status,
		TotalAmount:   total,
		BalanceAmount: p.balance,
		Approvals:     p.approvals,
		Refunds:       make([]Refund, 0, len(p.cancels)),
	}
	if !p.approvedAt.IsZero() {
		at := p.approvedAt.In(kst)
		entry.ApprovedAt = &at
	}
	for _, c := range p.cancels {
		entry.Refunds = append(entry.Refunds, Refund{
			TransactionKey: c.transactionKey,
			Amount:         c.amount,
			IdempotencyKey: c.idempotencyKey,
			Console:        c.console,
			RefundAccount:  c.refundAccount,
			At:             c.at.In(kst),
		})
	}
	return entry
}

const (
	alnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	digits = "0123456789"
	hexUp  = "0123456789ABCDEF"
)

// newPaymentKey makes a key shaped like Toss's test keys:
// "tgen_" + the authentication time + random characters.
func newPaymentKey(now time.Time) string {
	return "tgen_" + now.In(kst).Format("20060102150405") + randomString(alnum, 12)
}

// newTransactionKey makes a key shaped like Toss's: 32 uppercase hex digits.
func newTransactionKey() string {
	return randomString(hexUp, 32)
}

// randomString draws n characters from alphabet with crypto/rand, whose
// Read never fails (it panics on a broken system source instead). The modulo
// bias is irrelevant for identifiers.
func randomString(alphabet string, n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf)
}
