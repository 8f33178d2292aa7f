package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// opsRoutes registers the operator actions and the audit trail. Each action
// is one transaction that writes its audit row with its effect; none of them
// sets a status from the request.
func (s *Server) opsRoutes(e *echo.Echo) {
	ops := s.scoped(scopesOps)
	e.POST("/v1/ops/payments/:id/lookup", s.opsAction(payment.ActionLookup), ops)
	e.POST("/v1/ops/payments/:id/retry", s.opsAction(payment.ActionRetry), ops)
	e.POST("/v1/ops/payments/:id/resend-cancel", s.opsResendCancel, ops)
	e.POST("/v1/ops/payments/:id/settle-cancel", s.opsSettleCancel, ops)
	e.POST("/v1/ops/payments/:id/refund-account", s.opsRefundAccount, ops)
	e.POST("/v1/ops/payments/:id/resolve", s.opsAction(payment.ActionResolve), ops)
	e.POST("/v1/ops/payments/:id/acknowledge", s.opsAction(payment.ActionAcknowledge), ops)
	e.POST("/v1/ops/jobs/:id/retry", s.opsRetryJob, ops)
	e.GET("/v1/ops/payments/:id/actions", s.opsListActions, s.scoped(scopesAudit))
	e.GET("/v1/ops/books", s.opsBooks, s.scoped(scopesAudit))
}

// opsActionRequest is the body of every operator action but resend-cancel.
type opsActionRequest struct {
	Reason string `json:"reason"`
}

// resendCancelRequest is the body of POST /v1/ops/payments/:id/resend-cancel;
// without cancelId the payment's newest refused cancel is sent again.
type resendCancelRequest struct {
	Reason   string `json:"reason"`
	CancelID string `json:"cancelId"`
}

// refundAccountOpsRequest is the body of POST
// /v1/ops/payments/:id/refund-account: the customer's refund account for a
// refund of deposited virtual-account money that waits for one; without
// cancelId, the payment's newest held or refused cancel.
type refundAccountOpsRequest struct {
	Reason               string                `json:"reason"`
	CancelID             string                `json:"cancelId"`
	RefundReceiveAccount *refundAccountRequest `json:"refundReceiveAccount"`
}

// settleCancelRequest is the body of POST
// /v1/ops/payments/:id/settle-cancel: a person's decision (done, resend,
// abandon) on a cancel in unknown; without cancelId, the payment's cancel in
// unknown.
type settleCancelRequest struct {
	Reason   string `json:"reason"`
	CancelID string `json:"cancelId"`
	Decision string `json:"decision"`
}

// operatorActionResponse is one audited operator action.
type operatorActionResponse struct {
	ID           int64  `json:"id"`
	PaymentID    string `json:"paymentId,omitempty"`
	CancelID     string `json:"cancelId,omitempty"`
	APIKeyID     string `json:"apiKeyId"`
	APIKeyName   string `json:"apiKeyName"`
	Action       string `json:"action"`
	Reason       string `json:"reason"`
	StatusBefore string `json:"statusBefore"`
	StatusAfter  string `json:"statusAfter"`
	JobID        *int64 `json:"jobId"`
	Detail       string `json:"detail"`
	// Outcome is what the relay's lookup found, for lookup and resolve;
	// null until it ran.
	Outcome       *string    `json:"outcome"`
	OutcomeStatus *string    `json:"outcomeStatus"`
	CompletedAt   *time.Time `json:"completedAt"`
	CreatedAt     time.Time  `json:"createdAt"`
}

// operatorActionListResponse is a payment's audit trail, oldest first.
type operatorActionListResponse struct {
	Actions []operatorActionResponse `json:"actions"`
}

func toOperatorActionResponse(a payment.OperatorAction) operatorActionResponse {
	r := operatorActionResponse{
		ID: a.ID, PaymentID: a.PaymentID, CancelID: a.CancelID, APIKeyID: a.KeyID, APIKeyName: a.KeyName,
		Action: string(a.Action), Reason: a.Reason, StatusBefore: string(a.StatusBefore), StatusAfter: string(a.StatusAfter),
		Detail: a.Detail, CompletedAt: utcPtr(a.CompletedAt), CreatedAt: a.CreatedAt.UTC(),
	}
	if a.JobID != 0 {
		id := a.JobID
		r.JobID = &id
	}
	if a.CompletedAt != nil {
		outcome, status := a.Outcome, string(a.OutcomeStatus)
		r.Outcome, r.OutcomeStatus = &outcome, &status
	}
	return r
}

// operatorOf is the authenticated client as payflow's Operator.
func operatorOf(c echo.Context) payflow.Operator {
	cl, _ := clientOf(c)
	return payflow.Operator{KeyID: cl.keyID, KeyName: cl.name}
}

// runAction runs one payment action in its own transaction and counts it
// once committed. The console takes the same actions through the same
// payflow.Flow.Act.
func (s *Server) runAction(ctx context.Context, op payflow.Operator, action payment.Action, paymentID, cancelID, reason string) (payment.OperatorAction, error) {
	var a payment.OperatorAction
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		a, err = s.flow.Act(ctx, tx, op, action, paymentID, cancelID, reason)
		return err
	})
	if err != nil {
		return a, err
	}
	s.metrics.OperatorAction(action)
	return a, nil
}

// actionStatus is the HTTP status of an action's answer: 202 for the ones
// that leave work in the outbox, 200 for acknowledge, which is done.
func actionStatus(a payment.Action) int {
	if a == payment.ActionAcknowledge {
		return http.StatusOK
	}
	return http.StatusAccepted
}

