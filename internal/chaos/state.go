package chaos

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"
)

// state is our side after the drain, read straight from Postgres.
type state struct {
	payments map[string]*ourPayment // by id
	cancels  map[string]*ourCancel  // by id
	// Live jobs: available, scheduled, retryable or running, by the payment
	// and the cancel their args name.
	paymentJobs map[string][]string // payment id → "kind #id"
	cancelJobs  map[string][]string // cancel id → "kind #id"
}

type ourPayment struct {
	id, status, paymentKey string
	orderID, gateway       string
	amount                 int64
	balance                int64
	canceledAmount         int64
	// vaDue is a virtual account's due date; nil for other payments.
	vaDue   *time.Time
	cancels []*ourCancel // oldest first
}

type ourCancel struct {
	id, paymentID, kind, status, key string
	// transactionKey is the gateway's refund transaction we recorded the
	// cancel done with.
	transactionKey string
	amount         int64 // what was asked; 0: the whole balance
	canceledAmount int64 // what we recorded as refunded
	createdAt      time.Time
}

func (c *ourCancel) String() string {
	asked := "the balance"
	if c.amount > 0 {
		asked = fmt.Sprint(c.amount)
	}
	return fmt.Sprintf("cancel %s (%s, %s, asked %s, refunded %d, key %s, created %s)",
		c.id, c.kind, c.status, asked, c.canceledAmount, c.key, c.createdAt.UTC().Format(time.RFC3339Nano))
}

// liveJobStates are the River states of a job that will still run.
var liveJobStates = []string{"available", "scheduled", "retryable", "running"}

func (s *system) readState(ctx context.Context) (*state, error) {
	st := &state{
		payments:    map[string]*ourPayment{},
		cancels:     map[string]*ourCancel{},
		paymentJobs: map[string][]string{},
		cancelJobs:  map[string][]string{},
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text, status, coalesce(payment_key, ''), order_id, gateway,
		amount, balance_amount, canceled_amount, va_due_at FROM payments`)
	if err != nil {
		return nil, fmt.Errorf("error reading payments: %w", err)
	}
	for rows.Next() {
		p := &ourPayment{}
		if err := rows.Scan(&p.id, &p.status, &p.paymentKey, &p.orderID, &p.gateway, &p.amount, &p.balance, &p.canceledAmount, &p.vaDue); err != nil {
			return nil, fmt.Errorf("error reading payments: %w", err)
		}
		st.payments[p.id] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error reading payments: %w", err)
	}

	rows, err = s.pool.Query(ctx, `SELECT id::text, payment_id::text, kind, status, idempotency_key, transaction_key,
		coalesce(amount, 0), canceled_amount, created_at FROM payment_cancels ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("error reading cancels: %w", err)
	}
	for rows.Next() {
		c := &ourCancel{}
		if err := rows.Scan(&c.id, &c.paymentID, &c.kind, &c.status, &c.key, &c.transactionKey, &c.amount, &c.canceledAmount, &c.createdAt); err != nil {
			return nil, fmt.Errorf("error reading cancels: %w", err)
		}
		st.cancels[c.id] = c
		if p := st.payments[c.paymentID]; p != nil {
			p.cancels = append(p.cancels, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error reading cancels: %w", err)
	}

	// The args are the api↔relay contract of internal/paymentjob:
	// {"paymentId"} for confirms and lookups, {"paymentId","cancelId"} for
	// cancels.
	rows, err = s.pool.Query(ctx, `SELECT id, kind, coalesce(args->>'paymentId', ''), coalesce(args->>'cancelId', '')
		FROM river_job WHERE state = ANY($1::river_job_state[])`, liveJobStates)
	if err != nil {
		return nil, fmt.Errorf("error reading live jobs: %w", err)
	}
	for rows.Next() {
		var id int64
		var kind, paymentID, cancelID string
		if err := rows.Scan(&id, &kind, &paymentID, &cancelID); err != nil {
			return nil, fmt.Errorf("error reading live jobs: %w", err)
		}
		job := fmt.Sprintf("%s #%d", kind, id)
		if paymentID != "" {
			st.paymentJobs[paymentID] = append(st.paymentJobs[paymentID], job)
		}
		if cancelID != "" {
			st.cancelJobs[cancelID] = append(st.cancelJobs[cancelID], job)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error reading live jobs: %w", err)
	}
	return st, nil
}

// attentionList returns the ids of the payments in unknown that
// GET /v1/payments/attention lists for operators, however recently they
// changed.
func (s *system) attentionList(ctx context.Context) (map[string]bool, error) {
	const limit = 1000 // the api's most
	var got struct {
		Payments []struct {
			ID string `json:"id"`
		} `json:"payments"`
	}
	q := url.Values{"status": {"unknown"}, "olderThan": {"0s"}, "limit": {fmt.Sprint(limit)}}
	var retries atomic.Int64
	if err := s.get(ctx, "/v1/payments/attention?"+q.Encode(), &got, &retries); err != nil {
		return nil, fmt.Errorf("error reading the attention list: %w", err)
	}
	listed := map[string]bool{}
	for _, p := range got.Payments {
		listed[p.ID] = true
	}
	if len(got.Payments) == limit {
		// The list is oldest first and has no next page: past this many,
		// a payment missing from it may only be further down.
		return nil, fmt.Errorf("the attention list is full (%d payments in unknown): too many to check", limit)
	}
	return listed, nil
}
