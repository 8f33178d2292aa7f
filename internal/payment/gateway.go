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