// opsAction answers POST /v1/ops/payments/:id/{lookup,retry,resolve,acknowledge}.
func (s *Server) opsAction(action payment.Action) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req opsActionRequest
		if err := s.readJSON(c, &req); err != nil {
			return err
		}
		if err := payment.ValidateReason(req.Reason); err != nil {
			return err
		}
		setPaymentID(c, c.Param("id"))
		a, err := s.runAction(c.Request().Context(), operatorOf(c), action, c.Param("id"), "", req.Reason)
		if err != nil {
			return fmt.Errorf("error taking operator action %s: %w", action, err)
		}
		return c.JSON(actionStatus(action), toOperatorActionResponse(a))
	}
}

// opsSettleCancel answers POST /v1/ops/payments/:id/settle-cancel: the
// decision is recorded and a lookup carries it out against the gateway's
// record (202; the audit row's outcome says what it did).
func (s *Server) opsSettleCancel(c echo.Context) error {
	var req settleCancelRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	if err := payment.ValidateReason(req.Reason); err != nil {
		return err
	}
	d := payment.CancelDecision(req.Decision)
	if err := payment.ValidateCancelDecision(d); err != nil {
		return err
	}
	setPaymentID(c, c.Param("id"))
	ctx := c.Request().Context()
	var a payment.OperatorAction
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		a, err = s.flow.SettleCancel(ctx, tx, operatorOf(c), c.Param("id"), req.CancelID, d, req.Reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("error settling cancel: %w", err)
	}
	s.metrics.OperatorAction(payment.ActionSettleCancel)
	return c.JSON(http.StatusAccepted, toOperatorActionResponse(a))
}

// opsRefundAccount answers POST /v1/ops/payments/:id/refund-account: the
// refund goes through the outbox to the account named (202). The account
// is checked before anything is written, and never logged or echoed: the
// audit row shows the bank and the last four digits.
func (s *Server) opsRefundAccount(c echo.Context) error {
	var req refundAccountOpsRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	if err := payment.ValidateReason(req.Reason); err != nil {
		return err
	}
	if req.RefundReceiveAccount == nil {
		return payment.Errorf(payment.KindInvalid, payment.CodeRefundAccountRequired,
			"refundReceiveAccount {bank, accountNumber, holderName} is required: the customer's account to send the money back to")
	}
	r := req.RefundReceiveAccount
	acct := payment.RefundAccount{Bank: r.Bank, AccountNumber: r.AccountNumber, HolderName: r.HolderName}
	setPaymentID(c, c.Param("id"))
	ctx := c.Request().Context()
	var a payment.OperatorAction
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		a, err = s.flow.RefundAccount(ctx, tx, operatorOf(c), c.Param("id"), req.CancelID, req.Reason, acct)
		return err
	})
	if err != nil {
		return fmt.Errorf("error sending the refund to the account given: %w", err)
	}
	s.metrics.OperatorAction(payment.ActionRefundAccount)
	return c.JSON(http.StatusAccepted, toOperatorActionResponse(a))
}

// opsResendCancel answers POST /v1/ops/payments/:id/resend-cancel.
func (s *Server) opsResendCancel(c echo.Context) error {
	var req resendCancelRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	if err := payment.ValidateReason(req.Reason); err != nil {
		return err
	}
	setPaymentID(c, c.Param("id"))
	a, err := s.runAction(c.Request().Context(), operatorOf(c), payment.ActionResendCancel, c.Param("id"), req.CancelID, req.Reason)
	if err != nil {
		return fmt.Errorf("error resending cancel: %w", err)
	}
	return c.JSON(http.StatusAccepted, toOperatorActionResponse(a))
}

// retryJob runs one outbox job again in its own transaction and counts it.
func (s *Server) retryJob(ctx context.Context, op payflow.Operator, jobID int64, reason string) (payment.OperatorAction, error) {
	var a payment.OperatorAction
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		a, err = s.flow.RetryJob(ctx, tx, op, jobID, reason)
		return err
	})
	if err != nil {
		return a, err
	}
	s.metrics.OperatorAction(payment.ActionRetryJob)
	return a, nil
}

// opsRetryJob answers POST /v1/ops/jobs/:id/retry.
func (s *Server) opsRetryJob(c echo.Context) error {
	var req opsActionRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	if err := payment.ValidateReason(req.Reason); err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return payment.Errorf(payment.KindNotFound, payment.CodeJobNotFound, "no outbox job has the id %s", quote(c.Param("id")))
	}
	a, err := s.retryJob(c.Request().Context(), operatorOf(c), id, req.Reason)
	if err != nil {
		return fmt.Errorf("error retrying job: %w", err)
	}
	if a.PaymentID != "" {
		setPaymentID(c, a.PaymentID)
	}
	return c.JSON(http.StatusAccepted, toOperatorActionResponse(a))
}

// opsListActions answers GET /v1/ops/payments/:id/actions: the payment's
// audit trail, oldest first.
func (s *Server) opsListActions(c echo.Context) error {
	ctx := c.Request().Context()
	var actions []payment.OperatorAction
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		p, err := s.store.Payment(ctx, tx, c.Param("id"))
		if err != nil {
			return err
		}
		setPaymentID(c, p.ID)
		actions, err = s.store.OperatorActions(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("error listing operator actions: %w", err)
	}
	out := operatorActionListResponse{Actions: make([]operatorActionResponse, len(actions))}
	for i, a := range actions {
		out.Actions[i] = toOperatorActionResponse(a)
	}
	return c.JSON(http.StatusOK, out)
}
