package chaos

import (
	"context"
	"fmt"
	"time"
)

// BooksCounts is what the reconciliation runs after the drain found, over
// both gateways.
type BooksCounts struct {
	Runs         int `json:"runs"`
	Transactions int `json:"transactions"`
	Matched      int `json:"matched"`
	Differences  int `json:"differences"`
}

// booksPatience is how long the check waits for a reconciliation run of
// each gateway that began after the drain: two intervals and the run.
const booksPatience = 2*booksInterval + time.Minute

// checkBooks holds us to the relay's reconciliation against the gateways'
// books (docs/design.md, "Reconciliation"): for each gateway, the first
// run that began after since (the end of the drain and settle) must finish
// its comparison and find no difference, since every payment has settled
// by then. Each difference it found is a violation. A build without the
// reconciliation (no books_runs table) is skipped and said so.
func (s *system) checkBooks(ctx context.Context, since time.Time, rep *Report, logf func(string, ...any)) error {
	var present bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('books_runs') IS NOT NULL`).Scan(&present); err != nil {
		return fmt.Errorf("error looking for the books tables: %w", err)
	}
	if !present {
		rep.Skipped = append(rep.Skipped, "reconciliation against the gateways' books: this build has no books job")
		return nil
	}
	violate := func(format string, args ...any) {
		rep.Violations = append(rep.Violations, "books: "+fmt.Sprintf(format, args...))
	}
	deadline := time.Now().Add(booksPatience)
	for _, gw := range []string{gatewayToss, gatewayPortOne} {
		var id int64
		var runErr string
		var c BooksCounts
		for {
			err := s.pool.QueryRow(ctx, `SELECT id, error, transactions, matched, differences FROM books_runs
				WHERE gateway = $1 AND started_at >= $2 AND finished_at IS NOT NULL ORDER BY id LIMIT 1`, gw, since).
				Scan(&id, &runErr, &c.Transactions, &c.Matched, &c.Differences)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				violate("no reconciliation run of %s's books finished within %s of the drain (last: %v)", gw, booksPatience, err)
				id = 0
				break
			}
			if !sleepCtx(ctx, time.Second) {
				return ctx.Err()
			}
		}
		if id == 0 {
			continue
		}
		rep.Books.Runs++
		rep.Books.Transactions += c.Transactions
		rep.Books.Matched += c.Matched
		rep.Books.Differences += c.Differences
		logf("books: %s run %d: %d transactions, %d matched, %d differences", gw, id, c.Transactions, c.Matched, c.Differences)
		if c.Transactions == 0 {
			violate("%s run %d compared nothing: RELAY_BOOKS_LAG or the window left every transaction out", gw, id)
		}
		if runErr != "" {
			violate("%s run %d did not finish its comparison: %s", gw, id, runErr)
		}
		rows, err := s.pool.Query(ctx, `SELECT kind, payment_key, coalesce(payment_id::text, ''), ours, coalesce(gateway_record::text, '')
			FROM books_differences WHERE last_run_id = $1 ORDER BY id`, id)
		if err != nil {
			return fmt.Errorf("error reading the books' differences: %w", err)
		}
		for rows.Next() {
			var kind, key, paymentID, ours, record string
			if err := rows.Scan(&kind, &key, &paymentID, &ours, &record); err != nil {
				rows.Close()
				return fmt.Errorf("error reading the books' differences: %w", err)
			}
			violate("%s run %d: %s for paymentKey %s (payment %q, ours %q, the gateway's %s)", gw, id, kind, key, paymentID, ours, record)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("error reading the books' differences: %w", err)
		}
	}
	return nil
}
