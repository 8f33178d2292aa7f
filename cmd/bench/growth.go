package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payment-outbox/payment-outbox/internal/benchseed"
)

// The growth phase (issue 11, item 4): the payment tables grown to
// production size, what that costs on disk, whether the api and the relay
// stay as fast (bench.growth, phase_growth.go), and, with Explain, whether
// the hot statements stay fast and whether attempts should be partitioned by
// month. runGrowth seeds and measures; TestGrowth runs it alone.

// growthOptions shapes the growth phase.
type growthOptions struct {
	// N payments to grow to (default 10,000,000; -quick 1,000,000).
	N int
	// SmallN is the "empty" baseline the hot statements are planned on
	// first: a few payments, so every statement finds its rows (default
	// 2,000).
	SmallN int
	// Runs of each hot statement per EXPLAIN (default 9).
	Runs int
	// Partition compares payment_attempts with a copy partitioned by month.
	Partition bool
	// PartitionCopyBaseline compares against a fresh unpartitioned copy
	// (built the same way, so the bulk loads compare) instead of
	// payment_attempts itself.
	PartitionCopyBaseline bool
	// DropIndexes drops and recreates the secondary indexes around the load
	// (the foreign keys are always dropped and re-added).
	DropIndexes bool
	// Explain plans the hot statements on SmallN payments and again on N,
	// and compares them (slow: the bench runs it only with -growth-explain).
	Explain bool
	// NoInFlight leaves no seeded payment in the outbox (benchseed.Options).
	NoInFlight bool
	// Logf, when set, is where progress goes instead of w.
	Logf func(format string, args ...any)
}

// growthResult is what the growth phase found.
type growthResult struct {
	N            int                        `json:"payments"`
	Seed         growthSeed                 `json:"seed"`
	Footprint    benchseed.Footprint        `json:"footprint"`
	Small        []benchseed.PlanResult     `json:"plansSmall,omitempty"`
	Grown        []benchseed.PlanResult     `json:"plansGrown,omitempty"`
	Problems     []string                   `json:"problems,omitempty"`
	Partitioning *benchseed.PartitionResult `json:"partitioning,omitempty"`
}

// growthSeed is the seed's speed.
type growthSeed struct {
	Seconds           float64          `json:"seconds"`
	LoadSeconds       float64          `json:"loadSeconds"`
	IndexSeconds      float64          `json:"indexSeconds"`
	VacuumSeconds     float64          `json:"vacuumSeconds"`
	ServerCPUSeconds  float64          `json:"serverCpuSeconds"`
	PaymentsPerSecond float64          `json:"paymentsPerSecond"`
	RowsPerSecond     float64          `json:"rowsPerSecond"`
	Rows              map[string]int64 `json:"rows"`
}

// growthWipe empties every table a seed writes. Like the bench's own wipe,
// it is for a database the bench may wipe.
func growthWipe(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `TRUNCATE payments, payment_cancels, payment_attempts, river_job,
		idempotency_keys, webhook_deliveries, operator_actions CASCADE`)
	if err != nil {
		return fmt.Errorf("error wiping the payment tables: %w", err)
	}
	return nil
}

// runGrowth wipes the payment tables, with o.Explain plans the hot
// statements on a small seed and wipes again, grows the tables to o.N
// payments, checks them, measures their footprint, with o.Explain plans the
// hot statements again and, with o.Partition, compares partitioned attempts. It writes what it finds to w as it goes and
// leaves the grown tables in place (the next phase's wipe empties them).
func runGrowth(ctx context.Context, pool *pgxpool.Pool, o growthOptions, w io.Writer) (growthResult, error) {
	if o.N <= 0 {
		o.N = 10_000_000
	}
	if o.SmallN <= 0 {
		o.SmallN = 2_000
	}
	res := growthResult{N: o.N}
	logf := o.Logf
	if logf == nil {
		logf = func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	}

	if err := growthWipe(ctx, pool); err != nil {
		return res, err
	}
	if o.Explain {
		if _, err := benchseed.SeedWith(ctx, pool, benchseed.Options{N: o.SmallN, NoInFlight: o.NoInFlight}, nil); err != nil {
			return res, err
		}
		logf("growth: planning the hot statements on %d payments", o.SmallN)
		small, err := benchseed.Explain(ctx, pool, o.Runs)
		if err != nil {
			return res, err
		}
		res.Small = small
		if err := growthWipe(ctx, pool); err != nil {
			return res, err
		}
	}

	logf("growth: seeding %d payments (server-side INSERT ... SELECT, not the api)", o.N)
	start := time.Now()
	lastReport := start
	st, err := benchseed.SeedWith(ctx, pool, benchseed.Options{N: o.N, DropIndexes: o.DropIndexes, NoInFlight: o.NoInFlight}, func(done int) {
		if time.Since(lastReport) >= 15*time.Second || done == o.N {
			lastReport = time.Now()
			el := time.Since(start).Seconds()
			logf("growth: %d/%d payments in %.0fs (%.0f/s)", done, o.N, el, float64(done)/el)
		}
	})
	if err != nil {
		return res, err
	}
	res.Seed = growthSeed{
		Seconds: st.Total.Seconds(), LoadSeconds: st.Load.Seconds(), IndexSeconds: st.Indexes.Seconds(),
		VacuumSeconds: st.Vacuum.Seconds(), ServerCPUSeconds: st.ServerCPU.Seconds(),
		PaymentsPerSecond: st.PaymentsPerSecond(), RowsPerSecond: st.RowsPerSecond(), Rows: st.Rows,
	}
	logf("growth: seeded %d payments and %d rows in all in %s (load %s, foreign keys/indexes %s, vacuum %s; server CPU %s): %.0f payments/s, %.0f rows/s",
		o.N, st.RowsTotal(), st.Total.Round(time.Second), st.Load.Round(time.Second), st.Indexes.Round(time.Second),
		st.Vacuum.Round(time.Second), st.ServerCPU.Round(time.Second), st.PaymentsPerSecond(), st.RowsPerSecond())
	for _, t := range benchseed.TableNames(st.Rows) {
		fmt.Fprintf(w, "  %-20s %10d rows  %8.1fs\n", t, st.Rows[t], st.TableTime[t].Seconds())
	}

	if res.Problems, err = benchseed.Verify(ctx, pool); err != nil {
		return res, err
	}
	for _, p := range res.Problems {
		logf("growth: PROBLEM: %s", p)
	}

	if res.Footprint, err = benchseed.Measure(ctx, pool); err != nil {
		return res, err
	}
	fmt.Fprintln(w)
	res.Footprint.Print(w)
	fmt.Fprintln(w)

	if o.Explain {
		logf("growth: planning the hot statements on %d payments", o.N)
		if res.Grown, err = benchseed.Explain(ctx, pool, o.Runs); err != nil {
			return res, err
		}
		benchseed.PrintComparison(w, fmt.Sprintf("%dk", o.SmallN/1000), fmt.Sprintf("%dM", o.N/1_000_000), res.Small, res.Grown)
		fmt.Fprintln(w)
	}

	if o.Partition {
		pr, err := benchseed.ComparePartitioning(ctx, pool, 2000, o.PartitionCopyBaseline, false, w)
		if err != nil {
			return res, err
		}
		res.Partitioning = &pr
		pr.Print(w)
		fmt.Fprintf(w, "\nAttemptListByPayment, unpartitioned:\n%s\n\npartitioned:\n%s\n\npartitioned, pruned by requested_at:\n%s\n", pr.PlanPlain, pr.PlanPart, pr.PlanPruned)
	}
	return res, nil
}
