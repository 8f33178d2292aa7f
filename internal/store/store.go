// Package store is the only package that speaks SQL: it wraps the sqlc output
// and converts between database rows and the payment domain. Every method
// takes the DBTX to run on, so the handler or worker that owns a transaction
// passes it down and the store never opens one of its own.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// DBTX is a pool, a connection or a transaction.
type DBTX = dbsqlc.DBTX

// Store reads and writes payments, cancels and attempts.
type Store struct {
	q *dbsqlc.Queries
}

// New returns a Store.
func New() *Store {
	return &Store{q: dbsqlc.New()}
}

// Constraint names the store turns into domain errors.
const (
	constraintPaymentKey = "payments_payment_key_key"
	constraintOneCancel  = "payment_cancels_one_open_idx"
)

var errNotFound = payment.Errorf(payment.KindNotFound, payment.CodeNotFound, "payment not found")

// InsertPayment creates a payment in ready. When the order id is already
// taken it returns the existing payment and created=false, so the caller can
// tell a repeat from a conflict.
func (s *Store) InsertPayment(ctx context.Context, db DBTX, id string, in payment.Intent) (payment.Payment, bool, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("error parsing payment id: %w", err)
	}
	row, err := s.q.PaymentInsert(ctx, db, dbsqlc.PaymentInsertParams{
		ID: uid, OrderID: in.OrderID, OrderName: in.OrderName, Amount: in.Amount, Currency: in.Currency,
		Gateway: in.Gateway, PaymentKey: nullString(in.PaymentKeyAtCreate(id)), Owner: string(ownerOf(in)),
	})
	if isUniqueViolation(err, constraintPaymentKey) {
		// Another order's intent holds that gateway payment id: a payment at
		// the gateway can only ever be one order's.
		return payment.Payment{}, false, payment.Errorf(payment.KindConflict, payment.CodePaymentKeyConflict,
			"paymentKey %s is already bound to another payment", in.PaymentKey)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		// Whoever owns it: order ids are unique across owners, and the
		// caller answers another owner's without showing it (Intent.Same).
		existing, err := s.PaymentByOrderID(ctx, db, in.OrderID)
		if err != nil {
			return payment.Payment{}, false, err
		}
		return existing, false, nil
	}
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("error inserting payment: %w", err)
	}
	return toAppPayment(row), true, nil
}

// Payment returns a payment by id. An id that is not a UUID is simply not
// found: it came from a URL.
func (s *Store) Payment(ctx context.Context, db DBTX, id string) (payment.Payment, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Payment{}, errNotFound
	}
	row, err := s.q.PaymentGetByID(ctx, db, dbsqlc.PaymentGetByIDParams{ID: uid})
	return rowOrNotFound(row, err, "error getting payment")
}

// ReachablePayment is Payment for a caller of reach: another owner's
// payment is not found, exactly like one that does not exist.
func (s *Store) ReachablePayment(ctx context.Context, db DBTX, reach payment.Reach, id string) (payment.Payment, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Payment{}, errNotFound
	}
	row, err := s.q.PaymentGetByID(ctx, db, dbsqlc.PaymentGetByIDParams{ID: uid, Owner: ownerArg(reach)})
	return rowOrNotFound(row, err, "error getting payment")
}

// ownerArg is the owner filter of the scoped queries: NULL for every owner.
func ownerArg(reach payment.Reach) *string {
	o, one := reach.Owner()
	if !one {
		return nil
	}
	name := string(o)
	return &name
}

// ownerOf is the owner an intent is created for.
func ownerOf(in payment.Intent) payment.Owner {
	if in.Owner == "" {
		return payment.DefaultOwner
	}
	return in.Owner
}

// PaymentForUpdate returns a payment and locks its row until db's transaction
// ends. Every state change goes through it, so two writers never interleave.
// LockPayment is the same lock with more in its round trip (gateway
// answers to write first, the payment's cancels).
func (s *Store) PaymentForUpdate(ctx context.Context, db DBTX, id string) (payment.Payment, error) {
	p, _, err := s.lockPayment(ctx, db, payment.Everyone(), id, false, "", nil)
	return p, err
}

