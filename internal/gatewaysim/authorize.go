package gatewaysim

import (
	"fmt"
	"net/http"
	"regexp"
	"time"
)

// orderIDPattern is Toss's rule for orderId: 6 to 64 characters of letters,
// digits, '-' and '_'.
var orderIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{6,64}$`)

func validateOrderID(orderID string) error {
	if !orderIDPattern.MatchString(orderID) {
		return fmt.Errorf("orderId %q must be 6-64 characters of A-Z, a-z, 0-9, '-' and '_'", orderID)
	}
	return nil
}

// AuthorizeRequest is the body of POST /sim/v1/authorize: the customer
// finishing the checkout widget for an order.
type AuthorizeRequest struct {
	OrderID   string `json:"orderId"`
	Amount    int64  `json:"amount"`
	OrderName string `json:"orderName,omitempty"`
	// AuthenticatedAt backdates (or postdates) the authentication, so tests
	// can put a session past its TTL; nil means now.
	AuthenticatedAt *time.Time `json:"authenticatedAt,omitempty"`
	// Method is the payment method the customer chose: empty for a card,
	// VIRTUAL_ACCOUNT for a virtual account, whose confirm answers
	// WAITING_FOR_DEPOSIT with the issued account.
	Method string `json:"method,omitempty"`
}

// Authorization is the answer to an authorize: the paymentKey the checkout
// widget would hand to the shop, and when its session stops accepting a
// confirm (under the TTL configured when it was authorized).
type Authorization struct {
	PaymentKey string    `json:"paymentKey"`
	OrderID    string    `json:"orderId"`
	Amount     int64     `json:"amount"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// Authorize creates a payment in IN_PROGRESS with a fresh paymentKey, as the
// customer's authentication in the checkout widget does. Authorizing an
// orderId again with the same amount returns the existing authorization;
// with another amount it fails with a 409 *Error. Invalid input is a 400
// *Error.
func (s *Simulator) Authorize(req AuthorizeRequest) (Authorization, error) {
	auth, _, err := s.authorize(req)
	return auth, err
}

// authorize is Authorize that also reports whether the payment was created.
func (s *Simulator) authorize(req AuthorizeRequest) (Authorization, bool, error) {
	if err := validateOrderID(req.OrderID); err != nil {
		return Authorization{}, false, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "%v", err)
	}
	if req.Amount <= 0 {
		return Authorization{}, false, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "amount must be a positive integer")
	}
	if req.OrderName == "" {
		req.OrderName = defaultOrderName
	}
	if req.Method != "" && req.Method != MethodVirtualAccount {
		return Authorization{}, false, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "method must be empty (a card) or %s", MethodVirtualAccount)
	}
	at := s.now()
	if req.AuthenticatedAt != nil {
		at = *req.AuthenticatedAt
	}
	fresh := newPaymentState(newPaymentKey(at), req.OrderID, req.OrderName, req.Amount, at)
	fresh.virtualAccount = req.Method == MethodVirtualAccount
	p, inserted := s.payments.insert(fresh)
	if !inserted && p.amount != req.Amount {
		return Authorization{}, false, errorWithStatus(http.StatusConflict, CodeDuplicatedOrderID,
			"orderId %q is already authorized for amount %d", req.OrderID, p.amount)
	}
	return Authorization{
		PaymentKey: p.paymentKey,
		OrderID:    p.orderID,
		Amount:     p.amount,
		ExpiresAt:  p.authenticatedAt.Add(s.faults.current().sessionTTL()).In(kst),
	}, inserted, nil
}
