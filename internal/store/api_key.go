package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
)

// InsertAPIKey records a new key of owner under id. hash is apikey.Hash of
// the key, which is never stored itself. An owner that does not exist gives
// an error wrapping ErrNoOwner.
func (s *Store) InsertAPIKey(ctx context.Context, db DBTX, id, name, displayPrefix string, hash []byte, scope apikey.Scope, owner payment.Owner) (apikey.Key, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return apikey.Key{}, fmt.Errorf("error parsing api key id: %w", err)
	}
	row, err := s.q.APIKeyInsert(ctx, db, dbsqlc.APIKeyInsertParams{
		ID: uid, Name: name, DisplayPrefix: displayPrefix, KeyHash: hash, Scope: string(scope), Owner: ownerName(owner),
	})
	if isForeignKeyViolation(err) {
		return apikey.Key{}, fmt.Errorf("error inserting api key: %w %q", ErrNoOwner, ownerName(owner))
	}
	if err != nil {
		return apikey.Key{}, fmt.Errorf("error inserting api key: %w", err)
	}
	return toAppAPIKey(row), nil
}

// ActiveAPIKeyByHash returns the unrevoked key whose hash is hash, or an
// error wrapping apikey.ErrNotFound.
func (s *Store) ActiveAPIKeyByHash(ctx context.Context, db DBTX, hash []byte) (apikey.Key, error) {
	row, err := s.q.APIKeyGetActiveByHash(ctx, db, hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return apikey.Key{}, apikey.ErrNotFound
	}
	if err != nil {
		return apikey.Key{}, fmt.Errorf("error getting api key by hash: %w", err)
	}
	return toAppAPIKey(row), nil
}

// TouchAPIKey records that a key was used at usedAt, unless it was already
// recorded as used since staleBefore.
func (s *Store) TouchAPIKey(ctx context.Context, db DBTX, id string, usedAt, staleBefore time.Time) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("error parsing api key id: %w", err)
	}
	if err := s.q.APIKeyTouch(ctx, db, dbsqlc.APIKeyTouchParams{ID: uid, UsedAt: usedAt, StaleBefore: staleBefore}); err != nil {
		return fmt.Errorf("error touching api key: %w", err)
	}
	return nil
}

// APIKeys returns every key, revoked ones included, oldest first.
func (s *Store) APIKeys(ctx context.Context, db DBTX) ([]apikey.Key, error) {
	rows, err := s.q.APIKeyList(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error listing api keys: %w", err)
	}
	out := make([]apikey.Key, len(rows))
	for i, r := range rows {
		out[i] = toAppAPIKey(r)
	}
	return out, nil
}

// RevokeAPIKey revokes a key as of at. Revoking a revoked key keeps its first
// revocation time. An unknown id gives an error wrapping apikey.ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, db DBTX, id string, at time.Time) (apikey.Key, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		// An id that is not a UUID came from a person's typing: not found.
		return apikey.Key{}, apikey.ErrNotFound
	}
	row, err := s.q.APIKeyRevoke(ctx, db, dbsqlc.APIKeyRevokeParams{ID: uid, RevokedAt: at})
	if errors.Is(err, pgx.ErrNoRows) {
		return apikey.Key{}, apikey.ErrNotFound
	}
	if err != nil {
		return apikey.Key{}, fmt.Errorf("error revoking api key: %w", err)
	}
	return toAppAPIKey(row), nil
}

func toAppAPIKey(r dbsqlc.ApiKey) apikey.Key {
	return apikey.Key{
		ID:            r.ID.String(),
		Name:          r.Name,
		DisplayPrefix: r.DisplayPrefix,
		CreatedAt:     r.CreatedAt,
		LastUsedAt:    r.LastUsedAt,
		RevokedAt:     r.RevokedAt,
		Scope:         apikey.Scope(r.Scope),
		Owner:         r.Owner,
	}
}

// ErrNoOwner is returned for a key of an owner that has not been added.
var ErrNoOwner = errors.New("no such owner")

// OwnerSummary is an owner as `api owners list` shows it.
type OwnerSummary struct {
	Owner      payment.Owner
	CreatedAt  time.Time
	ActiveKeys int
}

// InsertOwner adds an owner; adding one that exists changes nothing and
// reports false.
func (s *Store) InsertOwner(ctx context.Context, db DBTX, owner payment.Owner) (bool, error) {
	found, err := s.q.OwnerExists(ctx, db, string(owner))
	if err != nil {
		return false, fmt.Errorf("error checking owner: %w", err)
	}
	if found {
		return false, nil
	}
	if err := s.q.OwnerInsert(ctx, db, string(owner)); err != nil {
		return false, fmt.Errorf("error inserting owner: %w", err)
	}
	return true, nil
}

// Owners returns every owner by name, with its count of active keys.
func (s *Store) Owners(ctx context.Context, db DBTX) ([]OwnerSummary, error) {
	rows, err := s.q.OwnerList(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("error listing owners: %w", err)
	}
	out := make([]OwnerSummary, len(rows))
	for i, r := range rows {
		out[i] = OwnerSummary{Owner: payment.Owner(r.ID), CreatedAt: r.CreatedAt, ActiveKeys: int(r.ActiveKeys)}
	}
	return out, nil
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// ownerName is the stored name of o; the zero Owner is the default owner.
func ownerName(o payment.Owner) string {
	if o == "" {
		return string(payment.DefaultOwner)
	}
	return string(o)
}
