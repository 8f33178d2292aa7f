package payment

import (
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PortOneConfirmMode is how a deployment's PortOne store confirms payments
// (PORTONE_CONFIRM_MODE, read by the api and the relay; docs/design.md
// section 13).
type PortOneConfirmMode string

// The PortOne confirm modes.
const (
	// PortOneConfirmBrowser is PortOne's default flow: the browser SDK
	// completes the payment, and the relay's confirm is a verified lookup.
	PortOneConfirmBrowser PortOneConfirmMode = "browser"
	// PortOneConfirmManual is PortOne's manual confirm: the browser SDK only
	// authenticates and hands the checkout a paymentToken, and PortOne
	// charges when the relay confirms with it.
	PortOneConfirmManual PortOneConfirmMode = "manual"
)

// ParsePortOneConfirmMode reads PORTONE_CONFIRM_MODE; empty is browser.
func ParsePortOneConfirmMode(v string) (PortOneConfirmMode, error) {
	switch PortOneConfirmMode(v) {
	case "", PortOneConfirmBrowser:
		return PortOneConfirmBrowser, nil
	case PortOneConfirmManual:
		return PortOneConfirmManual, nil
	}
	return "", Errorf(KindInvalid, CodeInvalidRequest, "PORTONE_CONFIRM_MODE must be browser or manual, got %q", v)
}

// PaymentTokenMaxLen bounds a paymentToken. PortOne documents no length;
// this is far above any token and keeps a row small.
const PaymentTokenMaxLen = 4096

// Token is a one-time authorization a gateway hands the customer's browser
// (PortOne's paymentToken in manual confirm): whoever holds it can have the
// payment charged. It is printed, logged and encoded only as "[redacted]",
// so a payment that reaches a log line or a JSON answer by mistake does not
// carry it; the one place that sends it reads it with Reveal.
type Token string

const redacted = "[redacted]"

// Reveal returns the token itself, for the gateway call that spends it.
func (t Token) Reveal() string { return string(t) }

// String implements fmt.Stringer without the token.
func (t Token) String() string {
	if t == "" {
		return ""
	}
	return redacted
}

// GoString is String for %#v.
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer without the token.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON encodes the token as "[redacted]" (or "" when empty).
func (t Token) MarshalJSON() ([]byte, error) { return []byte(`"` + t.String() + `"`), nil }

// ValidatePaymentToken checks the form of a paymentToken a checkout sends
// at confirm: at most PaymentTokenMaxLen bytes of UTF-8 without control
// characters or spaces (PortOne documents only "a string"; nothing a
// browser SDK hands back has them). Empty is "none given".
func ValidatePaymentToken(t string) error {
	if len(t) > PaymentTokenMaxLen {
		return Errorf(KindInvalid, CodeInvalidRequest, "paymentToken must be at most %d bytes", PaymentTokenMaxLen)
	}
	if !utf8.ValidString(t) || strings.ContainsFunc(t, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return Errorf(KindInvalid, CodeInvalidRequest, "paymentToken must be valid UTF-8 without spaces or control characters")
	}
	return nil
}

// CheckPaymentToken says whether a confirm for p may, or must, carry a
// paymentToken in this deployment's mode: required for a PortOne payment
// in manual mode (PortOne charges only with it), refused everywhere else
// (Toss takes none; PortOne's browser flow has none), so that a checkout
// configured for another mode than the deployment's hears of it at once
// instead of its payments expiring.
func (p Payment) CheckPaymentToken(mode PortOneConfirmMode, token string) error {
	manual := p.Gateway == GatewayPortOne && mode == PortOneConfirmManual
	switch {
	case manual && token == "":
		return Errorf(KindInvalid, CodeInvalidRequest,
			"paymentToken is required: this deployment confirms PortOne payments manually (the token PortOne's browser SDK returned from requestPayment)")
	case !manual && token != "" && p.Gateway == GatewayPortOne:
		return Errorf(KindInvalid, CodeInvalidRequest,
			"paymentToken is not taken: this deployment's PortOne payments complete in the browser, so there is nothing to confirm with a token")
	case !manual && token != "":
		return Errorf(KindInvalid, CodeInvalidRequest, "paymentToken is only for PortOne's manual confirm, not for %s payments", p.Gateway)
	}
	return nil
}

// ForgetSpentToken drops the paymentToken once no confirm can run for the
// payment any more: a confirm runs while the payment is confirming, or
// unknown with no approval (a confirm that spent its budget, which a later
// run may still send under the same key). Every other state is past the
// confirm, and the token would only be a secret kept for nothing. The store
// calls it on every save.
func (p *Payment) ForgetSpentToken() {
	if p.Status == StatusConfirming || (p.Status == StatusUnknown && p.ApprovedAt == nil) {
		return
	}
	p.PaymentToken = ""
}
