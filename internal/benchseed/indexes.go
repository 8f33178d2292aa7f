package benchseed

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaObject is an index or constraint of a seeded table, with the SQL that
// drops it and the SQL that makes it again.
type schemaObject struct {
	table, name, def string
	drop, create     string
	fk               bool
}

// secondaryObjects lists the seeded tables' secondary indexes, unique
// constraints and foreign keys: everything but the primary keys, which the
// foreign keys' checks and the load's own order need.
func secondaryObjects(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]schemaObject, error) {
	rows, err := db.Query(ctx, `
SELECT c.relname, con.conname, pg_get_constraintdef(con.oid), con.contype = 'f'
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relname = ANY($1) AND c.relnamespace = 'public'::regnamespace AND con.contype IN ('u', 'f')
UNION ALL
SELECT c.relname, i.relname, pg_get_indexdef(i.oid), false
FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relname = ANY($1) AND c.relnamespace = 'public'::regnamespace AND NOT x.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid AND con.contype IN ('u', 'p', 'x'))
ORDER BY 1, 2`, SeededTables)
	if err != nil {
		return nil, fmt.Errorf("error listing indexes: %w", err)
	}
	defer rows.Close()
	var out []schemaObject
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.table, &o.name, &o.def, &o.fk); err != nil {
			return nil, err
		}
		if slices.Contains([]string{"UNIQUE", "FOREIGN"}, firstWord(o.def)) {
			o.drop = fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", pgx.Identifier{o.table}.Sanitize(), pgx.Identifier{o.name}.Sanitize())
			o.create = fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", pgx.Identifier{o.table}.Sanitize(), pgx.Identifier{o.name}.Sanitize(), o.def)
		} else {
			o.drop = "DROP INDEX " + pgx.Identifier{o.name}.Sanitize()
			o.create = o.def
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

func firstWord(s string) string {
	for i, r := range s {
		if r == ' ' {
			return s[:i]
		}
	}
	return s
}

// dropIndexes drops the seeded tables' foreign keys and, unless fkOnly, their
// secondary indexes and unique constraints, and returns the function that recreates
// them and checks the schema is again exactly what it was.
func dropIndexes(ctx context.Context, pool *pgxpool.Pool, fkOnly bool) (func(context.Context) error, error) {
	objs, err := secondaryObjects(ctx, pool)
	if err != nil {
		return nil, err
	}
	var toDrop []schemaObject
	for _, o := range objs {
		if o.fk || !fkOnly {
			toDrop = append(toDrop, o)
		}
	}
	var dropped []schemaObject
	restore := func(ctx context.Context) error {
		// Indexes (and unique constraints) first, on two connections, then
		// the foreign keys, whose validation probes the indexes.
		var idx, fks []string
		for _, o := range dropped {
			if o.fk {
				fks = append(fks, o.create)
			} else {
				idx = append(idx, o.create)
			}
		}
		if err := runParallel(ctx, pool, idx, 2); err != nil {
			return err
		}
		if err := runParallel(ctx, pool, fks, 2); err != nil {
			return err
		}
		after, err := secondaryObjects(ctx, pool)
		if err != nil {
			return err
		}
		if !sameObjects(objs, after) {
			return fmt.Errorf("benchseed: the indexes and constraints after the load differ from before: %v vs %v", defs(objs), defs(after))
		}
		return nil
	}
	// Foreign keys first: a unique constraint may be what one references.
	order := slices.Clone(toDrop)
	slices.SortStableFunc(order, func(a, b schemaObject) int {
		switch {
		case a.fk == b.fk:
			return 0
		case a.fk:
			return -1
		}
		return 1
	})
	for _, o := range order {
		if _, err := pool.Exec(ctx, o.drop); err != nil {
			return restore, fmt.Errorf("error dropping %s: %w", o.name, err)
		}
		dropped = append(dropped, o)
	}
	return restore, nil
}

func defs(objs []schemaObject) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.table + "." + o.name + ": " + o.def
	}
	return out
}

func sameObjects(a, b []schemaObject) bool {
	return slices.Equal(defs(a), defs(b))
}

// runParallel runs the statements on up to n connections, each with room to
// sort in memory.
func runParallel(ctx context.Context, pool *pgxpool.Pool, stmts []string, n int) error {
	work := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pool.Acquire(ctx)
			if err != nil {
				errs <- err
				for range work {
				}
				return
			}
			defer conn.Release()
			_, _ = conn.Exec(ctx, "SET maintenance_work_mem = '512MB'")
			var first error
			for s := range work {
				if first != nil {
					continue
				}
				if _, err := conn.Exec(ctx, s); err != nil {
					first = fmt.Errorf("error running %q: %w", s, err)
				}
			}
			_, _ = conn.Exec(ctx, "RESET maintenance_work_mem")
			if first != nil {
				errs <- first
			}
		}()
	}
	for _, s := range stmts {
		work <- s
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}