// PaymentByOrderID returns the payment for an order, whoever owns it.
func (s *Store) PaymentByOrderID(ctx context.Context, db DBTX, orderID string) (payment.Payment, error) {
	return s.ReachablePaymentByOrderID(ctx, db, payment.Everyone(), orderID)
}

// ReachablePaymentByOrderID is PaymentByOrderID for a caller of reach.
func (s *Store) ReachablePaymentByOrderID(ctx context.Context, db DBTX, reach payment.Reach, orderID string) (payment.Payment, error) {
	row, err := s.q.PaymentGetByOrderID(ctx, db, dbsqlc.PaymentGetByOrderIDParams{OrderID: orderID, Owner: ownerArg(reach)})
	return rowOrNotFound(row, err, "error getting payment by order id")
}

// PaymentByPaymentKey returns the payment the gateway knows by paymentKey.
func (s *Store) PaymentByPaymentKey(ctx context.Context, db DBTX, paymentKey string) (payment.Payment, error) {
	row, err := s.q.PaymentGetByPaymentKey(ctx, db, &paymentKey)
	return rowOrNotFound(row, err, "error getting payment by payment key")
}

func rowOrNotFound(row dbsqlc.Payment, err error, what string) (payment.Payment, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Payment{}, errNotFound
	}
	if err != nil {
		return payment.Payment{}, fmt.Errorf("%s: %w", what, err)
	}
	return toAppPayment(row), nil
}

// SavePayment writes back a payment the caller locked with PaymentForUpdate,
// and refreshes p from the saved row. It refuses a status change the domain's
// transition table does not allow, and a save over a row whose status is no
// longer the one p was read with (both CodeStaleWrite): no change is ever
// silently overwritten. Use cases save through SavePaymentChange, which
// also returns the webhook endpoints to write deliveries for.
func (s *Store) SavePayment(ctx context.Context, db DBTX, p *payment.Payment) error {
	_, err := s.SavePaymentChange(ctx, db, p)
	return err
}

// SavePaymentChange is SavePayment that, when the save changes the status,
// also returns the ids of the enabled webhook endpoints that receive the
// new status's event (webhook.EventType), oldest first: read in the same
// statement as the save, so a status change costs one round trip. The
// caller writes a delivery for each in the same transaction.
func (s *Store) SavePaymentChange(ctx context.Context, db DBTX, p *payment.Payment) ([]string, error) {
	if err := p.CheckTransition(); err != nil {
		return nil, err
	}
	p.EndStaleAcknowledgement()
	p.ForgetSpentToken()
	uid, err := uuid.Parse(p.ID)
	if err != nil {
		return nil, fmt.Errorf("error parsing payment id: %w", err)
	}
	expected := p.StoredStatus
	if expected == "" {
		expected = p.Status
	}
	params := dbsqlc.PaymentSaveParams{
		ID:                    uid,
		ExpectedStatus:        string(expected),
		Status:                string(p.Status),
		PaymentKey:            nullString(p.PaymentKey),
		ConfirmKeyGeneration:  int32(p.ConfirmKeyGeneration),
		ConfirmIdempotencyKey: nullString(p.ConfirmIdempotencyKey),
		PaymentToken:          nullString(p.PaymentToken.Reveal()),
		ApprovedAmount:        p.ApprovedAmount,
		BalanceAmount:         p.BalanceAmount,
		CanceledAmount:        p.CanceledAmount,
		Method:                p.Method,
		ApprovedAt:            p.ApprovedAt,
		FailureCode:           p.FailureCode,
		FailureMessage:        p.FailureMessage,
		ConfirmRequestedAt:    p.ConfirmRequestedAt,
		AcknowledgedAt:        p.AcknowledgedAt,
		NextRecheckAt:         p.NextRecheckAt,
		RecheckUntil:          p.RecheckUntil,
		DepositSecret:         nullString(p.DepositSecret.Reveal()),
		DepositNextLookAt:     p.DepositNextLookAt,
		EventType:             webhook.EventType(p.Status),
	}
	if va := p.VirtualAccount; va != nil {
		params.VaBank, params.VaAccountNumber, params.VaHolder = nullString(va.Bank), nullString(va.AccountNumber), nullString(va.Holder)
		if !va.DueDate.IsZero() {
			due := va.DueDate
			params.VaDueAt = &due
		}
	}
	if p.Status != payment.StatusWaitingForDeposit {
		// Only a waiting payment is swept for its deposit.
		params.DepositNextLookAt = nil
	}
	row, err := s.q.PaymentSave(ctx, db, params)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, payment.Errorf(payment.KindInternal, payment.CodeStaleWrite,
			"payment %s is no longer %s: its row changed since it was read", p.ID, expected)
	}
	if err != nil {
		if isUniqueViolation(err, constraintPaymentKey) {
			return nil, payment.Errorf(payment.KindConflict, payment.CodePaymentKeyConflict,
				"paymentKey is already used by another payment")
		}
		return nil, fmt.Errorf("error saving payment: %w", err)
	}
	saved := toAppPayment(savedRow(row))
	saved.Cancels, saved.Attempts, saved.AttemptCount = p.Cancels, p.Attempts, p.AttemptCount
	*p = saved
	var endpoints []string
	for _, id := range row.WebhookEndpointIds {
		endpoints = append(endpoints, id.String())
	}
	return endpoints, nil
}

