package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
)

// IdempotencyRecord is a client request remembered under its
// Idempotency-Key: first as an in-progress marker, then with the answer that
// repeats of the request get.
type IdempotencyRecord struct {
	// Scope is whose the key is: the owner of the API key that sent the
	// request (for an operator's or read-only key, the owner and the key's
	// scope), not the key itself, so that a retry under a rotated key of
	// the same owner finds the record (docs/design.md, "Owners"). Empty is
	// the default owner's.
	Scope string
	// ClientID is the id of the API key that claimed the record.
	ClientID    string
	Key         string
	RequestHash []byte
	// Status is the answer's HTTP status, zero while the first request is
	// still running.
	Status int
	// Header holds the answer's headers that a replay repeats.
	Header map[string]string
	Body   []byte
	// CreatedAt identifies this claim of the key: a marker taken over after
	// expiry or abandonment gets a new one.
	CreatedAt time.Time
	ExpiresAt time.Time
}

// InProgress reports whether the record is a marker without an answer yet.
func (r IdempotencyRecord) InProgress() bool { return r.Status == 0 }

// maxClaimTries bounds ClaimIdempotencyKey's retries. A retry is needed only
// when the record that blocked the claim was deleted before it could be
// read, which a second try resolves unless the key is being hammered.
const maxClaimTries = 3

// ClaimIdempotencyKey inserts want (without an answer) as the in-progress
// marker for its key, in its own statement: run it on the pool, not inside
// the request's transaction, so that concurrent repeats see the marker at
// once. An expired record, or a marker whose request started before
// staleBefore and never finished, is taken over.
//
// It returns the marker and true when this call claimed the key, or the
// record that holds the key and false.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, db DBTX, want IdempotencyRecord, staleBefore time.Time) (IdempotencyRecord, bool, error) {
	clientID, err := uuid.Parse(want.ClientID)
	if err != nil {
		return IdempotencyRecord{}, false, fmt.Errorf("error parsing client id: %w", err)
	}
	for range maxClaimTries {
		row, err := s.q.IdempotencyClaim(ctx, db, dbsqlc.IdempotencyClaimParams{
			Owner: idempotencyScope(want.Scope), ApiKeyID: clientID, IdempotencyKey: want.Key, RequestHash: want.RequestHash,
			CreatedAt: want.CreatedAt, ExpiresAt: want.ExpiresAt, StaleBefore: staleBefore,
		})
		if err == nil {
			rec, err := toIdempotencyRecord(row)
			return rec, true, err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return IdempotencyRecord{}, false, fmt.Errorf("error claiming idempotency key: %w", err)
		}
		row, err = s.q.IdempotencyGet(ctx, db, dbsqlc.IdempotencyGetParams{Owner: idempotencyScope(want.Scope), IdempotencyKey: want.Key})
		if errors.Is(err, pgx.ErrNoRows) {
			// Released (or swept) between the two statements: claim again.
			continue
		}
		if err != nil {
			return IdempotencyRecord{}, false, fmt.Errorf("error getting idempotency key: %w", err)
		}
		rec, err := toIdempotencyRecord(row)
		return rec, false, err
	}
	return IdempotencyRecord{}, false, fmt.Errorf("error claiming idempotency key: still contended after %d tries", maxClaimTries)
}

// CompleteIdempotencyKey stores the answer for a marker this process
// claimed. It reports false when the marker is no longer the one claimed
// (it was taken over as abandoned), in which case nothing is written.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, db DBTX, rec IdempotencyRecord) (bool, error) {
	header, err := json.Marshal(rec.Header)
	if err != nil {
		return false, fmt.Errorf("error encoding idempotent response headers: %w", err)
	}
	if rec.Header == nil {
		header = []byte("{}")
	}
	status := int32(rec.Status)
	body := rec.Body
	if body == nil {
		body = []byte{} // NULL means "no answer yet"
	}
	n, err := s.q.IdempotencyComplete(ctx, db, dbsqlc.IdempotencyCompleteParams{
		Owner: idempotencyScope(rec.Scope), IdempotencyKey: rec.Key, CreatedAt: rec.CreatedAt,
		ResponseStatus: &status, ResponseHeaders: header, ResponseBody: body,
	})
	if err != nil {
		return false, fmt.Errorf("error completing idempotency key: %w", err)
	}
	return n == 1, nil
}

// ReleaseIdempotencyKey deletes a marker this process claimed and will not
// complete, so the client may retry under the same key.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, db DBTX, rec IdempotencyRecord) error {
	if _, err := s.q.IdempotencyRelease(ctx, db, dbsqlc.IdempotencyReleaseParams{
		Owner: idempotencyScope(rec.Scope), IdempotencyKey: rec.Key, CreatedAt: rec.CreatedAt,
	}); err != nil {
		return fmt.Errorf("error releasing idempotency key: %w", err)
	}
	return nil
}

// DeleteExpiredIdempotencyKeys deletes at most limit records that expired
// before now and returns how many it deleted.
func (s *Store) DeleteExpiredIdempotencyKeys(ctx context.Context, db DBTX, now time.Time, limit int) (int64, error) {
	n, err := s.q.IdempotencyDeleteExpired(ctx, db, dbsqlc.IdempotencyDeleteExpiredParams{Now: now, MaxRows: int32(limit)})
	if err != nil {
		return 0, fmt.Errorf("error deleting expired idempotency keys: %w", err)
	}
	return n, nil
}

// SweepExpiredIdempotencyKeys deletes every record that expired before now,
// batch rows per statement, each statement its own transaction, until a
// statement finds fewer than batch; it returns how many it deleted. However
// large the backlog, no transaction holds more than batch row locks or runs
// longer than one batch, and a sweep stopped midway (ctx) keeps what it
// deleted.
func (s *Store) SweepExpiredIdempotencyKeys(ctx context.Context, db DBTX, now time.Time, batch int) (int64, error) {
	var total int64
	for {
		n, err := s.DeleteExpiredIdempotencyKeys(ctx, db, now, batch)
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
	}
}

func toIdempotencyRecord(r dbsqlc.IdempotencyKey) (IdempotencyRecord, error) {
	rec := IdempotencyRecord{
		Scope:       r.Owner,
		ClientID:    r.ApiKeyID.String(),
		Key:         r.IdempotencyKey,
		RequestHash: r.RequestHash,
		Body:        r.ResponseBody,
		CreatedAt:   r.CreatedAt,
		ExpiresAt:   r.ExpiresAt,
	}
	if r.ResponseStatus != nil {
		rec.Status = int(*r.ResponseStatus)
	}
	if len(r.ResponseHeaders) > 0 {
		if err := json.Unmarshal(r.ResponseHeaders, &rec.Header); err != nil {
			return IdempotencyRecord{}, fmt.Errorf("error decoding idempotent response headers: %w", err)
		}
	}
	return rec, nil
}

// idempotencyScope is the stored scope of a record: empty is the default
// owner's, as every record made before owners existed is.
func idempotencyScope(scope string) string {
	if scope == "" {
		return string(payment.DefaultOwner)
	}
	return scope
}
