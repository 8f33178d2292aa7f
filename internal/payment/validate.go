package payment

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on intent fields. The order id rule is the gateway's own, so an
// intent we accept is one the gateway will accept.
const (
	OrderIDMinLen   = 6
	OrderIDMaxLen   = 64
	OrderNameMaxLen = 100
	ReasonMaxLen    = 200
	PaymentKeyMax   = 200
	DefaultCurrency = "KRW"
	// MaxAmount is the largest amount a payment or a cancel may carry, and
	// the default ceiling (API_MAX_AMOUNT may set a lower one): 2^53 - 1,
	// the largest integer a JavaScript number holds exactly, so a checkout
	// or webhook receiver written in JavaScript never reads an amount other
	// than the one we charged (docs/design.md, "Bad input").
	MaxAmount int64 = 1<<53 - 1
)

// CheckAmountCeiling refuses an amount above ceiling, the deployment's
// largest (MaxAmount when ceiling is zero or above it).
func CheckAmountCeiling(amount, ceiling int64) error {
	if ceiling <= 0 || ceiling > MaxAmount {
		ceiling = MaxAmount
	}
	if amount > ceiling {
		return Errorf(KindInvalid, CodeInvalidRequest, "amount must be at most %d", ceiling)
	}
	return nil
}

// spoofs reports whether r is a Unicode format character (category Cf:
// U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE, U+FEFF, ...).
// They are invisible, and the bidirectional ones reorder the text around
// them, so a name holding one can read on a receipt or in the console as
// something other than what it says.
func spoofs(r rune) bool {
	return unicode.Is(unicode.Cf, r)
}

// Intent is what a checkout asks for when it creates a payment.
type Intent struct {
	OrderID   string
	OrderName string
	Amount    int64
	Currency  string
	// Gateway names the gateway the payment goes through (Gateways); the
	// caller fills in its configured default before Validate.
	Gateway string
	// PaymentKey is the gateway's id for the payment when it is ours to
	// choose before the customer pays: PortOne's paymentId, which the
	// checkout hands PortOne's browser SDK. The customer can pay under it
	// before our server hears again, so it is bound to the intent from its
	// creation (BindPaymentKey), never later. Empty for Toss, whose
	// paymentKey exists only once the customer authenticated.
	PaymentKey string
	// Owner is the owner of the key that creates the payment; Validate
	// makes an empty one DefaultOwner.
	Owner Owner
}

// Validate checks an intent and fills its defaults.
func (in *Intent) Validate() error {
	if err := ValidateOrderID(in.OrderID); err != nil {
		return err
	}
	if in.Owner == "" {
		in.Owner = DefaultOwner
	}
	if strings.TrimSpace(in.OrderName) == "" {
		return Errorf(KindInvalid, CodeInvalidRequest, "orderName is required")
	}
	if utf8.RuneCountInString(in.OrderName) > OrderNameMaxLen {
		return Errorf(KindInvalid, CodeInvalidRequest, "orderName must be at most %d characters", OrderNameMaxLen)
	}
	if !utf8.ValidString(in.OrderName) || strings.ContainsFunc(in.OrderName, unicode.IsControl) {
		// Postgres refuses NUL in text; the rest would end up on receipts.
		return Errorf(KindInvalid, CodeInvalidRequest, "orderName must be valid UTF-8 without control characters")
	}
	if strings.ContainsFunc(in.OrderName, spoofs) {
		return Errorf(KindInvalid, CodeInvalidRequest,
			"orderName must not contain invisible format characters (such as U+202E or U+200B), which can disguise the text")
	}
	if in.Amount <= 0 {
		return Errorf(KindInvalid, CodeInvalidRequest, "amount must be a positive integer")
	}
	if err := CheckAmountCeiling(in.Amount, MaxAmount); err != nil {
		return err
	}
	if in.Currency == "" {
		in.Currency = DefaultCurrency
	}
	if in.Currency != DefaultCurrency {
		// Toss's card confirm takes KRW; other currencies need other contracts.
		return Errorf(KindInvalid, CodeInvalidRequest, "currency must be %s", DefaultCurrency)
	}
	if err := ValidateGateway(in.Gateway); err != nil {
		return err
	}
	if in.PaymentKey != "" {
		if !ChargesBeforeConfirm(in.Gateway) {
			return Errorf(KindInvalid, CodeInvalidRequest,
				"paymentKey is given at create only for a gateway whose payment id the shop chooses (portone); %s makes its own at authentication", in.Gateway)
		}
		if err := ValidatePaymentKey(in.PaymentKey); err != nil {
			return err
		}
	}
	return nil
}

