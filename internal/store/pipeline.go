package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
)

// pipeline collects the statements of several sqlc batch queries and sends
// them to db in one round trip. Postgres runs them one after another, each
// with its own snapshot (READ COMMITTED), exactly as if sent one by one: a
// statement queued after a row lock sees what the lock's previous holder
// committed. Results are read in the order the queries were queued; Close
// ends the round trip.
type pipeline struct {
	ctx   context.Context
	db    DBTX
	batch pgx.Batch
	br    pgx.BatchResults
}

func newPipeline(ctx context.Context, db DBTX) *pipeline { return &pipeline{ctx: ctx, db: db} }

// SendBatch queues b's statements; the returned results read them once the
// pipeline has been sent (at its first read).
func (p *pipeline) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	p.batch.QueuedQueries = append(p.batch.QueuedQueries, b.QueuedQueries...)
	return pipelineResults{p}
}

func (p *pipeline) results() pgx.BatchResults {
	if p.br == nil {
		p.br = p.db.SendBatch(p.ctx, &p.batch)
	}
	return p.br
}

// Close ends the round trip (sending it first if nothing was read).
func (p *pipeline) Close() error {
	if len(p.batch.QueuedQueries) == 0 {
		return nil
	}
	return p.results().Close()
}

var errNotPipelined = errors.New("store: only batch queries run in a pipeline")

// Exec, Query and QueryRow complete DBTX; a pipeline takes batch queries only.
func (p *pipeline) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errNotPipelined
}

func (p *pipeline) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errNotPipelined
}

func (p *pipeline) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{errNotPipelined} }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// pipelineResults is one batch query's view of the pipeline's results; its
// Close leaves the pipeline open for the queries queued after it.
type pipelineResults struct{ p *pipeline }

func (r pipelineResults) Exec() (pgconn.CommandTag, error) { return r.p.results().Exec() }
func (r pipelineResults) Query() (pgx.Rows, error)         { return r.p.results().Query() }
func (r pipelineResults) QueryRow() pgx.Row                { return r.p.results().QueryRow() }
func (r pipelineResults) Close() error                     { return nil }
func (r pipelineResults) Tx() pgx.Tx                       { return nil }

// Answers are gateway answers (finished attempts) that a transaction
// records with its first payment lock: the relay's outcome transaction
// passes them to LockPayment (through payflow.Flow.Answering), so that the
// answer an outcome was concluded from commits with it and costs no round
// trip of its own. Written says they were; WriteAnswers writes them if not.
type Answers struct {
	List    []payment.Attempt
	Written bool
}

// pending returns the answers still to write: none for a nil a.
func (a *Answers) pending() []payment.Attempt {
	if a == nil || a.Written {
		return nil
	}
	return a.List
}

// WriteAnswers writes the answers of a that no payment lock has written
// yet, on db.
func (s *Store) WriteAnswers(ctx context.Context, db DBTX, a *Answers) error {
	if len(a.pending()) == 0 {
		return nil
	}
	if err := s.FinishAttempts(ctx, db, a.List...); err != nil {
		return err
	}
	a.Written = true
	return nil
}

// FinishAttempts records gateway calls' answers, in one round trip.
func (s *Store) FinishAttempts(ctx context.Context, db DBTX, as ...payment.Attempt) error {
	p := newPipeline(ctx, db)
	done, err := s.queueFinishAttempts(ctx, p, as)
	if err != nil {
		return err
	}
	err = done()
	return errors.Join(err, p.Close())
}

// queueFinishAttempts queues the answers' writes on p; done reads their
// results.
func (s *Store) queueFinishAttempts(ctx context.Context, p *pipeline, as []payment.Attempt) (done func() error, err error) {
	if len(as) == 0 {
		return func() error { return nil }, nil
	}
	params := make([]dbsqlc.AttemptFinishParams, len(as))
	for i, a := range as {
		if params[i], err = finishParams(a); err != nil {
			return nil, err
		}
	}
	res := s.q.AttemptFinish(ctx, p, params)
	return func() error {
		var first error
		res.Exec(func(_ int, err error) {
			if err != nil && first == nil {
				first = fmt.Errorf("error finishing attempt: %w", err)
			}
		})
		return first
	}, nil
}

func finishParams(a payment.Attempt) (dbsqlc.AttemptFinishParams, error) {
	latency := a.Latency.Microseconds()
	var status *int32
	if a.HTTPStatus != 0 {
		st := int32(a.HTTPStatus)
		status = &st
	}
	var record []byte
	if a.Gateway != nil {
		var err error
		if record, err = json.Marshal(a.Gateway); err != nil {
			return dbsqlc.AttemptFinishParams{}, fmt.Errorf("error encoding gateway record: %w", err)
		}
	}
	return dbsqlc.AttemptFinishParams{
		ID: a.ID, FinishedAt: a.FinishedAt, LatencyUs: &latency, HttpStatus: status,
		GatewayCode: a.GatewayCode, GatewayMessage: a.GatewayMessage,
		Classification: nullString(a.Classification), Error: a.Error, GatewayRecord: record,
	}, nil
}

// Lock says what a payment lock (LockPayment) takes with it, in its one
// round trip. The zero Lock locks the payment alone, whoever owns it.
type Lock struct {
	// Reach is whose payment may be locked: one out of it is not found,
	// and not locked. Everyone's when zero.
	Reach payment.Reach
	// OpenCancels reads the payment's open (waiting or pending) cancels
	// once the lock is held.
	OpenCancels bool
	// CancelID locks that cancel of the payment after it (the order every
	// writer takes them in).
	CancelID string
	// Answers are written before the lock, when not written yet.
	Answers *Answers
}

