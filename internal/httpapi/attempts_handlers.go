package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Bounds of GET /v1/payments/{id}/attempts.
const (
	defaultAttemptsLimit = 50
	maxAttemptsLimit     = 200
)

// attemptListResponse is a page of a payment's gateway calls.
type attemptListResponse struct {
	// Attempts are oldest first, as in a payment's answer.
	Attempts []attemptResponse `json:"attempts"`
	// AttemptCount is how many attempts the payment has in all.
	AttemptCount int `json:"attemptCount"`
	// NextBefore, when there are older attempts than this page's, is the
	// before= that reads the page before it; null at the oldest.
	NextBefore *int64 `json:"nextBefore"`
}

// listAttempts answers GET /v1/payments/{id}/attempts: a payment's gateway
// calls a page at a time, from the newest back (?before= an attempt id,
// ?limit= at most 200). A payment's own answer carries only its newest
// attempts (store.HistoryAttempts) and their count; this reads the rest.
func (s *Server) listAttempts(c echo.Context) error {
	q := c.QueryParams()
	limit := defaultAttemptsLimit
	if v, err := singleQueryValue(q, "limit"); err != nil {
		return err
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAttemptsLimit {
			return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"limit must be an integer from 1 to %d, not %s", maxAttemptsLimit, quote(v))
		}
		limit = n
	}
	var before int64
	if v, err := singleQueryValue(q, "before"); err != nil {
		return err
	} else if v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"before must be an attempt id (a positive integer), not %s", quote(v))
		}
		before = n
	}
	var out attemptListResponse
	p, err := s.readPayment(c.Request().Context(), func(ctx context.Context, tx pgx.Tx) (payment.Payment, error) {
		// A payment the key cannot reach (another owner's) is 404, as
		// its own read is (docs/design.md, "Owners").
		p, err := s.store.ReachablePayment(ctx, tx, reachOf(c), c.Param("id"))
		if err != nil {
			return p, err
		}
		// One more than asked for: whether it comes says whether there is
		// a page before this one.
		page, err := s.store.AttemptsPage(ctx, tx, p.ID, before, limit+1)
		if err != nil {
			return p, err
		}
		if len(page) > limit {
			page = page[1:]
			out.NextBefore = &page[0].ID
		}
		out.Attempts = make([]attemptResponse, 0, len(page))
		for _, a := range page {
			out.Attempts = append(out.Attempts, toAttemptResponse(a))
		}
		out.AttemptCount, err = s.store.AttemptCount(ctx, tx, p.ID)
		return p, err
	})
	if err != nil {
		return fmt.Errorf("error listing attempts: %w", err)
	}
	setPaymentID(c, p.ID)
	return c.JSON(http.StatusOK, out)
}
