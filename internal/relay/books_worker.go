package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// BooksLister is what reconciliation needs of a gateway: its books, a page
// at a time. *toss.Client (Toss GET /v1/transactions) and
// *portone.Client (PortOne GET /payments-by-cursor) implement it; a gateway
// that does not is left out of reconciliation (logged). Like every gateway
// method it makes one HTTP call and never retries.
type BooksLister interface {
	Transactions(ctx context.Context, q gateway.TransactionQuery) gateway.TransactionPage
}

// Defaults of the reconciliation's configuration (Config.BooksWindow,
// Config.BooksLag).
const (
	// DefaultBooksWindow is how far back a run lists: two days, so with a
	// daily run every day is compared twice, the second time after the
	// gateway's books for it are complete.
	DefaultBooksWindow = 48 * time.Hour
	// DefaultBooksLag is how recent a transaction may be and not be
	// compared yet: a charge of ours the gateway does not list yet
	// (gateways list with a lag), or one of the gateway's our relay has not
	// heard of yet (a confirm in flight, a webhook on its way).
	DefaultBooksLag = time.Hour
)

const (
	// booksMaxPages bounds one run's listing: a gateway whose cursor never
	// ends must not hold the run forever (at 1000 a page, a million
	// transactions).
	booksMaxPages = 1000
	// booksKeysPerRead bounds the payment keys one read of ours asks for.
	booksKeysPerRead = 1000
)

// BooksArgs is the reconciliation's periodic job: compare every gateway's
// books for the window with ours (docs/design.md, "Reconciliation").
type BooksArgs struct{}

// Kind names the job in River's table.
func (BooksArgs) Kind() string { return "payment_books" }

// InsertOpts runs a run once: a failed listing is recorded on its run and
// the next interval lists again. A retry would count the differences it
// finds again as having outlived a run.
func (BooksArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1}
}

// BooksWorker runs the reconciliation.
type BooksWorker struct {
	river.WorkerDefaults[BooksArgs]
	r *relay
}

// Timeout gives a run time for a whole listing: the default job timeout
// (one minute) is for one gateway call.
func (w *BooksWorker) Timeout(*river.Job[BooksArgs]) time.Duration { return 30 * time.Minute }

// Work reconciles each gateway the relay serves, one after the other. Each
// is its own run: one gateway's failure does not stop the other's.
func (w *BooksWorker) Work(ctx context.Context, job *river.Job[BooksArgs]) error {
	r := w.r
	until := r.now()
	from := until.Add(-r.booksWindow)
	names := make([]string, 0, len(r.gateways))
	for name := range r.gateways {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		lister, ok := r.gateways[name].gw.(BooksLister)
		if !ok {
			r.log.WarnContext(ctx, "gateway client cannot list its books; not reconciled", slog.String("gateway", name))
			continue
		}
		run, err := w.reconcile(ctx, name, lister, from, until)
		if err != nil {
			return err
		}
		level := slog.LevelInfo
		if run.Error != "" || run.Persisting > 0 {
			level = slog.LevelError
		} else if run.Differences > 0 {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "books reconciled",
			slog.String("gateway", name), slog.Int64("books_run_id", run.ID), slog.Int64("job_id", job.ID),
			slog.Int("transactions", run.Transactions), slog.Int("matched", run.Matched),
			slog.Int("differences", run.Differences), slog.Int("persisting", run.Persisting),
			slog.Int("lookups", run.Lookups), slog.Int("listed", run.Listed), slog.Int("resolved", run.Resolved),
			slog.String("error", run.Error))
	}
	return nil
}