// LockPayment locks a payment's row until db's transaction ends, with what
// l asks for in the same round trip: the answers to write first, then the
// lock, then its open cancels or one cancel's lock. It returns the payment
// and the cancels read (the locked cancel alone, with CancelID).
func (s *Store) LockPayment(ctx context.Context, db DBTX, id string, l Lock) (payment.Payment, []payment.Cancel, error) {
	return s.lockPayment(ctx, db, l.Reach, id, l.OpenCancels, l.CancelID, l.Answers)
}

// lockPayment locks a payment's row (after writing answers, when not
// written yet) and, with withCancels, then reads its open cancels, or with
// lockCancel, then locks that cancel of it: one round trip.
//
// A payment out of reach is not found, and not locked.
func (s *Store) lockPayment(ctx context.Context, db DBTX, reach payment.Reach, id string, withCancels bool, lockCancel string, answers *Answers) (payment.Payment, []payment.Cancel, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return payment.Payment{}, nil, errNotFound
	}
	var cid uuid.UUID
	if lockCancel != "" {
		if cid, err = uuid.Parse(lockCancel); err != nil {
			return payment.Payment{}, nil, fmt.Errorf("error parsing cancel id: %w", err)
		}
	}
	p := newPipeline(ctx, db)
	finished := func() error { return nil }
	toWrite := answers.pending()
	if len(toWrite) > 0 {
		if finished, err = s.queueFinishAttempts(ctx, p, toWrite); err != nil {
			return payment.Payment{}, nil, err
		}
	}
	lock := s.q.PaymentLockBatch(ctx, p, []dbsqlc.PaymentLockBatchParams{{ID: uid, Owner: ownerArg(reach)}})
	var cancels *dbsqlc.CancelListOpenBatchBatchResults
	if withCancels {
		cancels = s.q.CancelListOpenBatch(ctx, p, []uuid.UUID{uid})
	}
	var cancelLock *dbsqlc.CancelLockBatchBatchResults
	if lockCancel != "" {
		cancelLock = s.q.CancelLockBatch(ctx, p, []uuid.UUID{cid})
	}
	var (
		pay  payment.Payment
		open []payment.Cancel
	)
	err = finished()
	if err == nil {
		lock.QueryRow(func(_ int, row dbsqlc.Payment, qerr error) {
			pay, err = rowOrNotFound(row, qerr, "error locking payment")
		})
	}
	if err == nil && withCancels {
		cancels.Query(func(_ int, rows []dbsqlc.PaymentCancel, qerr error) {
			if qerr != nil {
				err = fmt.Errorf("error listing open cancels: %w", qerr)
				return
			}
			for _, r := range rows {
				open = append(open, toAppCancel(r))
			}
		})
	}
	if err == nil && lockCancel != "" {
		cancelLock.QueryRow(func(_ int, row dbsqlc.PaymentCancel, qerr error) {
			if qerr != nil {
				err = fmt.Errorf("error locking cancel: %w", qerr)
				return
			}
			open = append(open, toAppCancel(row))
		})
	}
	if cerr := p.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("error locking payment: %w", cerr)
	}
	if err != nil {
		return payment.Payment{}, nil, err
	}
	if len(toWrite) > 0 {
		answers.Written = true
	}
	return pay, open, nil
}

// PaymentForUpdateWithOpenCancels is PaymentForUpdate and OpenCancels in
// one round trip: the lock first, then the cancels, read once the lock is
// held, so they include every cancel its previous holder committed.
func (s *Store) PaymentForUpdateWithOpenCancels(ctx context.Context, db DBTX, id string) (payment.Payment, []payment.Cancel, error) {
	return s.lockPayment(ctx, db, payment.Everyone(), id, true, "", nil)
}

// ReachablePaymentForUpdateWithOpenCancels is PaymentForUpdateWithOpenCancels
// for a caller of reach: a payment out of it is not found (and not locked),
// exactly like a payment that does not exist.
func (s *Store) ReachablePaymentForUpdateWithOpenCancels(ctx context.Context, db DBTX, reach payment.Reach, id string) (payment.Payment, []payment.Cancel, error) {
	return s.lockPayment(ctx, db, reach, id, true, "", nil)
}

// ReachablePaymentForUpdate is PaymentForUpdate for a caller of reach: a
// payment out of it is not found (and not locked).
func (s *Store) ReachablePaymentForUpdate(ctx context.Context, db DBTX, reach payment.Reach, id string) (payment.Payment, error) {
	p, _, err := s.lockPayment(ctx, db, reach, id, false, "", nil)
	return p, err
}

// PaymentAndCancelForUpdate is PaymentForUpdate and CancelForUpdate in one
// round trip: the payment's lock first, then its cancel's, the order every
// writer takes them in.
func (s *Store) PaymentAndCancelForUpdate(ctx context.Context, db DBTX, paymentID, cancelID string) (payment.Payment, payment.Cancel, error) {
	p, cs, err := s.lockPayment(ctx, db, payment.Everyone(), paymentID, false, cancelID, nil)
	if err != nil {
		return p, payment.Cancel{}, err
	}
	return p, cs[0], nil
}
