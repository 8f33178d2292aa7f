package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
)

// InsertOperatorAction writes an action's audit row and returns it as
// stored (id and time filled in).
func (s *Store) InsertOperatorAction(ctx context.Context, db DBTX, a payment.OperatorAction) (payment.OperatorAction, error) {
	keyID, err := uuid.Parse(a.KeyID)
	if err != nil {
		return a, fmt.Errorf("error parsing api key id: %w", err)
	}
	pid, err := nullUUID(a.PaymentID)
	if err != nil {
		return a, fmt.Errorf("error parsing payment id: %w", err)
	}
	cid, err := nullUUID(a.CancelID)
	if err != nil {
		return a, fmt.Errorf("error parsing cancel id: %w", err)
	}
	row, err := s.q.OperatorActionInsert(ctx, db, dbsqlc.OperatorActionInsertParams{
		PaymentID: pid, CancelID: cid, ApiKeyID: keyID, ApiKeyName: a.KeyName,
		Action: string(a.Action), Reason: a.Reason,
		StatusBefore: string(a.StatusBefore), StatusAfter: string(a.StatusAfter),
		JobID: nullInt64(a.JobID), Detail: a.Detail,
	})
	if err != nil {
		return a, fmt.Errorf("error inserting operator action: %w", err)
	}
	return toAppOperatorAction(row), nil
}

// SetOperatorActionJob records the outbox job an action enqueued, once its
// id is known (the job's args carry the action's id, so the row comes first).
func (s *Store) SetOperatorActionJob(ctx context.Context, db DBTX, id, jobID int64) error {
	if err := s.q.OperatorActionSetJob(ctx, db, dbsqlc.OperatorActionSetJobParams{ID: id, JobID: &jobID}); err != nil {
		return fmt.Errorf("error recording operator action job: %w", err)
	}
	return nil
}

// CompleteOperatorAction records what the relay's lookup for an action found.
// Only the first outcome is kept.
func (s *Store) CompleteOperatorAction(ctx context.Context, db DBTX, id int64, outcome string, status payment.Status) error {
	err := s.q.OperatorActionComplete(ctx, db, dbsqlc.OperatorActionCompleteParams{
		ID: id, Outcome: outcome, OutcomeStatus: string(status),
	})
	if err != nil {
		return fmt.Errorf("error completing operator action: %w", err)
	}
	return nil
}

// OperatorActions returns a payment's audit trail, oldest first.
func (s *Store) OperatorActions(ctx context.Context, db DBTX, paymentID string) ([]payment.OperatorAction, error) {
	uid, err := uuid.Parse(paymentID)
	if err != nil {
		return nil, errNotFound
	}
	rows, err := s.q.OperatorActionListByPayment(ctx, db, &uid)
	if err != nil {
		return nil, fmt.Errorf("error listing operator actions: %w", err)
	}
	out := make([]payment.OperatorAction, len(rows))
	for i, r := range rows {
		out[i] = toAppOperatorAction(r)
	}
	return out, nil
}

// RecentOperatorActions returns the newest actions on anything, newest first.
func (s *Store) RecentOperatorActions(ctx context.Context, db DBTX, limit int) ([]payment.OperatorAction, error) {
	rows, err := s.q.OperatorActionListRecent(ctx, db, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("error listing operator actions: %w", err)
	}
	out := make([]payment.OperatorAction, len(rows))
	for i, r := range rows {
		out[i] = toAppOperatorAction(r)
	}
	return out, nil
}

func toAppOperatorAction(r dbsqlc.OperatorAction) payment.OperatorAction {
	a := payment.OperatorAction{
		ID: r.ID, KeyID: r.ApiKeyID.String(), KeyName: r.ApiKeyName, Action: payment.Action(r.Action),
		Reason: r.Reason, StatusBefore: payment.Status(r.StatusBefore), StatusAfter: payment.Status(r.StatusAfter),
		Detail: r.Detail, Outcome: r.Outcome, OutcomeStatus: payment.Status(r.OutcomeStatus),
		CompletedAt: r.CompletedAt, CreatedAt: r.CreatedAt,
	}
	if r.PaymentID != nil {
		a.PaymentID = r.PaymentID.String()
	}
	if r.CancelID != nil {
		a.CancelID = r.CancelID.String()
	}
	if r.JobID != nil {
		a.JobID = *r.JobID
	}
	return a
}

// AttentionPayment is a payment waiting on the gateway's word, with its
// newest cancel and newest gateway call (nil when it has none).
type AttentionPayment struct {
	Payment     payment.Payment
	LastCancel  *payment.Cancel
	LastAttempt *payment.Attempt
}

