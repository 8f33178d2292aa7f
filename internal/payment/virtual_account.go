package payment

import (
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// VirtualAccount is the bank account a gateway issued for a payment the
// customer pays by bank transfer (가상계좌), as the gateway gave it: Toss's
// virtualAccount {bankCode, accountNumber, customerName, dueDate}, PortOne's
// PaymentMethodVirtualAccount {bank, accountNumber, remitteeName,
// expiredAt}. The checkout shows it to the customer; docs/design.md section
// 19 says where each field comes from.
type VirtualAccount struct {
	// Bank is the gateway's code for the issuing bank (Toss's two-digit
	// bankCode, PortOne's Bank enum name).
	Bank string
	// AccountNumber is the number to transfer to.
	AccountNumber string
	// Holder is the account's holder as the gateway names it.
	Holder string
	// DueDate is when the gateway stops taking a deposit; zero when the
	// gateway gave none.
	DueDate time.Time
}

// ApplyAccountIssued records that the gateway issued a virtual account for
// a payment whose confirm was waiting for its outcome (confirming, or
// unknown with no approval): the payment now waits for the customer's
// deposit, which may take days, and its confirm is done. A cancel the shop
// made while the confirm was in flight runs now: it closes the account
// through the outbox (pending, returned for the caller to save and
// enqueue); nothing was paid, so it refunds nothing.
func (p *Payment) ApplyAccountIssued(acct VirtualAccount, secret Token, waiting *Cancel) *Cancel {
	p.VirtualAccount = &acct
	if secret != "" {
		p.DepositSecret = secret
	}
	p.FailureCode, p.FailureMessage = "", ""
	if waiting != nil {
		p.Status = StatusCanceling
		waiting.Status = CancelPending
		return waiting
	}
	p.Status = StatusWaitingForDeposit
	return nil
}

// AwaitsDeposit reports whether the payment waits for the customer's
// transfer into its virtual account: waiting_for_deposit, or canceling
// with no deposit seen (the shop's cancel that closes the account).
func (p Payment) AwaitsDeposit() bool {
	if p.VirtualAccount == nil || p.ApprovedAt != nil {
		return false
	}
	return p.Status == StatusWaitingForDeposit || p.Status == StatusCanceling
}

// DepositOverdue reports whether a lookup at now may end an undeposited
// payment as expired: its account's due date has passed. The gateway's
// record decides whether money came; our clock only says when asking is
// worth it, so this is read with a lookup's answer, never alone.
func (p Payment) DepositOverdue(now time.Time, grace time.Duration) bool {
	return p.VirtualAccount != nil && !p.VirtualAccount.DueDate.IsZero() && now.After(p.VirtualAccount.DueDate.Add(grace))
}

// ExpireUndeposited ends a payment whose due date passed and whose lookup
// shows no deposit: expired, as the gateway's account is.
func (p *Payment) ExpireUndeposited(code, message string) {
	p.Status = StatusExpired
	p.FailureCode = code
	p.FailureMessage = message
}

// ApplyAccountClosed records that the gateway closed the payment's
// virtual account at the shop's cancel before any deposit: canceled, and
// the cancel void (there was nothing to refund).
func (p *Payment) ApplyAccountClosed(c *Cancel, now time.Time) {
	p.Status = StatusCanceled
	c.Status = CancelVoid
	c.CompletedAt = &now
	c.RefundAccount = nil
}

// DepositSchedule is how often the relay looks up a payment waiting for a
// deposit: rarely while the due date is far, often around it, so a deposit
// whose webhook was lost is seen within minutes, and an account the
// gateway closed unpaid is ended soon after its due date.
type DepositSchedule struct {
	// Far is the gap between two looks while the due date is more than
	// Near away.
	Far time.Duration
	// Near is how long before (and after) the due date looks come every
	// Close.
	Near time.Duration
	// Close is the gap between two looks near the due date.
	Close time.Duration
	// Grace is how long after the due date a lookup that shows no deposit
	// ends the payment as expired, when the gateway does not itself say
	// the account expired: a transfer the bank took at the last second
	// may reach the gateway's record late.
	Grace time.Duration
}

// DefaultDepositSchedule looks hourly, then every five minutes in the last
// hour before the due date and the hour after it, and gives a transfer at
// the last second ten minutes to show.
var DefaultDepositSchedule = DepositSchedule{Far: time.Hour, Near: time.Hour, Close: 5 * time.Minute, Grace: 10 * time.Minute}

// Next is when to look again at a payment due at due, after a look at now.
// Without a due date it looks every Far.
func (s DepositSchedule) Next(due, now time.Time) time.Time {
	if due.IsZero() {
		return now.Add(s.Far)
	}
	if now.Before(due.Add(-s.Near)) {
		// Far from the due date: the next look, but never past the start
		// of the close watch.
		return minTime(now.Add(s.Far), due.Add(-s.Near))
	}
	if now.Before(due.Add(s.Near)) {
		return now.Add(s.Close)
	}
	return now.Add(s.Far)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// RefundAccount is the customer's bank account a refund of a deposited
// virtual-account payment goes to (Toss's refundReceiveAccount {bank,
// accountNumber, holderName}, PortOne's refundAccount {bank, number,
// holderName}). It is personal data: it is never logged (LogValue) and is
// kept whole only until its cancel is done; the audit keeps the bank and
// the last four digits (docs/design.md section 19).
type RefundAccount struct {
	Bank          string
	AccountNumber string
	HolderName    string
}

// LogValue implements slog.LogValuer: only the bank and the last four
// digits reach a log line.
func (a RefundAccount) LogValue() slog.Value {
	return slog.GroupValue(slog.String("bank", a.Bank), slog.String("account_last4", a.Last4()))
}

// String implements fmt.Stringer with what the audit keeps.
func (a RefundAccount) String() string { return a.Bank + " ****" + a.Last4() }

// Last4 is the account number's last four digits, what the audit keeps.
func (a RefundAccount) Last4() string {
	if len(a.AccountNumber) <= 4 {
		return a.AccountNumber
	}
	return a.AccountNumber[len(a.AccountNumber)-4:]
}

var (
	// tossBankCode is Toss's bank code form: digits (the documented
	// examples are two-digit codes such as "20", "88").
	tossBankCode = regexp.MustCompile(`^[0-9]{2,3}$`)
	// portOneBank is PortOne's Bank enum form (KOOKMIN, SHINHAN, ...).
	portOneBank = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,39}$`)
	// accountDigits is a Korean bank account number as the gateways take
	// it: digits only, no hyphens.
	accountDigits = regexp.MustCompile(`^[0-9]{6,20}$`)
)

// HolderNameMaxLen bounds a refund account's holder name, in characters.
const HolderNameMaxLen = 60

// ValidateRefundAccount checks a refund account for a payment of gateway:
// the bank in the gateway's code form, 6–20 digits, a holder name of 1–60
// letters, spaces and the punctuation names carry, with no control or
// invisible characters. The messages never repeat the number.
func ValidateRefundAccount(gateway string, a RefundAccount) error {
	switch gateway {
	case GatewayPortOne:
		if !portOneBank.MatchString(a.Bank) {
			return Errorf(KindInvalid, CodeInvalidRequest, "refundReceiveAccount.bank must be a PortOne bank code such as SHINHAN or KOOKMIN")
		}
	default:
		if !tossBankCode.MatchString(a.Bank) {
			return Errorf(KindInvalid, CodeInvalidRequest, "refundReceiveAccount.bank must be a Toss bank code of 2–3 digits such as 88")
		}
	}
	if !accountDigits.MatchString(a.AccountNumber) {
		return Errorf(KindInvalid, CodeInvalidRequest, "refundReceiveAccount.accountNumber must be 6–20 digits, without hyphens")
	}
	name := strings.TrimSpace(a.HolderName)
	if name == "" || name != a.HolderName || !utf8.ValidString(name) || utf8.RuneCountInString(name) > HolderNameMaxLen {
		return Errorf(KindInvalid, CodeInvalidRequest, "refundReceiveAccount.holderName must be 1–%d characters without leading or trailing spaces", HolderNameMaxLen)
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || r == '.' || r == '-' || r == '(' || r == ')' || r == '&' || r == ',') {
			return Errorf(KindInvalid, CodeInvalidRequest, "refundReceiveAccount.holderName may hold letters, digits, spaces and . - ( ) & , only")
		}
	}
	return nil
}
