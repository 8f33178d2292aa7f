package gatewaysim

import "sync"

// paymentBook indexes the gateway's payments by paymentKey and orderId. Its
// lock guards only the indexes; each payment has its own lock for operations,
// so busy payments do not serialise each other.
type paymentBook struct {
	mu      sync.RWMutex
	byKey   map[string]*paymentState
	byOrder map[string]*paymentState
	ordered []*paymentState // authorization order, for the ledger
}

func newPaymentBook() *paymentBook {
	b := &paymentBook{}
	b.reset()
	return b
}

func (b *paymentBook) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byKey = map[string]*paymentState{}
	b.byOrder = map[string]*paymentState{}
	b.ordered = nil
}

// insert adds p unless its orderId or paymentKey is taken, in which case it
// returns the payment holding it and false.
func (b *paymentBook) insert(p *paymentState) (*paymentState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if existing, ok := b.byOrder[p.orderID]; ok {
		return existing, false
	}
	if existing, ok := b.byKey[p.paymentKey]; ok {
		return existing, false
	}
	b.byKey[p.paymentKey] = p
	b.byOrder[p.orderID] = p
	b.ordered = append(b.ordered, p)
	return p, true
}

func (b *paymentBook) byPaymentKey(paymentKey string) (*paymentState, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.byKey[paymentKey]
	return p, ok
}

func (b *paymentBook) byOrderID(orderID string) (*paymentState, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.byOrder[orderID]
	return p, ok
}

func (b *paymentBook) all() []*paymentState {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]*paymentState(nil), b.ordered...)
}

// tossPayment is byPaymentKey for the Toss API: a PortOne payment is not
// one Toss knows.
func (b *paymentBook) tossPayment(paymentKey string) (*paymentState, bool) {
	p, ok := b.byPaymentKey(paymentKey)
	if !ok || p.gateway != GatewayToss {
		return nil, false
	}
	return p, true
}

// portOnePayment is byPaymentKey for the PortOne API.
func (b *paymentBook) portOnePayment(paymentID string) (*paymentState, bool) {
	p, ok := b.byPaymentKey(paymentID)
	if !ok || p.gateway != GatewayPortOne {
		return nil, false
	}
	return p, true
}