// AttentionPayments lists payments in the given states untouched since
// before, oldest first, with what says why each is there.
func (s *Store) AttentionPayments(ctx context.Context, db DBTX, statuses []payment.Status, before time.Time, limit int, includeAcknowledged bool) ([]AttentionPayment, error) {
	ss := make([]string, len(statuses))
	for i, st := range statuses {
		ss[i] = string(st)
	}
	rows, err := s.q.PaymentListAttention(ctx, db, dbsqlc.PaymentListAttentionParams{
		Statuses: ss, UpdatedBefore: before, MaxRows: int32(limit), IncludeAcknowledged: includeAcknowledged,
	})
	if err != nil {
		return nil, fmt.Errorf("error listing payments that need attention: %w", err)
	}
	out := make([]AttentionPayment, len(rows))
	for i, r := range rows {
		ap := AttentionPayment{Payment: toAppPayment(r.Payment)}
		if r.CancelID != "" {
			ap.LastCancel = &payment.Cancel{
				ID: r.CancelID, PaymentID: ap.Payment.ID, Kind: payment.CancelKind(r.CancelKind),
				Status: payment.CancelStatus(r.CancelStatus), FailureCode: r.CancelFailureCode, FailureMessage: r.CancelFailureMessage,
			}
		}
		if r.AttemptOperation != "" {
			ap.LastAttempt = &payment.Attempt{
				PaymentID: ap.Payment.ID, Operation: payment.Operation(r.AttemptOperation),
				GatewayCode: r.AttemptGatewayCode, Classification: r.AttemptClassification, Error: r.AttemptError,
			}
		}
		out[i] = ap
	}
	return out, nil
}

// Job is an outbox (River) job as operators see it.
type Job struct {
	ID          int64
	Kind        string
	State       string
	Args        json.RawMessage
	Attempt     int
	MaxAttempts int
	// Errors are River's error records, oldest first.
	Errors      []JobError
	CreatedAt   time.Time
	AttemptedAt *time.Time
	ScheduledAt time.Time
	FinalizedAt *time.Time
}

// JobError is one failed attempt of a job, as River recorded it.
type JobError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

// PaymentID is the payment a job is about, from its args; "" for none.
func (j Job) PaymentID() string {
	var args struct {
		PaymentID string `json:"paymentId"`
	}
	_ = json.Unmarshal(j.Args, &args) // a job without a payment has none
	return args.PaymentID
}

// LastError is the newest error River recorded for the job, or "".
func (j Job) LastError() string {
	if n := len(j.Errors); n > 0 {
		return j.Errors[n-1].Error
	}
	return ""
}

// JobsInStates lists outbox jobs in the given River states, newest first.
// Only retryable and discarded jobs are found (the console's jobs page asks
// for no others): see JobListByStates.
func (s *Store) JobsInStates(ctx context.Context, db DBTX, states []string, limit int) ([]Job, error) {
	rows, err := s.q.JobListByStates(ctx, db, dbsqlc.JobListByStatesParams{States: states, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("error listing jobs: %w", err)
	}
	out := make([]Job, len(rows))
	for i, r := range rows {
		out[i] = toJob(dbsqlc.JobGetByIDRow(r))
	}
	return out, nil
}

// PaymentJobs lists a payment's outbox jobs, newest first.
func (s *Store) PaymentJobs(ctx context.Context, db DBTX, paymentID string) ([]Job, error) {
	rows, err := s.q.JobListByPayment(ctx, db, paymentID)
	if err != nil {
		return nil, fmt.Errorf("error listing the payment's jobs: %w", err)
	}
	out := make([]Job, len(rows))
	for i, r := range rows {
		out[i] = toJob(dbsqlc.JobGetByIDRow(r))
	}
	return out, nil
}

// ErrJobNotFound is returned for a job id River does not have (any more).
var ErrJobNotFound = payment.Errorf(payment.KindNotFound, payment.CodeJobNotFound, "no such outbox job")

// JobByID returns one outbox job.
func (s *Store) JobByID(ctx context.Context, db DBTX, id int64) (Job, error) {
	row, err := s.q.JobGetByID(ctx, db, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrJobNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("error getting job: %w", err)
	}
	return toJob(row), nil
}

// LatestJob returns the id and state of the newest job of kind whose args
// contain args (a JSON object); found is false when there is none.
func (s *Store) LatestJob(ctx context.Context, db DBTX, kind string, args []byte) (id int64, state string, found bool, err error) {
	row, err := s.q.JobLatestByArgs(ctx, db, dbsqlc.JobLatestByArgsParams{Kind: kind, Args: args})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("error finding %s job: %w", kind, err)
	}
	return row.ID, row.State, true, nil
}

