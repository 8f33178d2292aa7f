package payflow

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

// LookUpForBooks puts a lookup of each payment into the outbox on the
// caller's transaction: reconciliation found the gateway's books differ from
// ours for them (docs/design.md, "Reconciliation"). It changes no payment:
// the lookup asks the gateway and settles from its word (Settle), as for a
// webhook. A payment whose lookup is already waiting gets no second one
// (lookups are unique per payment); the count is of the lookups enqueued.
func (f *Flow) LookUpForBooks(ctx context.Context, tx pgx.Tx, paymentIDs []string) (int, error) {
	if len(paymentIDs) == 0 {
		return 0, nil
	}
	jobs := make([]river.InsertManyParams, len(paymentIDs))
	for i, id := range paymentIDs {
		jobs[i] = river.InsertManyParams{Args: paymentjob.LookupArgs{PaymentID: id}}
	}
	if m, ok := f.outbox.(ManyOutbox); ok {
		res, err := m.InsertManyTx(ctx, tx, jobs)
		if err != nil {
			return 0, fmt.Errorf("error enqueuing %d lookups for the books: %w", len(jobs), err)
		}
		n := 0
		for _, r := range res {
			if r != nil && !r.UniqueSkippedAsDuplicate {
				n++
			}
		}
		return n, nil
	}
	n := 0
	for _, j := range jobs {
		res, err := f.outbox.InsertTx(ctx, tx, j.Args, nil)
		if err != nil {
			return n, fmt.Errorf("error enqueuing a lookup for the books: %w", err)
		}
		if res != nil && !res.UniqueSkippedAsDuplicate {
			n++
		}
	}
	return n, nil
}
