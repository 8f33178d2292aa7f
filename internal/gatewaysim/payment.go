package gatewaysim

import "time"

// Payment statuses, as Toss spells them.
const (
	StatusReady           = "READY"
	StatusInProgress      = "IN_PROGRESS"
	StatusDone            = "DONE"
	StatusCanceled        = "CANCELED"
	StatusPartialCanceled = "PARTIAL_CANCELED"
	StatusAborted         = "ABORTED"
	StatusExpired         = "EXPIRED"
)

// The constant parts of every Payment: the simulator is one merchant taking
// card payments in KRW.
const (
	merchantID  = "tvivarepublica"
	apiVersion  = "2022-11-16"
	paymentType = "NORMAL"
	methodCard  = "카드"
	// methodVirtualAccount is Payment.method of a virtual account.
	methodVirtualAccount = "가상계좌"
	currencyKRW          = "KRW"
	tossTimeLayout       = "2006-01-02T15:04:05-07:00"
)

// kst is Korea Standard Time. Toss writes every timestamp with +09:00; a fixed
// zone avoids depending on the host's tzdata for that.
var kst = time.FixedZone("KST", 9*60*60)

// Payment is Toss's Payment object, the subset of fields the relay reads plus
// the ones that make it look like the real thing.
type Payment struct {
	MID                 string    `json:"mId"`
	Version             string    `json:"version"`
	PaymentKey          string    `json:"paymentKey"`
	Type                string    `json:"type"`
	OrderID             string    `json:"orderId"`
	OrderName           string    `json:"orderName"`
	Status              string    `json:"status"`
	RequestedAt         string    `json:"requestedAt"`
	ApprovedAt          *string   `json:"approvedAt"`
	TotalAmount         int64     `json:"totalAmount"`
	BalanceAmount       int64     `json:"balanceAmount"`
	SuppliedAmount      int64     `json:"suppliedAmount"`
	VAT                 int64     `json:"vat"`
	TaxFreeAmount       int64     `json:"taxFreeAmount"`
	TaxExemptionAmount  int64     `json:"taxExemptionAmount"`
	Method              string    `json:"method"`
	Currency            string    `json:"currency"`
	Country             string    `json:"country"`
	LastTransactionKey  *string   `json:"lastTransactionKey"`
	UseEscrow           bool      `json:"useEscrow"`
	CultureExpense      bool      `json:"cultureExpense"`
	IsPartialCancelable bool      `json:"isPartialCancelable"`
	Cancels             []Cancel  `json:"cancels"`
	Card                *Card     `json:"card"`
	Receipt             *Receipt  `json:"receipt"`
	Checkout            *Receipt  `json:"checkout"`
	EasyPay             *struct{} `json:"easyPay"`
	Failure             *Error    `json:"failure"`
	// VirtualAccount and Secret are set for a virtual account: the
	// account, and the value its DEPOSIT_CALLBACK carries.
	VirtualAccount *wireVirtualAccount `json:"virtualAccount"`
	Secret         *string             `json:"secret"`
}

// Cancel is one entry of Payment.cancels.
type Cancel struct {
	TransactionKey        string `json:"transactionKey"`
	CancelReason          string `json:"cancelReason"`
	CancelAmount          int64  `json:"cancelAmount"`
	CanceledAt            string `json:"canceledAt"`
	CancelStatus          string `json:"cancelStatus"`
	RefundableAmount      int64  `json:"refundableAmount"`
	TaxFreeAmount         int64  `json:"taxFreeAmount"`
	TaxExemptionAmount    int64  `json:"taxExemptionAmount"`
	EasyPayDiscountAmount int64  `json:"easyPayDiscountAmount"`
	TransferDiscount      int64  `json:"transferDiscountAmount"`
	ReceiptKey            string `json:"receiptKey"`
}

// Card is Payment.card: the card the customer paid with, masked.
type Card struct {
	Amount                int64  `json:"amount"`
	IssuerCode            string `json:"issuerCode"`
	AcquirerCode          string `json:"acquirerCode"`
	Number                string `json:"number"`
	InstallmentPlanMonths int    `json:"installmentPlanMonths"`
	IsInterestFree        bool   `json:"isInterestFree"`
	ApproveNo             string `json:"approveNo"`
	UseCardPoint          bool   `json:"useCardPoint"`
	CardType              string `json:"cardType"`
	OwnerType             string `json:"ownerType"`
	AcquireStatus         string `json:"acquireStatus"`
}

// Receipt is a {"url"} link object (Payment.receipt, Payment.checkout).
type Receipt struct {
	URL string `json:"url"`
}

// formatTossTime writes t as Toss does: second precision, +09:00.
func formatTossTime(t time.Time) string {
	return t.In(kst).Format(tossTimeLayout)
}

// supplyAndVAT splits a VAT-inclusive amount into supply value and 10% VAT,
// rounding the supply value half up as Toss does (1000 → 909 + 91).
func supplyAndVAT(amount int64) (supplied, vat int64) {
	supplied = (amount*10 + 5) / 11
	return supplied, amount - supplied
}