// reconcile runs one gateway's reconciliation and records it. It returns an
// error only when the run could not be recorded; a gateway that failed to
// list is a run with its Error set.
func (w *BooksWorker) reconcile(ctx context.Context, name string, lister BooksLister, from, until time.Time) (store.BooksRun, error) {
	r := w.r
	run := store.BooksRun{Gateway: name, WindowFrom: from, WindowUntil: until, StartedAt: r.now()}
	id, err := r.store.StartBooksRun(ctx, r.pool, name, from, until, run.StartedAt)
	if err != nil {
		return run, err
	}
	run.ID = id
	txs, pages, listErr := listBooks(ctx, lister, from, until)
	run.Pages, run.Transactions = pages, len(txs)
	var found []store.BooksDifference
	if listErr == nil {
		found, run.Matched, listErr = w.compare(ctx, name, txs, from, until)
	}
	if listErr != nil {
		// Nothing is compared from a partial listing: a page missing would
		// read as transactions the gateway does not have.
		run.Error = listErr.Error()
		finished := r.now()
		run.FinishedAt = &finished
		if err := r.store.FinishBooksRun(ctx, r.pool, run); err != nil {
			return run, err
		}
		r.metrics.BooksRun(name, false, nil, 0)
		return run, nil
	}
	kinds := map[string]int{}
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		run.Differences, run.Persisting, run.Lookups, run.Listed = 0, 0, 0, 0
		clear(kinds)
		var lookups []string
		for _, d := range found {
			runs, err := r.store.RecordBooksDifference(ctx, tx, run.ID, d)
			if err != nil {
				return err
			}
			run.Differences++
			kinds[d.Kind]++
			if runs > 1 {
				run.Persisting++
			}
			if d.Lookup {
				if !slices.Contains(lookups, d.PaymentID) {
					lookups = append(lookups, d.PaymentID)
				}
			} else {
				run.Listed++
			}
		}
		// The one door to the outbox: lookups settle, this run does not.
		n, err := r.flow.LookUpForBooks(ctx, tx, lookups)
		if err != nil {
			return err
		}
		run.Lookups = n
		finished := r.now()
		if run.Resolved, err = r.store.ResolveBooksDifferences(ctx, tx, name, run.ID, from, until, finished); err != nil {
			return err
		}
		run.FinishedAt = &finished
		return r.store.FinishBooksRun(ctx, tx, run)
	})
	if err != nil {
		return run, fmt.Errorf("error recording books run: %w", err)
	}
	r.metrics.BooksRun(name, true, kinds, run.Persisting)
	return run, nil
}

// listBooks reads every page of a gateway's books for the window. Any page
// that is not a usable answer fails the listing.
func listBooks(ctx context.Context, lister BooksLister, from, until time.Time) ([]gateway.Transaction, int, error) {
	var (
		txs    []gateway.Transaction
		seen   = map[string]bool{}
		cursor string
	)
	for pages := 1; ; pages++ {
		if pages > booksMaxPages {
			return nil, pages - 1, fmt.Errorf("error listing books: more than %d pages", booksMaxPages)
		}
		page := lister.Transactions(ctx, gateway.TransactionQuery{From: from, Until: until, Cursor: cursor})
		if !page.OK() {
			return nil, pages, fmt.Errorf("error listing books (page %d): %s", pages, describePage(page))
		}
		for _, t := range page.Transactions {
			// A transaction booked while we paged may shift a page: one
			// seen twice is one transaction.
			if !seen[t.TransactionKey+"\x00"+string(t.Kind)] {
				seen[t.TransactionKey+"\x00"+string(t.Kind)] = true
				txs = append(txs, t)
			}
		}
		if page.Next == "" {
			return txs, pages, nil
		}
		if page.Next == cursor {
			return nil, pages, fmt.Errorf("error listing books: the gateway answered cursor %q with itself", cursor)
		}
		cursor = page.Next
	}
}

// describePage says why a page is not a usable answer.
func describePage(p gateway.TransactionPage) string {
	switch {
	case p.Err != nil:
		return p.Err.Error()
	case p.Code != "":
		return fmt.Sprintf("HTTP %d %s: %s", p.HTTPStatus, p.Code, p.Message)
	}
	return fmt.Sprintf("HTTP %d", p.HTTPStatus)
}

// booksCharged are the statuses in which our books hold a payment as
// charged.
var booksCharged = []payment.Status{payment.StatusConfirmed, payment.StatusPartiallyCanceled, payment.StatusCanceled}

// compare finds the differences between a gateway's transactions and our
// rows (docs/design.md, "Reconciliation"). It reads and never writes.
func (w *BooksWorker) compare(ctx context.Context, name string, txs []gateway.Transaction, from, until time.Time) ([]store.BooksDifference, int, error) {
	r := w.r
	byKey := map[string][]gateway.Transaction{}
	var keys []string
	for _, t := range txs {
		if _, ok := byKey[t.PaymentKey]; !ok {
			keys = append(keys, t.PaymentKey)
		}
		byKey[t.PaymentKey] = append(byKey[t.PaymentKey], t)
	}
	ours := map[string]store.BooksPayment{}
	for chunk := range slices.Chunk(keys, booksKeysPerRead) {
		got, err := r.store.BooksPayments(ctx, r.pool, name, chunk)
		if err != nil {
			return nil, 0, err
		}
		for k, p := range got {
			ours[k] = p
		}
	}
	var (
		found   []store.BooksDifference
		matched int
	)
	for _, key := range keys {
		p, ok := ours[key]
		f, m := comparePayment(name, byKey[key], p, ok, from, until.Add(-r.booksLag))
		found, matched = append(found, f...), matched+m
	}
	// Ours charged in the window that the gateway's books do not show. A
	// charge younger than the lag may not be listed yet; one created
	// before the window is not listed by a gateway that lists by creation.
	charged, err := r.store.BooksChargedPayments(ctx, r.pool, name, from, until.Add(-r.booksLag), from)
	if err != nil {
		return nil, 0, err
	}
	for _, c := range charged {
		if hasApproval(byKey[c.PaymentKey]) || !slices.Contains(booksCharged, c.Status) {
			continue
		}
		found = append(found, store.BooksDifference{
			Gateway: name, Kind: store.BooksMissingAtGateway, PaymentKey: c.PaymentKey, Subject: c.PaymentKey,
			PaymentID: c.ID, OccurredAt: c.ApprovedAt, Lookup: true,
			Ours: fmt.Sprintf("%s, approved %d at %s", c.Status, c.ApprovedAmount, c.ApprovedAt.UTC().Format(time.RFC3339)),
		})
	}
	return found, matched, nil
}

