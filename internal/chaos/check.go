package chaos

import (
	"context"
	"fmt"
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
	checkMoney(st, gw, rep)
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

// checkPlans holds every payment to the end its plan implies and to the
// gateway's account of it.
func (s *system) checkPlans(plans []*plan, st *state, gw map[string]gatewaysim.LedgerEntry, rep *Report) {
	violate := func(p *plan, format string, args ...any) {
		rep.Violations = append(rep.Violations, fmt.Sprintf("order %s (%s via %s, payment %s): ", p.orderID, p.kind, p.gateway, p.id)+fmt.Sprintf(format, args...))
	}
	for _, p := range plans {
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
		wantStatus, wantBalance := p.want()
		if our.status != wantStatus && p.loadErr == "" {
			violate(p, "ended %s, want %s", our.status, wantStatus)
		}
		e, ok := gw[p.paymentKey]
		if !ok {
			violate(p, "the gateway does not know paymentKey %s", p.paymentKey)
			continue
		}
		if e.Gateway != p.gateway {
			violate(p, "the payment lives in %s at the gateway", e.Gateway)
		}
		// Our state equals the gateway's.
		switch our.status {
		case "failed", "expired":
			if e.Approvals != 0 {
				violate(p, "we say %s but the gateway charged it", our.status)
			}
			continue
		case "confirmed", "canceled", "partially_canceled":
			gwStatus := gatewayStatus[p.gateway][our.status]
			if e.Status != gwStatus || e.Approvals != 1 {
				violate(p, "we say %s, the gateway says %s with %d approvals", our.status, e.Status, e.Approvals)
			}
			if our.balance != e.BalanceAmount || our.balance != wantBalance {
				violate(p, "balance: ours %d, gateway %d, want %d (refunds at the gateway: %s)",
					our.balance, e.BalanceAmount, wantBalance, formatRefunds(e.Refunds))
			}
		default:
			violate(p, "not settled: %s", our.status)
			continue
		}
		var refunded int64
		var done int
		for _, r := range e.Refunds {
			refunded += r.Amount
		}
		for _, c := range our.cancels {
			if c.status == "done" {
				done++
			}
		}
		if len(e.Refunds) != done {
			violate(p, "the gateway made %d refunds (%s), we recorded %d done cancels", len(e.Refunds), formatRefunds(e.Refunds), done)
		}
		if refunded != our.canceledAmount {
			violate(p, "refunded: gateway %d, ours %d", refunded, our.canceledAmount)
		}
	}
}