// savedRow is the payment part of PaymentSave's row.
func savedRow(r dbsqlc.PaymentSaveRow) dbsqlc.Payment {
	return dbsqlc.Payment{
		ID: r.ID, OrderID: r.OrderID, OrderName: r.OrderName, Amount: r.Amount, Currency: r.Currency,
		Status: r.Status, PaymentKey: r.PaymentKey, ConfirmKeyGeneration: r.ConfirmKeyGeneration,
		ConfirmIdempotencyKey: r.ConfirmIdempotencyKey, ApprovedAmount: r.ApprovedAmount,
		BalanceAmount: r.BalanceAmount, CanceledAmount: r.CanceledAmount, Method: r.Method,
		ApprovedAt: r.ApprovedAt, FailureCode: r.FailureCode, FailureMessage: r.FailureMessage,
		ConfirmRequestedAt: r.ConfirmRequestedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		AcknowledgedAt: r.AcknowledgedAt, Version: r.Version, Gateway: r.Gateway, PaymentToken: r.PaymentToken,
		NextRecheckAt: r.NextRecheckAt, RecheckUntil: r.RecheckUntil, LookupWantedAt: r.LookupWantedAt,
		VaBank: r.VaBank, VaAccountNumber: r.VaAccountNumber, VaHolder: r.VaHolder, VaDueAt: r.VaDueAt,
		DepositSecret: r.DepositSecret, DepositNextLookAt: r.DepositNextLookAt,
	}
}

// KeyAttempt is one request sent under an Idempotency-Key, as the key rule
// reads it (gateway.KeyAnswer without the gateway's own reading of the
// code).
type KeyAttempt struct {
	SentAt     time.Time
	Finished   bool
	HTTPStatus int
	Code       string
}

func keyAttempts(sent []time.Time, finished []bool, status []int32, code []string) ([]KeyAttempt, error) {
	n := len(sent)
	if len(finished) != n || len(status) != n || len(code) != n {
		return nil, fmt.Errorf("error reading key attempts: arrays of %d, %d, %d, %d", n, len(finished), len(status), len(code))
	}
	out := make([]KeyAttempt, n)
	for i := range n {
		out[i] = KeyAttempt{SentAt: sent[i], Finished: finished[i], HTTPStatus: int(status[i]), Code: code[i]}
	}
	return out, nil
}

// PaymentForConfirm returns a payment and the requests sent under its
// current confirm Idempotency-Key, oldest first: what a confirm job reads
// before its call, in one round trip.
func (s *Store) PaymentForConfirm(ctx context.Context, db DBTX, id string) (payment.Payment, []KeyAttempt, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Payment{}, nil, errNotFound
	}
	row, err := s.q.PaymentGetWithConfirmKeyAnswers(ctx, db, uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Payment{}, nil, errNotFound
	}
	if err != nil {
		return payment.Payment{}, nil, fmt.Errorf("error getting payment: %w", err)
	}
	ka, err := keyAttempts(row.KeyRequestedAt, row.KeyFinished, row.KeyHttpStatus, row.KeyGatewayCode)
	return toAppPayment(row.Payment), ka, err
}

