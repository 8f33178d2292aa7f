package store

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/payment-outbox/payment-outbox/db"
)

// migrateLockKey serialises concurrent `api migrate` runs (two pods starting
// at once) on a Postgres advisory lock. The value is arbitrary but fixed.
const migrateLockKey = 7_264_118_905_112

// MigrateResult says what a Migrate call applied.
type MigrateResult struct {
	Applied      []string // the project's migrations applied by this call
	RiverApplied []int    // River's migration versions applied by this call
}

// Migrate applies River's migrations and then the project's, each at most
// once, so it is safe to run on every deploy. It holds an advisory lock for
// the duration so that concurrent runs wait rather than race.
//
// The bookkeeping SQL here is plain rather than sqlc: it runs before the
// schema sqlc knows about exists.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (*MigrateResult, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("error acquiring connection for migrations: %w", err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLockKey)); err != nil {
		return nil, fmt.Errorf("error taking migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the caller's may be done, and the lock must not
		// outlive this call on a pooled connection.
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(migrateLockKey))
	}()

	res := &MigrateResult{}

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, fmt.Errorf("error creating River migrator: %w", err)
	}
	riverRes, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("error applying River migrations: %w", err)
	}
	for _, v := range riverRes.Versions {
		res.RiverApplied = append(res.RiverApplied, v.Version)
	}

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS payment_outbox_migrations (
		version    text        PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("error creating migrations table: %w", err)
	}

	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("error listing migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		applied, err := applyMigration(ctx, conn.Conn(), name, version)
		if err != nil {
			return nil, err
		}
		if applied {
			res.Applied = append(res.Applied, version)
		}
	}
	return res, nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, name, version string) (bool, error) {
	sql, err := fs.ReadFile(db.Migrations, name)
	if err != nil {
		return false, fmt.Errorf("error reading migration %s: %w", name, err)
	}
	applied := false
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM payment_outbox_migrations WHERE version = $1)", version).Scan(&exists); err != nil {
			return fmt.Errorf("error checking migration %s: %w", version, err)
		}
		if exists {
			return nil
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("error applying migration %s: %w", version, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO payment_outbox_migrations (version) VALUES ($1)", version); err != nil {
			return fmt.Errorf("error recording migration %s: %w", version, err)
		}
		applied = true
		return nil
	})
	return applied, err
}