func hasApproval(txs []gateway.Transaction) bool {
	return slices.ContainsFunc(txs, func(t gateway.Transaction) bool { return t.Kind == gateway.TransactionApproval })
}

// comparePayment compares one payment's transactions with our row (ok is
// false when we have none) and returns the differences and the number of
// transactions that agreed. A transaction after settled (within the lag) is
// not compared yet: our relay may still be hearing of it (a confirm in
// flight, a webhook on its way); the next run's window covers it.
func comparePayment(name string, txs []gateway.Transaction, p store.BooksPayment, ok bool, from, settled time.Time) ([]store.BooksDifference, int) {
	at := func(t gateway.Transaction) time.Time {
		if t.At.IsZero() {
			return from // inside the window, so a later run can resolve it
		}
		return t.At
	}
	var money []gateway.Transaction
	matched := 0
	for _, t := range txs {
		if t.Kind == gateway.TransactionOther {
			matched++ // moved no money: nothing to compare
			continue
		}
		if t.At.After(settled) {
			continue
		}
		money = append(money, t)
	}
	if len(money) == 0 {
		return nil, matched
	}
	if !ok {
		// Money moved for a payment we never heard of: no row to look
		// up, so it goes to an operator with the gateway's record.
		record, _ := json.Marshal(money)
		return []store.BooksDifference{{
			Gateway: name, Kind: store.BooksUnknownPayment, PaymentKey: money[0].PaymentKey, Subject: money[0].PaymentKey,
			OccurredAt: at(money[0]), GatewayRecord: record,
		}}, matched
	}
	if p.Status == payment.StatusConfirming || p.Status == payment.StatusCanceling {
		// A job is at it; the reconciler asks the gateway if it stays.
		return nil, matched
	}
	ours := fmt.Sprintf("%s, approved %d, balance %d, canceled %d", p.Status, p.ApprovedAmount, p.BalanceAmount, p.CanceledAmount)
	diff := func(kind string, t gateway.Transaction) store.BooksDifference {
		record, _ := json.Marshal([]gateway.Transaction{t})
		return store.BooksDifference{
			Gateway: name, Kind: kind, PaymentKey: p.PaymentKey, Subject: t.TransactionKey, PaymentID: p.ID,
			OccurredAt: at(t), GatewayRecord: record, Ours: ours, Lookup: true,
		}
	}
	var found []store.BooksDifference
	// Our refunds not booked under a transaction the gateway lists here,
	// and what lookups adopted from the gateway without a cancel of ours
	// (our refunded total less our cancels'): what explains the
	// gateway's refunds we cannot match by key.
	byKey := map[string]bool{}
	var unkeyed []int64
	var ourCancels int64
	for _, rf := range p.Refunds {
		ourCancels += rf.Amount
		if rf.TransactionKey != "" {
			byKey[rf.TransactionKey] = true
		} else {
			unkeyed = append(unkeyed, rf.Amount)
		}
	}
	adopted := max(p.CanceledAmount-ourCancels, 0)
	for _, t := range money {
		switch t.Kind {
		case gateway.TransactionApproval:
			switch {
			case !slices.Contains(booksCharged, p.Status):
				found = append(found, diff(store.BooksApprovalMissing, t))
			case p.ApprovedAmount != t.Amount:
				found = append(found, diff(store.BooksAmountDiffers, t))
			default:
				matched++
			}
		case gateway.TransactionCancel:
			switch i := slices.Index(unkeyed, t.Amount); {
			case byKey[t.TransactionKey]:
				matched++
			case i >= 0:
				unkeyed = slices.Delete(unkeyed, i, i+1)
				matched++
			case adopted >= t.Amount:
				adopted -= t.Amount
				matched++
			default:
				found = append(found, diff(store.BooksRefundMissing, t))
			}
		}
	}
	return found, matched
}

// BooksPeriodicJob is the reconciliation, every interval and once at start,
// on the elected leader only (River runs periodic jobs there), so several
// relays do not reconcile at once.
func BooksPeriodicJob(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return BooksArgs{}, nil },
		&river.PeriodicJobOpts{ID: BooksArgs{}.Kind(), RunOnStart: true})
}
