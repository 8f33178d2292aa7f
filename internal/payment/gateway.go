package payment

import "strings"

// The gateways a payment can go through. The names are stored on payments
// and sent by checkouts (the create request's "gateway"), so they never
// change meaning.
const (
	// GatewayToss is Toss Payments (core API v1): the checkout's widget
	// authenticates the customer and the relay confirms the charge.
	GatewayToss = "toss"
	// GatewayPortOne is PortOne V2: the customer pays in PortOne's browser
	// SDK and the relay verifies the payment before it is confirmed.
	GatewayPortOne = "portone"
)

// Gateways returns every gateway name, in the order the docs list them.
func Gateways() []string {
	return []string{GatewayToss, GatewayPortOne}
}

// ValidateGateway checks a gateway name against Gateways.
func ValidateGateway(name string) error {
	for _, g := range Gateways() {
		if name == g {
			return nil
		}
	}
	return Errorf(KindInvalid, CodeInvalidRequest, "gateway must be one of %s", strings.Join(Gateways(), ", "))
}

// ChargesBeforeConfirm reports whether the gateway can take the customer's
// money before the relay confirms anything: PortOne's browser SDK completes
// the payment in the customer's browser, under a paymentId the shop chose,
// while Toss charges only when the relay calls its confirm. For such a
// gateway a ready intent is never assumed untouched, its paymentId is bound
// when the intent is created (so the gateway can be asked about it), and
// every record of "no money" it gave us is provisional (RestsOnAbsence).
func ChargesBeforeConfirm(gateway string) bool {
	return gateway == GatewayPortOne
}

// DefaultPaymentKey is the gateway payment id the api makes for an intent of
// a gateway that charges before our confirm when the checkout gives none:
// derived from our payment id, so it is unique and names the payment in the
// gateway's console too.
func DefaultPaymentKey(paymentID string) string {
	return "pay-" + paymentID
}

// PaymentKeyAtCreate is the payment key an intent is created with: the one
// the checkout gave, else one made from the payment's id for a gateway that
// charges before our confirm, else none (Toss makes its own at
// authentication).
func (in Intent) PaymentKeyAtCreate(paymentID string) string {
	switch {
	case in.PaymentKey != "":
		return in.PaymentKey
	case ChargesBeforeConfirm(in.Gateway):
		return DefaultPaymentKey(paymentID)
	}
	return ""
}