// CancelForCall returns a cancel request, its payment and the requests sent
// under the cancel's current Idempotency-Key, oldest first: what a cancel job
// reads before its call, in one round trip.
func (s *Store) CancelForCall(ctx context.Context, db DBTX, id string) (payment.Cancel, payment.Payment, []KeyAttempt, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Cancel{}, payment.Payment{}, nil, fmt.Errorf("error parsing cancel id: %w", err)
	}
	row, err := s.q.CancelGetWithPaymentAndKeyAnswers(ctx, db, uid)
	if err != nil {
		return payment.Cancel{}, payment.Payment{}, nil, fmt.Errorf("error getting cancel: %w", err)
	}
	ka, err := keyAttempts(row.KeyRequestedAt, row.KeyFinished, row.KeyHttpStatus, row.KeyGatewayCode)
	return toAppCancel(row.PaymentCancel), toAppPayment(row.Payment), ka, err
}

// OrphanConfirms returns payments in confirming, untouched since before,
// that have no live confirm job, oldest first.
func (s *Store) OrphanConfirms(ctx context.Context, db DBTX, before time.Time, limit int) ([]payment.Payment, error) {
	rows, err := s.q.PaymentListOrphanConfirms(ctx, db, dbsqlc.PaymentListOrphanConfirmsParams{
		UpdatedBefore: before, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("error listing orphan confirms: %w", err)
	}
	out := make([]payment.Payment, len(rows))
	for i, r := range rows {
		out[i] = toAppPayment(r)
	}
	return out, nil
}

// OrphanCancels returns cancels pending at the gateway, untouched since
// before, that have no live cancel job, oldest first.
func (s *Store) OrphanCancels(ctx context.Context, db DBTX, before time.Time, limit int) ([]payment.Cancel, error) {
	rows, err := s.q.CancelListOrphans(ctx, db, dbsqlc.CancelListOrphansParams{
		UpdatedBefore: before, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("error listing orphan cancels: %w", err)
	}
	out := make([]payment.Cancel, len(rows))
	for i, r := range rows {
		out[i] = toAppCancel(r)
	}
	return out, nil
}

// HasLiveJob reports whether an outbox job of kind whose args contain args
// (a JSON object) is still to run or running.
func (s *Store) HasLiveJob(ctx context.Context, db DBTX, kind string, args []byte) (bool, error) {
	live, err := s.q.PaymentHasLiveJob(ctx, db, dbsqlc.PaymentHasLiveJobParams{Kind: kind, Args: args})
	if err != nil {
		return false, fmt.Errorf("error looking for a live %s job: %w", kind, err)
	}
	return live, nil
}

// ListPayments returns payments in the given states not updated since before,
// oldest first; acknowledged ones only when includeAcknowledged.
func (s *Store) ListPayments(ctx context.Context, db DBTX, statuses []payment.Status, before time.Time, limit int, includeAcknowledged bool) ([]payment.Payment, error) {
	ss := make([]string, len(statuses))
	for i, st := range statuses {
		ss[i] = string(st)
	}
	rows, err := s.q.PaymentListByStatus(ctx, db, dbsqlc.PaymentListByStatusParams{
		Statuses: ss, UpdatedBefore: before, MaxRows: int32(limit), IncludeAcknowledged: includeAcknowledged,
	})
	if err != nil {
		return nil, fmt.Errorf("error listing payments: %w", err)
	}
	out := make([]payment.Payment, len(rows))
	for i, r := range rows {
		out[i] = toAppPayment(r)
	}
	return out, nil
}

// PaymentWithHistory returns a payment of reach with its cancels and
// attempts; a payment out of reach is not found.
func (s *Store) PaymentWithHistory(ctx context.Context, db DBTX, reach payment.Reach, id string) (payment.Payment, error) {
	p, err := s.ReachablePayment(ctx, db, reach, id)
	if err != nil {
		return p, err
	}
	return s.withHistory(ctx, db, p)
}

// PaymentByOrderIDWithHistory returns the payment for an order with its
// cancels and attempts, if it is within reach.
func (s *Store) PaymentByOrderIDWithHistory(ctx context.Context, db DBTX, reach payment.Reach, orderID string) (payment.Payment, error) {
	p, err := s.ReachablePaymentByOrderID(ctx, db, reach, orderID)
	if err != nil {
		return p, err
	}
	return s.withHistory(ctx, db, p)
}

func (s *Store) withHistory(ctx context.Context, db DBTX, p payment.Payment) (payment.Payment, error) {
	var err error
	if p.Cancels, err = s.Cancels(ctx, db, p.ID); err != nil {
		return p, err
	}
	if p.Attempts, err = s.AttemptsPage(ctx, db, p.ID, 0, HistoryAttempts); err != nil {
		return p, err
	}
	p.AttemptCount = len(p.Attempts)
	if p.AttemptCount == HistoryAttempts {
		if p.AttemptCount, err = s.AttemptCount(ctx, db, p.ID); err != nil {
			return p, err
		}
	}
	return p, nil
}

// HistoryAttempts is how many of a payment's attempts, the newest, come
// with its history (PaymentWithHistory): enough for every payment whose
// calls went as they should, bounded for one that a webhook flood or a
// long outage made us ask about again and again. The rest are kept (they
// are the audit trail) and read a page at a time with AttemptsPage.
const HistoryAttempts = 50

// MaxAttemptsPage bounds one page of AttemptsPage.
const MaxAttemptsPage = 500

// AttemptsPage returns the newest limit attempts of a payment whose id is
// below before (0: from the newest), oldest first, as the payment's
// history lists them. limit is at most MaxAttemptsPage.
func (s *Store) AttemptsPage(ctx context.Context, db DBTX, paymentID string, before int64, limit int) ([]payment.Attempt, error) {
	uid, err := uuid.Parse(paymentID)
	if err != nil {
		return nil, fmt.Errorf("error parsing payment id: %w", err)
	}
	if limit < 1 || limit > MaxAttemptsPage || before < 0 {
		return nil, fmt.Errorf("error listing attempts: a page of %d before %d is out of bounds", limit, before)
	}
	rows, err := s.q.AttemptPageByPayment(ctx, db, dbsqlc.AttemptPageByPaymentParams{PaymentID: uid, Before: before, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("error listing attempts: %w", err)
	}
	out := make([]payment.Attempt, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = toAppAttempt(r)
	}
	return out, nil
}

// AttemptCount returns how many attempts a payment has.
func (s *Store) AttemptCount(ctx context.Context, db DBTX, paymentID string) (int, error) {
	uid, err := uuid.Parse(paymentID)
	if err != nil {
		return 0, fmt.Errorf("error parsing payment id: %w", err)
	}
	n, err := s.q.AttemptCountByPayment(ctx, db, uid)
	if err != nil {
		return 0, fmt.Errorf("error counting attempts: %w", err)
	}
	return int(n), nil
}

// InsertCancel records a cancel request.
func (s *Store) InsertCancel(ctx context.Context, db DBTX, c payment.Cancel) (payment.Cancel, error) {
	id, err := uuid.Parse(c.ID)
	if err != nil {
		return payment.Cancel{}, fmt.Errorf("error parsing cancel id: %w", err)
	}
	pid, err := uuid.Parse(c.PaymentID)
	if err != nil {
		return payment.Cancel{}, fmt.Errorf("error parsing payment id: %w", err)
	}
	var amount *int64
	if c.Amount > 0 {
		amount = &c.Amount
	}
	params := dbsqlc.CancelInsertParams{
		ID: id, PaymentID: pid, Kind: string(c.Kind), Amount: amount, Reason: c.Reason,
		Status: string(c.Status), IdempotencyKey: c.IdempotencyKey,
		FailureCode: c.FailureCode, FailureMessage: c.FailureMessage,
	}
	if a := c.RefundAccount; a != nil {
		params.RefundBank, params.RefundAccountLast4 = nullString(a.Bank), nullString(a.Last4())
		params.RefundAccountNumber, params.RefundHolderName = nullString(a.AccountNumber), nullString(a.HolderName)
	}
	row, err := s.q.CancelInsert(ctx, db, params)
	if err != nil {
		if isUniqueViolation(err, constraintOneCancel) {
			return payment.Cancel{}, payment.Errorf(payment.KindConflict, payment.CodeCancelInProgress,
				"a cancel for this payment is already in progress")
		}
		return payment.Cancel{}, fmt.Errorf("error inserting cancel: %w", err)
	}
	if c.Status == payment.CancelVoid || c.CompletedAt != nil {
		// Void cancels are complete on arrival; one write path for both.
		stored := toAppCancel(row)
		stored.Status, stored.CompletedAt = c.Status, c.CompletedAt
		stored.FailureCode, stored.FailureMessage = c.FailureCode, c.FailureMessage
		if err := s.SaveCancel(ctx, db, &stored); err != nil {
			return payment.Cancel{}, err
		}
		return stored, nil
	}
	return toAppCancel(row), nil
}

// Cancel returns a cancel request.
func (s *Store) Cancel(ctx context.Context, db DBTX, id string) (payment.Cancel, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Cancel{}, fmt.Errorf("error parsing cancel id: %w", err)
	}
	row, err := s.q.CancelGetByID(ctx, db, uid)
	if err != nil {
		return payment.Cancel{}, fmt.Errorf("error getting cancel: %w", err)
	}
	return toAppCancel(row), nil
}

// CancelForUpdate returns a cancel request and locks its row.
func (s *Store) CancelForUpdate(ctx context.Context, db DBTX, id string) (payment.Cancel, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Cancel{}, fmt.Errorf("error parsing cancel id: %w", err)
	}
	row, err := s.q.CancelGetByIDForUpdate(ctx, db, uid)
	if err != nil {
		return payment.Cancel{}, fmt.Errorf("error locking cancel: %w", err)
	}
	return toAppCancel(row), nil
}

// Cancels returns a payment's cancel requests, oldest first.
func (s *Store) Cancels(ctx context.Context, db DBTX, paymentID string) ([]payment.Cancel, error) {
	uid, err := uuid.Parse(paymentID)
	if err != nil {
		return nil, fmt.Errorf("error parsing payment id: %w", err)
	}
	rows, err := s.q.CancelListByPayment(ctx, db, uid)
	if err != nil {
		return nil, fmt.Errorf("error listing cancels: %w", err)
	}
	out := make([]payment.Cancel, len(rows))
	for i, r := range rows {
		out[i] = toAppCancel(r)
	}
	return out, nil
}

// OpenCancels returns a payment's cancels that are waiting or pending.
func (s *Store) OpenCancels(ctx context.Context, db DBTX, paymentID string) ([]payment.Cancel, error) {
	all, err := s.Cancels(ctx, db, paymentID)
	if err != nil {
		return nil, err
	}
	var open []payment.Cancel
	for _, c := range all {
		if c.Status == payment.CancelWaiting || c.Status == payment.CancelPending {
			open = append(open, c)
		}
	}
	return open, nil
}

// SaveCancel writes back a cancel request's outcome and key, and refreshes c
// from the saved row; guarded like SavePayment.
func (s *Store) SaveCancel(ctx context.Context, db DBTX, c *payment.Cancel) error {
	if err := c.CheckTransition(); err != nil {
		return err
	}
	id, err := uuid.Parse(c.ID)
	if err != nil {
		return fmt.Errorf("error parsing cancel id: %w", err)
	}
	expected := c.StoredStatus
	if expected == "" {
		expected = c.Status
	}
	params := dbsqlc.CancelSaveParams{
		ID: id, ExpectedStatus: string(expected), Status: string(c.Status), IdempotencyKey: c.IdempotencyKey,
		CanceledAmount: c.CanceledAmount, TransactionKey: c.TransactionKey,
		FailureCode: c.FailureCode, FailureMessage: c.FailureMessage, CompletedAt: c.CompletedAt,
	}
	if a := c.RefundAccount; a != nil {
		// Named now (Payment.ResendFailedCancelTo), or the one the cancel
		// had: either way the one to send it to.
		params.RefundBank, params.RefundAccountLast4 = nullString(a.Bank), nullString(a.Last4())
		params.RefundAccountNumber, params.RefundHolderName = nullString(a.AccountNumber), nullString(a.HolderName)
	}
	row, err := s.q.CancelSave(ctx, db, params)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Errorf(payment.KindInternal, payment.CodeStaleWrite,
			"cancel %s is no longer %s: its row changed since it was read", c.ID, expected)
	}
	if err != nil {
		if isUniqueViolation(err, constraintOneCancel) {
			return payment.Errorf(payment.KindConflict, payment.CodeCancelInProgress,
				"a cancel for this payment is already in progress")
		}
		return fmt.Errorf("error saving cancel: %w", err)
	}
	*c = toAppCancel(row)
	return nil
}