// Same reports whether two intents ask for the same thing, which is what makes
// a repeated create idempotent rather than a conflict.
func (in Intent) Same(p Payment) bool {
	// Order ids are unique across owners (docs/design.md, "Owners"): another
	// owner's payment for the order is never the same intent, whatever its
	// fields, and the caller answers a conflict that shows none of them.
	return in.Owner.orDefault() == p.Owner.orDefault() && in.OrderID == p.OrderID && in.OrderName == p.OrderName && in.Amount == p.Amount && in.Currency == p.Currency &&
		in.Gateway == p.Gateway && (in.PaymentKey == "" || in.PaymentKey == p.PaymentKey)
}

// ValidateOrderID checks an order id: 6 to 64 characters of [A-Za-z0-9_-].
func ValidateOrderID(id string) error {
	if len(id) < OrderIDMinLen || len(id) > OrderIDMaxLen {
		return Errorf(KindInvalid, CodeInvalidRequest, "orderId must be %d to %d characters of [A-Za-z0-9_-]", OrderIDMinLen, OrderIDMaxLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return Errorf(KindInvalid, CodeInvalidRequest, "orderId must be %d to %d characters of [A-Za-z0-9_-]", OrderIDMinLen, OrderIDMaxLen)
		}
	}
	return nil
}

// ValidatePaymentKey checks the gateway key a checkout hands us at confirm.
func ValidatePaymentKey(key string) error {
	if key == "" {
		return Errorf(KindInvalid, CodeInvalidRequest, "paymentKey is required")
	}
	if len(key) > PaymentKeyMax {
		return Errorf(KindInvalid, CodeInvalidRequest, "paymentKey must be at most %d characters", PaymentKeyMax)
	}
	for i := 0; i < len(key); i++ {
		// The key goes into a URL path on cancel and lookup; anything outside
		// printable ASCII (or a slash) can only be an error or an attack.
		if key[i] <= ' ' || key[i] >= 0x7f || key[i] == '/' || key[i] == '?' || key[i] == '#' || key[i] == '%' {
			return Errorf(KindInvalid, CodeInvalidRequest, "paymentKey has characters outside printable ASCII")
		}
	}
	return nil
}

// ValidateCancel checks a cancel request's reason and amount (zero: all).
func ValidateCancel(reason string, amount int64) error {
	if strings.TrimSpace(reason) == "" {
		return Errorf(KindInvalid, CodeInvalidRequest, "reason is required")
	}
	if utf8.RuneCountInString(reason) > ReasonMaxLen {
		return Errorf(KindInvalid, CodeInvalidRequest, "reason must be at most %d characters", ReasonMaxLen)
	}
	if !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
	}) {
		return Errorf(KindInvalid, CodeInvalidRequest, "reason must be valid UTF-8 without control characters other than line breaks and tabs")
	}
	if strings.ContainsFunc(reason, spoofs) {
		return Errorf(KindInvalid, CodeInvalidRequest,
			"reason must not contain invisible format characters (such as U+202E or U+200B), which can disguise the text")
	}
	if amount < 0 {
		return Errorf(KindInvalid, CodeInvalidRequest, "amount must be positive when given")
	}
	if err := CheckAmountCeiling(amount, MaxAmount); err != nil {
		return err
	}
	return nil
}
