package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// OutboxJobs is the number of unfinished outbox jobs of one kind in one
// River state, and how long the oldest of them has existed.
type OutboxJobs struct {
	Kind      string
	State     string
	Jobs      int64
	OldestAge time.Duration
}

// OutboxJobs counts the outbox jobs that are available, scheduled, retryable
// or running, by kind and state. Ages are measured with the database's clock,
// so they do not depend on the caller's.
func (s *Store) OutboxJobs(ctx context.Context, db DBTX) ([]OutboxJobs, error) {
	rows, err := s.q.StatsOutboxJobs(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error counting outbox jobs: %w", err)
	}
	out := make([]OutboxJobs, len(rows))
	for i, r := range rows {
		out[i] = OutboxJobs{
			Kind: r.Kind, State: r.State, Jobs: r.Jobs,
			OldestAge: time.Duration(r.OldestAgeSeconds * float64(time.Second)),
		}
	}
	return out, nil
}

// PaymentsByStatus counts the payments in each of payment.AttentionStatuses
// (the others grow without bound and are not counted: the relay's outcome
// counters say how payments settle); a status no payment is in is absent.
func (s *Store) PaymentsByStatus(ctx context.Context, db DBTX) (map[payment.Status]int64, error) {
	rows, err := s.q.StatsPaymentsByStatus(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error counting payments by status: %w", err)
	}
	out := make(map[payment.Status]int64, len(rows)+1)
	for _, r := range rows {
		out[payment.Status(r.Status)] = r.Payments
	}
	// Waiting for a deposit is counted too, through its own partial index:
	// not a state that needs the gateway's word now, but one a dashboard
	// must tell apart from unknown (docs/design.md section 19).
	w, err := s.q.StatsPaymentsWaitingForDeposit(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error counting payments waiting for a deposit: %w", err)
	}
	if w.Waiting > 0 {
		out[payment.StatusWaitingForDeposit] = w.Waiting
	}
	return out, nil
}