// StartAttempt records that a gateway call is about to be made and returns
// the attempt's id. Callers commit it before calling the gateway.
func (s *Store) StartAttempt(ctx context.Context, db DBTX, a payment.Attempt) (int64, error) {
	pid, err := uuid.Parse(a.PaymentID)
	if err != nil {
		return 0, fmt.Errorf("error parsing payment id: %w", err)
	}
	var cancelID *uuid.UUID
	if a.CancelID != "" {
		cid, err := uuid.Parse(a.CancelID)
		if err != nil {
			return 0, fmt.Errorf("error parsing cancel id: %w", err)
		}
		cancelID = &cid
	}
	jobAttempt := int32(a.JobAttempt)
	id, err := s.q.AttemptStart(ctx, db, dbsqlc.AttemptStartParams{
		PaymentID: pid, CancelID: cancelID, Operation: string(a.Operation), IdempotencyKey: a.IdempotencyKey,
		JobID: nullInt64(a.JobID), JobAttempt: &jobAttempt, RequestedAt: a.RequestedAt,
		RefundableAmount: nullInt64(a.RefundableAmount),
	})
	if err != nil {
		return 0, fmt.Errorf("error starting attempt: %w", err)
	}
	return id, nil
}

// FinishAttempt records a gateway call's answer.
func (s *Store) FinishAttempt(ctx context.Context, db DBTX, a payment.Attempt) error {
	return s.FinishAttempts(ctx, db, a)
}

