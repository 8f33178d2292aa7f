package benchseed

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
)

// FootprintTables are the tables whose size grows with payments.
var FootprintTables = []string{
	"payments", "payment_attempts", "payment_cancels", "river_job", "webhook_deliveries",
	"idempotency_keys", "operator_actions",
}

// Relation is one table or index on disk.
type Relation struct {
	Name  string `json:"name"`
	Table string `json:"table"`
	// Kind is "heap" (the table's main fork with its free space and
	// visibility maps), "toast" (its TOAST table and TOAST index) or "index".
	Kind  string  `json:"kind"`
	Rows  int64   `json:"rows,omitempty"` // heap only, from the statistics
	Bytes int64   `json:"bytes"`
	Per   float64 `json:"bytesPerPayment"`
}

// TableFootprint is a table with everything that belongs to it.
type TableFootprint struct {
	Table   string  `json:"table"`
	Rows    int64   `json:"rows"`
	Heap    int64   `json:"heapBytes"`
	Toast   int64   `json:"toastBytes"`
	Indexes int64   `json:"indexBytes"`
	Total   int64   `json:"totalBytes"` // pg_total_relation_size
	Per     float64 `json:"bytesPerPayment"`
}

// Footprint is what the payment tables cost on disk.
type Footprint struct {
	Payments        int64            `json:"payments"`
	Tables          []TableFootprint `json:"tables"`
	Relations       []Relation       `json:"relations"`
	TotalBytes      int64            `json:"totalBytes"`
	BytesPerPayment float64          `json:"bytesPerPayment"`
}

// Measure VACUUM ANALYZEs the payment tables (so the sizes are settled and
// the row counts exact) and measures them; see Footprint.
func Measure(ctx context.Context, pool *pgxpool.Pool) (Footprint, error) {
	for _, t := range FootprintTables {
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
			return Footprint{}, fmt.Errorf("error vacuuming %s: %w", t, err)
		}
	}
	return GetFootprint(ctx, pool)
}

// GetFootprint measures the tables that grow with payments, per table and
// per relation (heap, TOAST, each index), and divides by the number of
// payments. It reads the catalog as it is: run VACUUM ANALYZE first (or use
// Measure) for settled sizes and exact row counts.
func GetFootprint(ctx context.Context, pool *pgxpool.Pool) (Footprint, error) {
	var f Footprint
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM payments").Scan(&f.Payments); err != nil {
		return f, fmt.Errorf("error counting payments: %w", err)
	}
	per := func(b int64) float64 {
		if f.Payments == 0 {
			return 0
		}
		return float64(b) / float64(f.Payments)
	}
	rows, err := pool.Query(ctx, `
SELECT c.relname, greatest(c.reltuples, 0)::bigint,
       pg_relation_size(c.oid, 'main') + pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm'),
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
       pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n)
JOIN pg_class c ON c.relname = t.name AND c.relnamespace = 'public'::regnamespace
ORDER BY t.n`, FootprintTables)
	if err != nil {
		return f, fmt.Errorf("error measuring tables: %w", err)
	}
	for rows.Next() {
		var t TableFootprint
		if err := rows.Scan(&t.Table, &t.Rows, &t.Heap, &t.Toast, &t.Indexes, &t.Total); err != nil {
			rows.Close()
			return f, err
		}
		t.Per = per(t.Total)
		f.Tables = append(f.Tables, t)
		f.TotalBytes += t.Total
		f.Relations = append(f.Relations, Relation{Name: t.Table, Table: t.Table, Kind: "heap", Rows: t.Rows, Bytes: t.Heap, Per: per(t.Heap)})
		if t.Toast > 0 {
			f.Relations = append(f.Relations, Relation{Name: t.Table + " (toast)", Table: t.Table, Kind: "toast", Bytes: t.Toast, Per: per(t.Toast)})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, fmt.Errorf("error measuring tables: %w", err)
	}
	f.BytesPerPayment = per(f.TotalBytes)

	rows, err = pool.Query(ctx, `
SELECT t.relname, i.relname, pg_relation_size(i.oid)
FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
WHERE t.relname = ANY($1) AND t.relnamespace = 'public'::regnamespace
ORDER BY array_position($1, t.relname::text), pg_relation_size(i.oid) DESC`, FootprintTables)
	if err != nil {
		return f, fmt.Errorf("error measuring indexes: %w", err)
	}
	defer rows.Close()
	var idx []Relation
	for rows.Next() {
		r := Relation{Kind: "index"}
		if err := rows.Scan(&r.Table, &r.Name, &r.Bytes); err != nil {
			return f, err
		}
		r.Per = per(r.Bytes)
		idx = append(idx, r)
	}
	if err := rows.Err(); err != nil {
		return f, fmt.Errorf("error measuring indexes: %w", err)
	}
	// Each table's indexes right after its heap and TOAST.
	var out []Relation
	for _, t := range f.Tables {
		for _, r := range f.Relations {
			if r.Table == t.Table {
				out = append(out, r)
			}
		}
		for _, r := range idx {
			if r.Table == t.Table {
				out = append(out, r)
			}
		}
	}
	f.Relations = out
	return f, nil
}

// Print writes the footprint as two tables: per table, then per relation.
func (f Footprint) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "table\trows\theap\ttoast\tindexes\ttotal\tB/payment\t\n")
	for _, t := range f.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%.1f\t\n", t.Table, t.Rows, MB(t.Heap), MB(t.Toast), MB(t.Indexes), MB(t.Total), t.Per)
	}
	fmt.Fprintf(tw, "all (%d payments)\t\t\t\t\t%s\t%.1f\t\n", f.Payments, MB(f.TotalBytes), f.BytesPerPayment)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "relation\tkind\tsize\tB/payment\t\n")
	for _, r := range f.Relations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t\n", r.Name, r.Kind, MB(r.Bytes), r.Per)
	}
	tw.Flush()
}

// MB formats a size in MiB.
func MB(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
