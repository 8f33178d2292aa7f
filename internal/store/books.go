package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
)

// BooksRun is one reconciliation run against one gateway's books
// (docs/design.md, "Reconciliation").
type BooksRun struct {
	ID                  int64
	Gateway             string
	WindowFrom          time.Time
	WindowUntil         time.Time
	StartedAt           time.Time
	FinishedAt          *time.Time
	Pages, Transactions int
	Matched             int
	// Differences the run found; of them Persisting had been found by an
	// earlier run too, Lookups were handed to a lookup and Listed wait for
	// an operator. Resolved counts earlier ones it no longer found.
	Differences, Persisting, Lookups, Listed, Resolved int
	// Error says why the run stopped short; empty when it compared all.
	Error string
}

// The kinds of difference a run finds.
const (
	// BooksUnknownPayment: the gateway moved money for a payment we have
	// no row of. Only an operator can settle it.
	BooksUnknownPayment = "unknown_payment"
	// BooksApprovalMissing: the gateway charged a payment ours does not
	// hold as charged.
	BooksApprovalMissing = "approval_missing"
	// BooksAmountDiffers: the gateway charged another amount than ours.
	BooksAmountDiffers = "amount_differs"
	// BooksRefundMissing: the gateway refunded what our books do not show.
	BooksRefundMissing = "refund_missing"
	// BooksMissingAtGateway: ours is charged and the gateway's books do not
	// show the approval.
	BooksMissingAtGateway = "missing_at_gateway"
)

// BooksDifference is one difference between a gateway's books and ours.
type BooksDifference struct {
	ID         int64
	Gateway    string
	Kind       string
	PaymentKey string
	// Subject names what it is about: the gateway transaction's key, or
	// the payment key for a whole payment.
	Subject string
	// PaymentID is our payment; empty for a payment we never heard of.
	PaymentID  string
	OccurredAt time.Time
	// GatewayRecord is the gateway's record: its transactions the
	// difference is about, as a JSON array of gateway.Transaction.
	GatewayRecord []byte
	// Ours is our record as text, when we have one.
	Ours string
	// Lookup says a lookup of the payment was enqueued for it.
	Lookup                bool
	FirstRunID, LastRunID int64
	Runs                  int
	CreatedAt             time.Time
	ResolvedAt            *time.Time
}

// BooksPayment is our record of a payment as a run compares it.
type BooksPayment struct {
	ID             string
	PaymentKey     string
	Status         payment.Status
	Amount         int64
	ApprovedAmount int64
	BalanceAmount  int64
	CanceledAmount int64
	ApprovedAt     *time.Time
	CreatedAt      time.Time
	// Refunds are our done cancels, by the gateway transaction each was
	// booked under (empty when it was not named).
	Refunds []BooksRefund
}

// BooksRefund is one done cancel of ours.
type BooksRefund struct {
	TransactionKey string
	Amount         int64
}

// StartBooksRun records that a run began and returns its id.
func (s *Store) StartBooksRun(ctx context.Context, db DBTX, gateway string, from, until, startedAt time.Time) (int64, error) {
	id, err := s.q.BooksRunStart(ctx, db, dbsqlc.BooksRunStartParams{Gateway: gateway, WindowFrom: from, WindowUntil: until, StartedAt: startedAt})
	if err != nil {
		return 0, fmt.Errorf("error starting books run: %w", err)
	}
	return id, nil
}

// FinishBooksRun records a run's counts and end.
func (s *Store) FinishBooksRun(ctx context.Context, db DBTX, run BooksRun) error {
	finished := time.Now()
	if run.FinishedAt != nil {
		finished = *run.FinishedAt
	}
	err := s.q.BooksRunFinish(ctx, db, dbsqlc.BooksRunFinishParams{
		ID: run.ID, FinishedAt: &finished, Pages: int32(run.Pages), Transactions: int32(run.Transactions),
		Matched: int32(run.Matched), Differences: int32(run.Differences), Persisting: int32(run.Persisting),
		Lookups: int32(run.Lookups), Listed: int32(run.Listed), Resolved: int32(run.Resolved), Error: run.Error,
	})
	if err != nil {
		return fmt.Errorf("error finishing books run: %w", err)
	}
	return nil
}