// AddAttemptNote appends a note to an attempt: what the relay concluded from
// it beyond its classification (a key change it justified, say).
func (s *Store) AddAttemptNote(ctx context.Context, db DBTX, id int64, note string) error {
	if err := s.q.AttemptAddNote(ctx, db, dbsqlc.AttemptAddNoteParams{ID: id, Note: note}); err != nil {
		return fmt.Errorf("error adding attempt note: %w", err)
	}
	return nil
}

// Attempts returns a payment's gateway calls in the order they were made.
func (s *Store) Attempts(ctx context.Context, db DBTX, paymentID string) ([]payment.Attempt, error) {
	uid, err := uuid.Parse(paymentID)
	if err != nil {
		return nil, fmt.Errorf("error parsing payment id: %w", err)
	}
	rows, err := s.q.AttemptListByPayment(ctx, db, uid)
	if err != nil {
		return nil, fmt.Errorf("error listing attempts: %w", err)
	}
	out := make([]payment.Attempt, len(rows))
	for i, r := range rows {
		out[i] = toAppAttempt(r)
	}
	return out, nil
}

func toAppPayment(r dbsqlc.Payment) payment.Payment {
	p := payment.Payment{
		ID:                    r.ID.String(),
		Owner:                 payment.Owner(r.Owner),
		OrderID:               r.OrderID,
		OrderName:             r.OrderName,
		Amount:                r.Amount,
		Currency:              r.Currency,
		Gateway:               r.Gateway,
		Status:                payment.Status(r.Status),
		PaymentKey:            deref(r.PaymentKey),
		ConfirmIdempotencyKey: deref(r.ConfirmIdempotencyKey),
		ConfirmKeyGeneration:  int(r.ConfirmKeyGeneration),
		PaymentToken:          payment.Token(deref(r.PaymentToken)),
		ApprovedAmount:        r.ApprovedAmount,
		BalanceAmount:         r.BalanceAmount,
		CanceledAmount:        r.CanceledAmount,
		Method:                r.Method,
		ApprovedAt:            r.ApprovedAt,
		FailureCode:           r.FailureCode,
		FailureMessage:        r.FailureMessage,
		CreatedAt:             r.CreatedAt,
		UpdatedAt:             r.UpdatedAt,
		ConfirmRequestedAt:    r.ConfirmRequestedAt,
		Version:               r.Version,
		AcknowledgedAt:        r.AcknowledgedAt,
		NextRecheckAt:         r.NextRecheckAt,
		RecheckUntil:          r.RecheckUntil,
		LookupWantedAt:        r.LookupWantedAt,
		DepositSecret:         payment.Token(deref(r.DepositSecret)),
		DepositNextLookAt:     r.DepositNextLookAt,
		StoredStatus:          payment.Status(r.Status),
	}
	if r.VaAccountNumber != nil {
		p.VirtualAccount = &payment.VirtualAccount{
			Bank: deref(r.VaBank), AccountNumber: *r.VaAccountNumber, Holder: deref(r.VaHolder),
		}
		if r.VaDueAt != nil {
			p.VirtualAccount.DueDate = *r.VaDueAt
		}
	}
	return p
}

