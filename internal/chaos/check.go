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

type ourPayment struct {
	status         string
	paymentKey     string
	balance        int64
	canceledAmount int64
	doneCancels    map[string]int64 // idempotency key → amount refunded
}

// check compares every payment with its plan and with the gateway's ledger.
func (s *system) check(ctx context.Context, plans []*plan, rep *Report) error {
	ours := map[string]*ourPayment{}
	rows, err := s.pool.Query(ctx, `SELECT id::text, status, coalesce(payment_key, ''), balance_amount, canceled_amount FROM payments`)
	if err != nil {
		return fmt.Errorf("error reading payments: %w", err)
	}
	for rows.Next() {
		var id string
		p := &ourPayment{doneCancels: map[string]int64{}}
		if err := rows.Scan(&id, &p.status, &p.paymentKey, &p.balance, &p.canceledAmount); err != nil {
			return fmt.Errorf("error reading payments: %w", err)
		}
		ours[id] = p
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("error reading payments: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT payment_id::text, idempotency_key, canceled_amount FROM payment_cancels WHERE status = 'done'`)
	if err != nil {
		return fmt.Errorf("error reading cancels: %w", err)
	}
	for rows.Next() {
		var id, key string
		var amount int64
		if err := rows.Scan(&id, &key, &amount); err != nil {
			return fmt.Errorf("error reading cancels: %w", err)
		}
		if p := ours[id]; p != nil {
			p.doneCancels[key] = amount
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("error reading cancels: %w", err)
	}

	ledger, err := s.sim.Ledger(ctx)
	if err != nil {
		return fmt.Errorf("error reading the gateway's ledger: %w", err)
	}
	gw := map[string]gatewaysim.LedgerEntry{}
	for _, e := range ledger.Payments {
		gw[e.PaymentKey] = e
		if e.Approvals > 1 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("double charge: %s approved %d times", e.PaymentKey, e.Approvals))
		}
	}

	violate := func(p *plan, format string, args ...any) {
		rep.Violations = append(rep.Violations, fmt.Sprintf("order %s (%s): ", p.orderID, p.kind)+fmt.Sprintf(format, args...))
	}
	for _, p := range plans {
		if p.loadErr != "" {
			violate(p, "payment %s: the api answered %s", p.id, p.loadErr)
			if p.id == "" {
				continue
			}
		}
		our := ours[p.id]
		if our == nil {
			violate(p, "payment lost: no row for id %q", p.id)
			continue
		}
		rep.Outcomes[our.status]++
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
		// Our state equals the gateway's.
		switch our.status {
		case "failed", "expired":
			if e.Approvals != 0 {
				violate(p, "we say %s but the gateway charged it", our.status)
			}
			continue
		case "confirmed", "canceled", "partially_canceled":
			gwStatus := map[string]string{"confirmed": "DONE", "canceled": "CANCELED", "partially_canceled": "PARTIAL_CANCELED"}[our.status]
			if e.Status != gwStatus || e.Approvals != 1 {
				violate(p, "we say %s, the gateway says %s with %d approvals", our.status, e.Status, e.Approvals)
			}
			if our.balance != e.BalanceAmount || our.balance != wantBalance {
				violate(p, "balance: ours %d, gateway %d, want %d", our.balance, e.BalanceAmount, wantBalance)
			}
		default:
			violate(p, "not settled: %s", our.status)
			continue
		}
		// Every refund recorded, each under one of our cancel keys.
		var refunded int64
		for _, r := range e.Refunds {
			refunded += r.Amount
			amount, ok := our.doneCancels[r.IdempotencyKey]
			if !ok {
				violate(p, "the gateway refunded %d under key %q, which no finished cancel of ours holds", r.Amount, r.IdempotencyKey)
			} else if amount != r.Amount {
				violate(p, "refund under %q: gateway %d, ours %d", r.IdempotencyKey, r.Amount, amount)
			}
		}
		if len(e.Refunds) != len(our.doneCancels) {
			violate(p, "the gateway made %d refunds, we recorded %d", len(e.Refunds), len(our.doneCancels))
		}
		if refunded != our.canceledAmount {
			violate(p, "refunded: gateway %d, ours %d", refunded, our.canceledAmount)
		}
	}

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
