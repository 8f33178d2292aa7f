package gatewaysim

import "net/http"

func (s *Simulator) handleLookupByKey(w http.ResponseWriter, r *http.Request) {
	paymentKey := r.PathValue("paymentKey")
	s.serveV1(w, r, OperationLookup, paymentKey, func(string) response {
		p, _ := s.payments.tossPayment(paymentKey)
		return s.lookup(p)
	})
}

func (s *Simulator) handleLookupByOrder(w http.ResponseWriter, r *http.Request) {
	orderID := r.PathValue("orderId")
	// Resolved before the call too, so scripts and the request log, which
	// are keyed by paymentKey, apply to lookups by orderId.
	paymentKey := ""
	if p, ok := s.payments.byOrderID(orderID); ok && p.gateway == GatewayToss {
		paymentKey = p.paymentKey
	}
	s.serveV1(w, r, OperationLookup, paymentKey, func(string) response {
		p, ok := s.payments.byOrderID(orderID)
		if ok && p.gateway != GatewayToss {
			p = nil
		}
		return s.lookup(p)
	})
}

// lookup answers the payment as it stands; p is nil when unknown.
func (s *Simulator) lookup(p *paymentState) response {
	if p == nil {
		return newError(CodeNotFoundPayment, "no such payment").response()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireIfDue(s.now(), s.faults.current().sessionTTL())
	return jsonResponse(http.StatusOK, p.toPayment())
}