// BooksPayments returns our payments of a gateway with the given payment
// keys, whatever their status, by payment key.
func (s *Store) BooksPayments(ctx context.Context, db DBTX, gateway string, keys []string) (map[string]BooksPayment, error) {
	rows, err := s.q.BooksPaymentsByKeys(ctx, db, dbsqlc.BooksPaymentsByKeysParams{Gateway: gateway, PaymentKeys: keys})
	if err != nil {
		return nil, fmt.Errorf("error reading payments for the books: %w", err)
	}
	out := make(map[string]BooksPayment, len(rows))
	for _, r := range rows {
		p := BooksPayment{
			ID: r.ID.String(), Status: payment.Status(r.Status), Amount: r.Amount, ApprovedAmount: r.ApprovedAmount,
			BalanceAmount: r.BalanceAmount, CanceledAmount: r.CanceledAmount, ApprovedAt: r.ApprovedAt, CreatedAt: r.CreatedAt,
		}
		if r.PaymentKey != nil {
			p.PaymentKey = *r.PaymentKey
		}
		for i := range r.CancelTransactionKeys {
			if i < len(r.CancelAmounts) {
				p.Refunds = append(p.Refunds, BooksRefund{TransactionKey: r.CancelTransactionKeys[i], Amount: r.CancelAmounts[i]})
			}
		}
		out[p.PaymentKey] = p
	}
	return out, nil
}

// BooksCharged is one of our payments charged in a run's window.
type BooksCharged struct {
	ID             string
	PaymentKey     string
	Status         payment.Status
	ApprovedAmount int64
	ApprovedAt     time.Time
}

// BooksChargedPayments returns our payments of a gateway approved in
// [chargedFrom, chargedUntil) and created at or after createdFrom.
func (s *Store) BooksChargedPayments(ctx context.Context, db DBTX, gateway string, chargedFrom, chargedUntil, createdFrom time.Time) ([]BooksCharged, error) {
	rows, err := s.q.BooksPaymentsCharged(ctx, db, dbsqlc.BooksPaymentsChargedParams{
		Gateway: gateway, ChargedFrom: &chargedFrom, ChargedUntil: &chargedUntil, CreatedFrom: createdFrom,
	})
	if err != nil {
		return nil, fmt.Errorf("error reading charged payments for the books: %w", err)
	}
	out := make([]BooksCharged, 0, len(rows))
	for _, r := range rows {
		c := BooksCharged{ID: r.ID.String(), Status: payment.Status(r.Status), ApprovedAmount: r.ApprovedAmount}
		if r.PaymentKey != nil {
			c.PaymentKey = *r.PaymentKey
		}
		if r.ApprovedAt != nil {
			c.ApprovedAt = *r.ApprovedAt
		}
		out = append(out, c)
	}
	return out, nil
}

// RecordBooksDifference records a difference a run found and returns how
// many runs have found it (above 1: it outlived a run).
func (s *Store) RecordBooksDifference(ctx context.Context, db DBTX, runID int64, d BooksDifference) (int, error) {
	var pid *uuid.UUID
	if d.PaymentID != "" {
		id, err := uuid.Parse(d.PaymentID)
		if err != nil {
			return 0, fmt.Errorf("error parsing payment id: %w", err)
		}
		pid = &id
	}
	runs, err := s.q.BooksDifferenceFound(ctx, db, dbsqlc.BooksDifferenceFoundParams{
		Gateway: d.Gateway, Kind: d.Kind, PaymentKey: d.PaymentKey, Subject: d.Subject, PaymentID: pid,
		OccurredAt: d.OccurredAt, GatewayRecord: d.GatewayRecord, Ours: d.Ours, Lookup: d.Lookup, RunID: runID,
	})
	if err != nil {
		return 0, fmt.Errorf("error recording books difference: %w", err)
	}
	return int(runs), nil
}