func toJob(r dbsqlc.JobGetByIDRow) Job {
	j := Job{
		ID: r.ID, Kind: r.Kind, State: r.State, Args: r.Args, Attempt: int(r.Attempt), MaxAttempts: int(r.MaxAttempts),
		CreatedAt: r.CreatedAt, AttemptedAt: r.AttemptedAt, ScheduledAt: r.ScheduledAt, FinalizedAt: r.FinalizedAt,
	}
	for _, raw := range r.Errors {
		var e JobError
		if json.Unmarshal(raw, &e) == nil {
			j.Errors = append(j.Errors, e)
		}
	}
	return j
}

// DiscardedJobs counts discarded outbox jobs by kind.
func (s *Store) DiscardedJobs(ctx context.Context, db DBTX) (map[string]int64, error) {
	rows, err := s.q.StatsDiscardedJobs(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error counting discarded jobs: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Kind] = r.Jobs
	}
	return out, nil
}

// PaymentsAcknowledged counts unknown payments an operator acknowledged.
func (s *Store) PaymentsAcknowledged(ctx context.Context, db DBTX) (int64, error) {
	n, err := s.q.StatsPaymentsAcknowledged(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("error counting acknowledged payments: %w", err)
	}
	return n, nil
}

// LastReconcile returns when the reconciler last finished a pass; ok is
// false when River keeps no finished pass.
func (s *Store) LastReconcile(ctx context.Context, db DBTX) (time.Time, bool, error) {
	row, err := s.q.StatsLastReconcile(ctx, db)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("error reading the last reconcile: %w", err)
	}
	return row.FinalizedAt, row.Found, nil
}

// ConsoleSession is a signed-in console user: the key they signed in with
// and the CSRF token their forms carry.
type ConsoleSession struct {
	Key       apikey.Key
	CSRFToken string
	ExpiresAt time.Time
}

// InsertConsoleSession records a session by the hash of its token.
func (s *Store) InsertConsoleSession(ctx context.Context, db DBTX, tokenHash []byte, keyID, csrf string, expires time.Time) error {
	kid, err := uuid.Parse(keyID)
	if err != nil {
		return fmt.Errorf("error parsing api key id: %w", err)
	}
	err = s.q.ConsoleSessionInsert(ctx, db, dbsqlc.ConsoleSessionInsertParams{
		TokenHash: tokenHash, ApiKeyID: kid, CsrfToken: csrf, ExpiresAt: expires,
	})
	if err != nil {
		return fmt.Errorf("error inserting console session: %w", err)
	}
	return nil
}

// ConsoleSessionByHash returns the unexpired session whose token hashes to
// tokenHash, if its key is not revoked; an error wrapping apikey.ErrNotFound
// otherwise.
func (s *Store) ConsoleSessionByHash(ctx context.Context, db DBTX, tokenHash []byte, now time.Time) (ConsoleSession, error) {
	row, err := s.q.ConsoleSessionGet(ctx, db, dbsqlc.ConsoleSessionGetParams{TokenHash: tokenHash, Now: now})
	if errors.Is(err, pgx.ErrNoRows) {
		return ConsoleSession{}, apikey.ErrNotFound
	}
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("error getting console session: %w", err)
	}
	return ConsoleSession{Key: toAppAPIKey(row.ApiKey), CSRFToken: row.CsrfToken, ExpiresAt: row.SessionExpiresAt}, nil
}

// DeleteConsoleSession ends a session (sign out).
func (s *Store) DeleteConsoleSession(ctx context.Context, db DBTX, tokenHash []byte) error {
	if err := s.q.ConsoleSessionDelete(ctx, db, tokenHash); err != nil {
		return fmt.Errorf("error deleting console session: %w", err)
	}
	return nil
}

// DeleteExpiredConsoleSessions removes sessions past their expiry.
func (s *Store) DeleteExpiredConsoleSessions(ctx context.Context, db DBTX, now time.Time) error {
	if err := s.q.ConsoleSessionDeleteExpired(ctx, db, now); err != nil {
		return fmt.Errorf("error deleting expired console sessions: %w", err)
	}
	return nil
}

func nullUUID(s string) (*uuid.UUID, error) {
	if s == "" {
		return nil, nil
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// RecentAttempts counts the newest limit gateway calls by how the relay
// classified their answers ("" for none recorded), and returns when the
// newest was made.
func (s *Store) RecentAttempts(ctx context.Context, db DBTX, limit int) (map[string]int64, time.Time, error) {
	rows, err := s.q.StatsRecentAttempts(ctx, db, int32(limit))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("error counting recent attempts: %w", err)
	}
	out := make(map[string]int64, len(rows))
	var newest time.Time
	for _, r := range rows {
		out[r.Classification] = r.Calls
		if r.Newest.After(newest) {
			newest = r.Newest
		}
	}
	return out, newest, nil
}