func toAppCancel(r dbsqlc.PaymentCancel) payment.Cancel {
	c := payment.Cancel{
		ID:             r.ID.String(),
		PaymentID:      r.PaymentID.String(),
		Kind:           payment.CancelKind(r.Kind),
		Reason:         r.Reason,
		Status:         payment.CancelStatus(r.Status),
		IdempotencyKey: r.IdempotencyKey,
		CanceledAmount: r.CanceledAmount,
		TransactionKey: r.TransactionKey,
		FailureCode:    r.FailureCode,
		FailureMessage: r.FailureMessage,
		CreatedAt:      r.CreatedAt,
		CompletedAt:    r.CompletedAt,
		StoredStatus:   payment.CancelStatus(r.Status),
		RefundBank:     deref(r.RefundBank),
		RefundLast4:    deref(r.RefundAccountLast4),
	}
	if r.Amount != nil {
		c.Amount = *r.Amount
	}
	if r.RefundAccountNumber != nil {
		c.RefundAccount = &payment.RefundAccount{
			Bank: c.RefundBank, AccountNumber: *r.RefundAccountNumber, HolderName: deref(r.RefundHolderName),
		}
	}
	return c
}

func toAppAttempt(r dbsqlc.PaymentAttempt) payment.Attempt {
	a := payment.Attempt{
		ID:             r.ID,
		PaymentID:      r.PaymentID.String(),
		Operation:      payment.Operation(r.Operation),
		IdempotencyKey: r.IdempotencyKey,
		RequestedAt:    r.RequestedAt,
		FinishedAt:     r.FinishedAt,
		GatewayCode:    r.GatewayCode,
		GatewayMessage: r.GatewayMessage,
		Classification: deref(r.Classification),
		Error:          r.Error,
		Note:           r.Note,
	}
	if r.CancelID != nil {
		a.CancelID = r.CancelID.String()
	}
	if r.JobID != nil {
		a.JobID = *r.JobID
	}
	if r.JobAttempt != nil {
		a.JobAttempt = int(*r.JobAttempt)
	}
	if r.LatencyUs != nil {
		a.Latency = time.Duration(*r.LatencyUs) * time.Microsecond
	}
	if r.HttpStatus != nil {
		a.HTTPStatus = int(*r.HttpStatus)
	}
	if r.RefundableAmount != nil {
		a.RefundableAmount = *r.RefundableAmount
	}
	if len(r.GatewayRecord) > 0 {
		var g payment.GatewayRecord
		// Written by FinishAttempt from the same type; a row that does not
		// decode shows as no record rather than failing the read of a
		// payment's whole history.
		if json.Unmarshal(r.GatewayRecord, &g) == nil {
			a.Gateway = &g
		}
	}
	return a
}

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullInt64(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

// PaymentsLeft returns which of ids name payments whose status is none of
// statuses: the api's waiter polls it for the payments its requests wait on.
func (s *Store) PaymentsLeft(ctx context.Context, db DBTX, ids []string, statuses []payment.Status) ([]string, error) {
	uids := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		uid, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("error parsing payment id %q: %w", id, err)
		}
		uids = append(uids, uid)
	}
	names := make([]string, len(statuses))
	for i, st := range statuses {
		names[i] = string(st)
	}
	rows, err := s.q.PaymentsLeftStatuses(ctx, db, dbsqlc.PaymentsLeftStatusesParams{Ids: uids, Statuses: names})
	if err != nil {
		return nil, fmt.Errorf("error reading waited payments: %w", err)
	}
	left := make([]string, len(rows))
	for i, id := range rows {
		left[i] = id.String()
	}
	return left, nil
}
