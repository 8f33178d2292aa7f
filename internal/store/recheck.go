package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
)

// WantLookup records that someone asked for a lookup of the payment (a
// gateway webhook, an operator) and returns when. It leaves updated_at
// alone: it is not a change to the payment (see PaymentLookupAnswered).
func (s *Store) WantLookup(ctx context.Context, db DBTX, paymentID string) (time.Time, error) {
	uid, err := uuid.Parse(paymentID)
	if err != nil {
		return time.Time{}, errNotFound
	}
	at, err := s.q.PaymentWantLookup(ctx, db, uid)
	if err != nil {
		return time.Time{}, notFoundOr(err, "error recording a lookup request")
	}
	if at == nil {
		return time.Time{}, fmt.Errorf("error recording a lookup request: no time returned")
	}
	return *at, nil
}

// LookupAnswered clears the payment's lookup request that a lookup saw
// before it asked the gateway (seen; nil when there was none). It returns
// the request still waiting: a newer one that came while the lookup asked,
// which needs a lookup of its own, or nil.
func (s *Store) LookupAnswered(ctx context.Context, db DBTX, paymentID string, seen *time.Time) (*time.Time, error) {
	uid, err := uuid.Parse(paymentID)
	if err != nil {
		return nil, errNotFound
	}
	still, err := s.q.PaymentLookupAnswered(ctx, db, dbsqlc.PaymentLookupAnsweredParams{ID: uid, Seen: seen})
	if err != nil {
		return nil, notFoundOr(err, "error clearing a lookup request")
	}
	return still, nil
}

// ListLookupWanted returns payments whose lookup request has waited since
// before wantedBefore, oldest first: their lookup was lost.
func (s *Store) ListLookupWanted(ctx context.Context, db DBTX, wantedBefore time.Time, limit int) ([]payment.Payment, error) {
	rows, err := s.q.PaymentListLookupWanted(ctx, db, dbsqlc.PaymentListLookupWantedParams{
		WantedBefore: &wantedBefore, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("error listing lookup requests: %w", err)
	}
	return toAppPayments(rows), nil
}

// ListRecheckDue returns payments whose provisional record is due for
// another lookup at now (Payment.RestsOnAbsence), soonest due first.
func (s *Store) ListRecheckDue(ctx context.Context, db DBTX, now time.Time, limit int) ([]payment.Payment, error) {
	rows, err := s.q.PaymentListRecheckDue(ctx, db, dbsqlc.PaymentListRecheckDueParams{Now: &now, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("error listing payments due for a recheck: %w", err)
	}
	return toAppPayments(rows), nil
}

// ListReadyToSweep returns ready intents of the given gateways created
// between createdAfter and createdBefore that are due for a look at now,
// oldest first.
func (s *Store) ListReadyToSweep(ctx context.Context, db DBTX, gateways []string, createdAfter, createdBefore, now time.Time, limit int) ([]payment.Payment, error) {
	rows, err := s.q.PaymentListReadyToSweep(ctx, db, dbsqlc.PaymentListReadyToSweepParams{
		Gateways: gateways, CreatedAfter: createdAfter, CreatedBefore: createdBefore, Now: &now, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("error listing ready intents to sweep: %w", err)
	}
	return toAppPayments(rows), nil
}

// SetNextRecheck schedules the next lookup of each payment in next (by
// id), in one statement. It is not a change to the payments: their status,
// version and updated_at stay.
func (s *Store) SetNextRecheck(ctx context.Context, db DBTX, next map[string]time.Time) error {
	if len(next) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(next))
	ats := make([]time.Time, 0, len(next))
	for id, at := range next {
		uid, err := uuid.Parse(id)
		if err != nil {
			return fmt.Errorf("error parsing payment id: %w", err)
		}
		ids, ats = append(ids, uid), append(ats, at)
	}
	if err := s.q.PaymentSetNextRecheck(ctx, db, dbsqlc.PaymentSetNextRecheckParams{PaymentIds: ids, NextAt: ats}); err != nil {
		return fmt.Errorf("error scheduling rechecks: %w", err)
	}
	return nil
}

func toAppPayments(rows []dbsqlc.Payment) []payment.Payment {
	out := make([]payment.Payment, len(rows))
	for i, r := range rows {
		out[i] = toAppPayment(r)
	}
	return out
}

// notFoundOr turns "no row" into the domain's not-found error and wraps
// anything else with what was being done.
func notFoundOr(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ListDepositLooksDue returns payments waiting for a deposit whose next
// look by the relay's sweep is due at now (or was never scheduled),
// soonest first (docs/design.md section 19).
func (s *Store) ListDepositLooksDue(ctx context.Context, db DBTX, now time.Time, limit int) ([]payment.Payment, error) {
	rows, err := s.q.PaymentListDepositLooksDue(ctx, db, dbsqlc.PaymentListDepositLooksDueParams{Now: &now, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("error listing deposit looks due: %w", err)
	}
	return toAppPayments(rows), nil
}

// SetDepositNextLook schedules the next deposit look of each payment in
// next; a payment no longer waiting for its deposit is left alone.
func (s *Store) SetDepositNextLook(ctx context.Context, db DBTX, next map[string]time.Time) error {
	if len(next) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(next))
	ats := make([]time.Time, 0, len(next))
	for id, at := range next {
		uid, err := uuid.Parse(id)
		if err != nil {
			return fmt.Errorf("error parsing payment id: %w", err)
		}
		ids, ats = append(ids, uid), append(ats, at)
	}
	if err := s.q.PaymentSetDepositNextLook(ctx, db, dbsqlc.PaymentSetDepositNextLookParams{PaymentIds: ids, NextAt: ats}); err != nil {
		return fmt.Errorf("error scheduling deposit looks: %w", err)
	}
	return nil
}