// ResolveBooksDifferences closes a gateway's open differences that run
// runID did not find again and whose moment its window covers, and returns
// how many it closed.
func (s *Store) ResolveBooksDifferences(ctx context.Context, db DBTX, gateway string, runID int64, from, until, at time.Time) (int, error) {
	n, err := s.q.BooksDifferencesResolve(ctx, db, dbsqlc.BooksDifferencesResolveParams{
		Gateway: gateway, RunID: runID, WindowFrom: from, WindowUntil: until, ResolvedAt: &at,
	})
	if err != nil {
		return 0, fmt.Errorf("error resolving books differences: %w", err)
	}
	return int(n), nil
}

// BooksRuns returns the most recent runs, newest first.
func (s *Store) BooksRuns(ctx context.Context, db DBTX, limit int) ([]BooksRun, error) {
	rows, err := s.q.BooksRunsRecent(ctx, db, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("error listing books runs: %w", err)
	}
	out := make([]BooksRun, len(rows))
	for i, r := range rows {
		out[i] = toBooksRun(r)
	}
	return out, nil
}

// OpenBooksDifferences returns the differences no run has resolved yet,
// newest first.
func (s *Store) OpenBooksDifferences(ctx context.Context, db DBTX, limit int) ([]BooksDifference, error) {
	rows, err := s.q.BooksDifferencesOpen(ctx, db, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("error listing books differences: %w", err)
	}
	return toBooksDifferences(rows), nil
}

// BooksUnexplained returns the open differences that the latest successful
// run of each gateway found: what the books leave unexplained now. A harness
// that has let the relay settle runs the books job (relay.BooksArgs), checks
// that its runs finished without an error (BooksRuns), and asserts this is
// empty.
func (s *Store) BooksUnexplained(ctx context.Context, db DBTX) ([]BooksDifference, error) {
	rows, err := s.q.BooksUnexplained(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error listing unexplained books differences: %w", err)
	}
	return toBooksDifferences(rows), nil
}

// BooksStats is one gateway's reconciliation at a glance.
type BooksStats struct {
	Gateway string
	// LastSuccess is when its last run without an error finished; zero
	// when none has.
	LastSuccess time.Time
	// Open differences, and those of them that outlived a run.
	Open, Persisting int64
}

// BooksStats returns, per gateway that has had a run, its last success and
// its open differences.
func (s *Store) BooksStats(ctx context.Context, db DBTX) ([]BooksStats, error) {
	rows, err := s.q.BooksStats(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error reading books stats: %w", err)
	}
	out := make([]BooksStats, len(rows))
	for i, r := range rows {
		out[i] = BooksStats{Gateway: r.Gateway, Open: r.Open, Persisting: r.Persisting}
		if r.LastSuccessUnix > 0 {
			out[i].LastSuccess = time.Unix(0, int64(r.LastSuccessUnix*float64(time.Second)))
		}
	}
	return out, nil
}

func toBooksRun(r dbsqlc.BooksRun) BooksRun {
	return BooksRun{
		ID: r.ID, Gateway: r.Gateway, WindowFrom: r.WindowFrom, WindowUntil: r.WindowUntil, StartedAt: r.StartedAt,
		FinishedAt: r.FinishedAt, Pages: int(r.Pages), Transactions: int(r.Transactions), Matched: int(r.Matched),
		Differences: int(r.Differences), Persisting: int(r.Persisting), Lookups: int(r.Lookups), Listed: int(r.Listed),
		Resolved: int(r.Resolved), Error: r.Error,
	}
}

func toBooksDifferences(rows []dbsqlc.BooksDifference) []BooksDifference {
	out := make([]BooksDifference, len(rows))
	for i, r := range rows {
		d := BooksDifference{
			ID: r.ID, Gateway: r.Gateway, Kind: r.Kind, PaymentKey: r.PaymentKey, Subject: r.Subject,
			OccurredAt: r.OccurredAt, GatewayRecord: r.GatewayRecord, Ours: r.Ours, Lookup: r.Lookup,
			FirstRunID: r.FirstRunID, LastRunID: r.LastRunID, Runs: int(r.Runs), CreatedAt: r.CreatedAt, ResolvedAt: r.ResolvedAt,
		}
		if r.PaymentID != nil {
			d.PaymentID = r.PaymentID.String()
		}
		out[i] = d
	}
	return out
}
