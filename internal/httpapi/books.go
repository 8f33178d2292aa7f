package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/store"
)

// The reconciliation (대사) report, for operators: the recent runs against
// each gateway's books and the differences no run has resolved
// (docs/design.md, "Reconciliation"). It only reads; the relay's books job
// writes it, and lookups, never this, settle payments.

const (
	// booksRunsShown and booksDifferencesShown bound the report: two
	// gateways a day for a month, and a page an operator can work through.
	booksRunsShown        = 60
	booksDifferencesShown = 500
)

// booksReportResponse is GET /v1/ops/books.
type booksReportResponse struct {
	Runs        []booksRunResponse        `json:"runs"`
	Differences []booksDifferenceResponse `json:"differences"`
}

// booksRunResponse is one reconciliation run.
type booksRunResponse struct {
	ID           int64      `json:"id"`
	Gateway      string     `json:"gateway"`
	WindowFrom   time.Time  `json:"windowFrom"`
	WindowUntil  time.Time  `json:"windowUntil"`
	StartedAt    time.Time  `json:"startedAt"`
	FinishedAt   *time.Time `json:"finishedAt"`
	Pages        int        `json:"pages"`
	Transactions int        `json:"transactions"`
	Matched      int        `json:"matched"`
	Differences  int        `json:"differences"`
	Persisting   int        `json:"persisting"`
	Lookups      int        `json:"lookups"`
	Listed       int        `json:"listed"`
	Resolved     int        `json:"resolved"`
	Error        string     `json:"error"`
}

// booksDifferenceResponse is one open difference.
type booksDifferenceResponse struct {
	ID         int64   `json:"id"`
	Gateway    string  `json:"gateway"`
	Kind       string  `json:"kind"`
	PaymentKey string  `json:"paymentKey"`
	Subject    string  `json:"subject"`
	PaymentID  *string `json:"paymentId"`
	// GatewayRecord is the gateway's transactions the difference is about.
	GatewayRecord []booksTransactionResponse `json:"gatewayRecord"`
	Ours          string                     `json:"ours"`
	Lookup        bool                       `json:"lookup"`
	Runs          int                        `json:"runs"`
	FirstRunID    int64                      `json:"firstRunId"`
	LastRunID     int64                      `json:"lastRunId"`
	OccurredAt    time.Time                  `json:"occurredAt"`
	CreatedAt     time.Time                  `json:"createdAt"`
}

// booksTransactionResponse is one gateway transaction as reconciliation
// recorded it.
type booksTransactionResponse struct {
	PaymentKey     string    `json:"paymentKey"`
	OrderID        string    `json:"orderId"`
	TransactionKey string    `json:"transactionKey"`
	Kind           string    `json:"kind"`
	Status         string    `json:"status"`
	Method         string    `json:"method"`
	Currency       string    `json:"currency"`
	Amount         int64     `json:"amount"`
	At             time.Time `json:"at"`
}

func toBooksRunResponse(r store.BooksRun) booksRunResponse {
	return booksRunResponse{
		ID: r.ID, Gateway: r.Gateway, WindowFrom: r.WindowFrom.UTC(), WindowUntil: r.WindowUntil.UTC(),
		StartedAt: r.StartedAt.UTC(), FinishedAt: utcPtr(r.FinishedAt), Pages: r.Pages, Transactions: r.Transactions,
		Matched: r.Matched, Differences: r.Differences, Persisting: r.Persisting, Lookups: r.Lookups,
		Listed: r.Listed, Resolved: r.Resolved, Error: r.Error,
	}
}

func toBooksDifferenceResponse(d store.BooksDifference) booksDifferenceResponse {
	out := booksDifferenceResponse{
		ID: d.ID, Gateway: d.Gateway, Kind: d.Kind, PaymentKey: d.PaymentKey, Subject: d.Subject,
		GatewayRecord: []booksTransactionResponse{}, Ours: d.Ours, Lookup: d.Lookup, Runs: d.Runs,
		FirstRunID: d.FirstRunID, LastRunID: d.LastRunID, OccurredAt: d.OccurredAt.UTC(), CreatedAt: d.CreatedAt.UTC(),
	}
	if d.PaymentID != "" {
		id := d.PaymentID
		out.PaymentID = &id
	}
	// Written by the relay as an array of transactions; anything else is
	// left out rather than passed on unread.
	var txs []booksTransactionResponse
	if json.Unmarshal(d.GatewayRecord, &txs) == nil && txs != nil {
		for i := range txs {
			txs[i].At = txs[i].At.UTC()
		}
		out.GatewayRecord = txs
	}
	return out
}

// readOnly runs read in one read-only snapshot, so a report's figures
// agree with each other.
func (s *Server) readOnly(ctx context.Context, read func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, read)
}

// readBooks reads the report in one snapshot.
func (s *Server) readBooks(c echo.Context) (booksReportResponse, error) {
	var out booksReportResponse
	err := s.readOnly(c.Request().Context(), func(tx pgx.Tx) error {
		runs, err := s.store.BooksRuns(c.Request().Context(), tx, booksRunsShown)
		if err != nil {
			return err
		}
		diffs, err := s.store.OpenBooksDifferences(c.Request().Context(), tx, booksDifferencesShown)
		if err != nil {
			return err
		}
		out.Runs = make([]booksRunResponse, len(runs))
		for i, r := range runs {
			out.Runs[i] = toBooksRunResponse(r)
		}
		out.Differences = make([]booksDifferenceResponse, len(diffs))
		for i, d := range diffs {
			out.Differences[i] = toBooksDifferenceResponse(d)
		}
		return nil
	})
	return out, err
}

// opsBooks is GET /v1/ops/books: the latest runs, newest first, and the
// open differences, newest first. Scope operator or readonly.
func (s *Server) opsBooks(c echo.Context) error {
	out, err := s.readBooks(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
