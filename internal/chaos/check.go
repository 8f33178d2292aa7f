package chaos

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// drain waits until the outbox owes nothing: no payment in confirming or
// canceling, none in unknown (the reconciler settles those), and no payment
// job left to run.
func (s *system) drain(ctx context.Context, timeout time.Duration, logf func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	var inFlight, unknown, jobs int
	for {
		err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE status IN ('confirming', 'canceling')),
			count(*) FILTER (WHERE status = 'unknown')
			FROM payments`).Scan(&inFlight, &unknown)
		if err == nil {
			err = s.pool.QueryRow(ctx, `SELECT count(*) FROM river_job
				WHERE kind IN ('payment_confirm', 'payment_cancel', 'payment_lookup')
				AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&jobs)
		}
		if err == nil && inFlight == 0 && unknown == 0 && jobs == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if inFlight == 0 && jobs == 0 {
				// Unknown is allowed to remain (it is listed for operators);
				// the check reports how many.
				logf("drained, with %d payments still unknown", unknown)
				return nil
			}
			return fmt.Errorf("%w after %s: %d payments in flight, %d unknown, %d jobs pending",
				errStuck, timeout, inFlight, unknown, jobs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// CheckCounts is how much the checks after the drain looked at.
type CheckCounts struct {
	Payments int `json:"payments"` // payments compared with their plan and the gateway
	Refunds  int `json:"refunds"`  // gateway refunds matched to a cancel of ours
	Cancels  int `json:"cancels"`  // cancel rows compared with the gateway's record
	// Owed counts payments in confirming, canceling or unknown and cancels
	// waiting or pending after the drain: each needs a live job or, for a
	// payment in unknown, a place on the attention list.
	Owed      int `json:"owed"`
	WithJob   int `json:"withJob"`
	Listed    int `json:"listed"`
	Orphans   int `json:"orphans"`
	Unsettled int `json:"unsettled"` // cancels of payments in unknown, excused from matching the gateway
}

// check compares every payment with its plan and with the gateway's
// ledger, every refund and cancel with each other, and looks for work the
// outbox owes but no job will do.
func (s *system) check(ctx context.Context, plans []*plan, rep *Report) error {
	st, err := s.readState(ctx)
	if err != nil {
		return err
	}
	ledger, err := s.sim.Ledger(ctx)
	if err != nil {
		return fmt.Errorf("error reading the gateway's ledger: %w", err)
	}
	gw := map[string]gatewaysim.LedgerEntry{}
	for _, e := range ledger.Payments {
		gw[e.PaymentKey] = e
		if e.Approvals > 1 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("double charge: %s (order %s) approved %d times", e.PaymentKey, e.OrderID, e.Approvals))
		}
	}

	s.checkPlans(plans, st, gw, rep)
	checkLedger(st, gw, rep)
	checkMoney(st, gw, rep)
	checkStuck(st, rep)
	listed, err := s.attentionList(ctx)
	if err != nil {
		return err
	}
	checkOrphans(st, listed, rep)

	reqs, err := s.sim.Requests(ctx, "")
	if err != nil {
		return fmt.Errorf("error reading the gateway's request log: %w", err)
	}
	rep.GatewayCalls = len(reqs)
	rep.GatewayOutcomes = map[string]int{}
	for _, r := range reqs {
		rep.GatewayOutcomes[r.Outcome]++
		switch r.Outcome {
		case gatewaysim.OutcomeInjected:
			rep.FaultsInjected++
		case gatewaysim.OutcomeLost:
			rep.LostResponses++
		case gatewaysim.OutcomeReplayed:
			rep.Replayed++
		}
	}
	// Calls the relay stopped waiting for: what a held request looks like
	// from its side.
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM payment_attempts
		WHERE error ILIKE '%deadline exceeded%' OR error ILIKE '%timeout%'`).Scan(&rep.GatewayTimeouts); err != nil {
		return fmt.Errorf("error counting gateway timeouts: %w", err)
	}
	return nil
}

// gatewayStatus is the word each gateway's record uses for our charged
// states.
var gatewayStatus = map[string]map[string]string{
	gatewayToss:    {"confirmed": "DONE", "canceled": "CANCELED", "partially_canceled": "PARTIAL_CANCELED"},
	gatewayPortOne: {"confirmed": "PAID", "canceled": "CANCELLED", "partially_canceled": "PARTIAL_CANCELLED"},
}

// checkPlans holds every payment to the end its plan implies, and counts
// what became of the payments whose money moved without our asking. A plan
// whose payment the shop's staff refunded in the console has no end of its
// own: the gateway's record decides it, and checkLedger holds us to that.
func (s *system) checkPlans(plans []*plan, st *state, gw map[string]gatewaysim.LedgerEntry, rep *Report) {
	violate := func(p *plan, format string, args ...any) {
		rep.Violations = append(rep.Violations, fmt.Sprintf("order %s (%s via %s, payment %s): ", p.orderID, p.kind, p.gateway, p.id)+fmt.Sprintf(format, args...))
	}
	for _, p := range plans {
		if p.isVA() {
			if rep.Unasked.VA.Payments == nil {
				rep.Unasked.VA.Payments = map[string]int{}
			}
			rep.Unasked.VA.Payments[string(p.kind)]++
		}
		if p.vaErr != "" {
			violate(p, "%s", p.vaErr)
		}
		switch p.kind {
		case kindNeverConfirm:
			rep.Unasked.NeverConfirmed++
		case kindCancelUnconfirmed:
			rep.Unasked.NeverConfirmed++
			rep.Unasked.CanceledUnconfirmed++
		}
		if p.loadErr != "" {
			violate(p, "the api answered %s", p.loadErr)
			if p.id == "" {
				continue
			}
		}
		our := st.payments[p.id]
		if our == nil {
			violate(p, "payment lost: no row for id %q", p.id)
			continue
		}
		rep.Checked.Payments++
		rep.Outcomes[our.status]++
		if rep.ByGateway[p.gateway] == nil {
			rep.ByGateway[p.gateway] = map[string]int{}
		}
		rep.ByGateway[p.gateway][our.status]++
		if our.status == "unknown" {
			rep.Unknown++
			continue
		}
		e, ok := gw[p.paymentKey]
		if !ok {
			violate(p, "the gateway does not know paymentKey %s", p.paymentKey)
			continue
		}
		if e.Gateway != p.gateway {
			violate(p, "the payment lives in %s at the gateway", e.Gateway)
		}
		if p.gateway == gatewayPortOne && our.paymentKey != "" && our.paymentKey != p.paymentKey {
			violate(p, "our row holds paymentKey %s, the customer paid under %s", our.paymentKey, p.paymentKey)
		}
		agrees := agreesWithGateway(our, e)
		switch p.kind {
		case kindNeverConfirm, kindLatePay:
			if agrees && e.Approvals > 0 {
				rep.Unasked.Adopted++
			}
		case kindCancelUnconfirmed:
			if agrees && e.Approvals > 0 && our.status == "canceled" {
				rep.Unasked.Refunded++
			}
		}
		if p.console || hasConsoleRefund(e) || p.loadErr != "" {
			continue // the gateway's record decides its end
		}
		wantStatus, wantBalance := p.want()
		if our.status != wantStatus {
			violate(p, "ended %s, want %s (the gateway says %s, balance %d)", our.status, wantStatus, e.Status, e.BalanceAmount)
		} else if our.balance != wantBalance && e.Approvals > 0 {
			violate(p, "balance: ours %d, want %d (gateway %d; refunds at the gateway: %s)",
				our.balance, wantBalance, e.BalanceAmount, formatRefunds(e.Refunds))
		}
	}
}

// chargedStatuses are our statuses of a payment the gateway charged and
// still holds some or none of.
var chargedStatuses = map[string]bool{"confirmed": true, "partially_canceled": true, "canceled": true}

// agreesWithGateway reports whether our row says what the gateway's record
// does: charged or not, the status, the balance and the amount canceled.
func agreesWithGateway(our *ourPayment, e gatewaysim.LedgerEntry) bool {
	if e.Approvals == 0 {
		// Never charged: nothing to hold, whatever we call it, as long as
		// we do not claim money.
		return !chargedStatuses[our.status] || our.status == "canceled" && our.canceledAmount == 0
	}
	return chargedStatuses[our.status] && e.Status == gatewayStatus[e.Gateway][our.status] &&
		our.balance == e.BalanceAmount && our.canceledAmount == e.TotalAmount-e.BalanceAmount
}

func hasConsoleRefund(e gatewaysim.LedgerEntry) bool {
	for _, r := range e.Refunds {
		if r.Console {
			return true
		}
	}
	return false
}

// ourPaymentFor returns our row for a payment the gateway knows: by its
// paymentKey, else (a PortOne payment paid in the browser that we never
// heard the key of) by its order in the same gateway.
func ourPaymentFor(byKey, byOrder map[string]*ourPayment, e gatewaysim.LedgerEntry) *ourPayment {
	if p := byKey[e.PaymentKey]; p != nil {
		return p
	}
	if p := byOrder[e.OrderID]; p != nil && p.gateway == e.Gateway {
		return p
	}
	return nil
}

func paymentIndexes(st *state) (byKey, byOrder map[string]*ourPayment) {
	byKey, byOrder = map[string]*ourPayment{}, map[string]*ourPayment{}
	for _, p := range st.payments {
		if p.paymentKey != "" {
			byKey[p.paymentKey] = p
		}
		byOrder[p.orderID] = p
	}
	return byKey, byOrder
}

// checkLedger holds our state to the gateway's for every payment the
// gateway knows, whether or not the checkout ever confirmed it with us:
// charged there means charged here, with the same status, balance and
// amount canceled; never charged there means no money claimed here. A
// payment the gateway charged and still holds money of, that we have as
// ready, failed, expired, canceled or not at all, is money we do not know
// we have (Unasked.ChargedUnsettled). Payments in unknown are left to
// checkStuck.
func checkLedger(st *state, gw map[string]gatewaysim.LedgerEntry, rep *Report) {
	violate := func(format string, args ...any) {
		rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
	}
	byKey, byOrder := paymentIndexes(st)
	keys := make([]string, 0, len(gw))
	for k := range gw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		e := gw[key]
		our := ourPaymentFor(byKey, byOrder, e)
		charged := e.Approvals > 0
		if our == nil {
			if charged {
				rep.Unasked.ChargedUnsettled++
				violate("paymentKey %s (%s, order %s): the gateway charged it (%s, balance %d) and no row of ours holds it", key, e.Gateway, e.OrderID, e.Status, e.BalanceAmount)
			}
			continue
		}
		what := fmt.Sprintf("payment %s (%s, order %s, paymentKey %s)", our.id, e.Gateway, e.OrderID, key)
		if our.status == "unknown" || our.status == "confirming" || our.status == "canceling" {
			continue
		}
		if charged && e.BalanceAmount > 0 && !(our.status == "confirmed" || our.status == "partially_canceled") {
			rep.Unasked.ChargedUnsettled++
			violate("%s: charged at the gateway and not settled here: the gateway says %s holding %d, we say %s", what, e.Status, e.BalanceAmount, our.status)
			continue
		}
		if agreesWithGateway(our, e) {
			continue
		}
		if !charged {
			violate("%s: we say %s (balance %d), the gateway never charged it (%s)", what, our.status, our.balance, e.Status)
			continue
		}
		violate("%s: we say %s, balance %d, canceled %d; the gateway says %s, balance %d, canceled %d (refunds: %s)", what,
			our.status, our.balance, our.canceledAmount, e.Status, e.BalanceAmount, e.TotalAmount-e.BalanceAmount, formatRefunds(e.Refunds))
	}
}

// checkStuck reports every payment still in flight or unknown once the
// outbox has drained and the gateway's unasked-for money has had its time
// to settle: nothing may be left waiting on the gateway's word.
func checkStuck(st *state, rep *Report) {
	ids := make([]string, 0, len(st.payments))
	for id, p := range st.payments {
		switch p.status {
		case "confirming", "canceling", "unknown":
			ids = append(ids, id)
		case "waiting_for_deposit":
			// Past its due date and grace, a lookup must have ended it
			// (the sweep looks every RELAY_DEPOSIT_SWEEP_CLOSE then).
			if p.vaDue != nil && time.Since(*p.vaDue) > vaGrace+vaSweepFar {
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := st.payments[id]
		rep.Violations = append(rep.Violations, fmt.Sprintf("payment %s (%s, order %s) is stuck in %s after the drain", id, p.gateway, p.orderID, p.status))
	}
}
