package main

import (
	"context"
	"fmt"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/benchseed"
)

// growthFigures are the api's and the relay's figures on one table size.
type growthFigures struct {
	API        float64 `json:"apiPerSec"`
	Pgbench    float64 `json:"pgbenchPerSec"`
	APIRatio   float64 `json:"apiRatio"` // api ÷ pgbench, median of per-round ratios
	Relay      float64 `json:"relayPerSec"`
	Floor      float64 `json:"floorPerSec"`
	RelayRatio float64 `json:"relayRatio"` // relay ÷ floor, median of per-round ratios
}

func figuresOf(t throughputLevel, r relayLevel) growthFigures {
	return growthFigures{
		API: t.API.PerSecond, Pgbench: t.Pgbench.PerSecond, APIRatio: t.Ratio,
		Relay: r.Relay.PerSecond, Floor: r.Floor.PerSecond, RelayRatio: r.Ratio,
	}
}

// growthPhase is what the growth phase found: the seed, its footprint and
// the api's and relay's figures on empty and on grown tables.
type growthPhase struct {
	Payments    int `json:"payments"`
	Concurrency int `json:"concurrency"`
	Workers     int `json:"relayWorkers"`
	// EmptyFrom says where the empty-table figures come from: the
	// throughput and relay phases of this run, or the growth phase's own
	// runs before seeding (when those phases did not run).
	EmptyFrom  string          `json:"emptyFrom"`
	Empty      growthFigures   `json:"empty"`
	Grown      growthFigures   `json:"grown"`
	EmptyLevel throughputLevel `json:"emptyApi"`
	GrownLevel throughputLevel `json:"grownApi"`
	EmptyRelay relayLevel      `json:"emptyRelay"`
	GrownRelay relayLevel      `json:"grownRelay"`
	Seed       growthResult    `json:"seed"` // the seed, its footprint and (-growth-explain) the plans
}

// growthSpec is the relay configuration the growth phase re-runs: gateway
// at 0 ms, default workers, no tuned side.
var growthSpec = relaySpec{latency: 0, workers: 50}

// growth seeds the tables to -growth payments and runs the api vs pgbench
// (at -growth-concurrency) and the relay vs its floor (gateway 0 ms, default
// workers) again on them. It runs last: it leaves the grown tables behind.
func (b *bench) growth(ctx context.Context) error {
	if b.set.growth <= 0 {
		b.logf("growth: skipped (-growth 0)")
		return nil
	}
	c := b.set.growthConc
	g := &growthPhase{Payments: b.set.growth, Concurrency: c, Workers: growthSpec.workers, EmptyFrom: "the throughput and relay phases"}
	b.res.Growth = g

	// The empty-table figures: this run's, else measured here first.
	var haveT, haveR bool
	for _, t := range b.res.Throughput {
		if t.Concurrency == c {
			g.EmptyLevel, haveT = t, true
		}
	}
	for _, r := range b.res.Relay {
		if r.GatewayLatencyMs == 0 && r.Workers == growthSpec.workers && !haveR {
			g.EmptyRelay, haveR = r, true
		}
	}
	if !haveT || !haveR {
		g.EmptyFrom = "the growth phase, before seeding"
		if err := b.db.wipe(ctx); err != nil {
			return err
		}
	}
	if !haveT {
		lv, err := b.throughputAt(ctx, "growth, empty: api", []int{c})
		if err != nil {
			return err
		}
		g.EmptyLevel = lv[0]
	}
	if !haveR {
		lvl, err := b.relayVsFloor(ctx, "growth, empty:", 0, growthSpec)
		if err != nil {
			return err
		}
		g.EmptyRelay = lvl
	}
	g.Empty = figuresOf(g.EmptyLevel, g.EmptyRelay)

	seed, err := runGrowth(ctx, b.db.pool, growthOptions{
		N: b.set.growth, Explain: b.set.growthExplain, NoInFlight: true, Logf: b.logf,
	}, b.stderr)
	g.Seed = seed
	if err != nil {
		return err
	}
	b.res.Checks = append(b.res.Checks, checkResult{Phase: fmt.Sprintf("growth seed: %d payments (benchseed.Verify)", seed.N), Problems: seed.Problems})
	b.logf("growth: %.0f bytes per payment on disk (%s)", seed.Footprint.BytesPerPayment, benchseed.MB(seed.Footprint.TotalBytes))

	release, err := b.db.keepSeeded(ctx)
	if err != nil {
		return err
	}
	defer release()
	t0 := time.Now()
	lv, err := b.throughputAt(ctx, "growth, grown: api", []int{c})
	if err != nil {
		return err
	}
	g.GrownLevel = lv[0]
	if g.GrownRelay, err = b.relayVsFloor(ctx, "growth, grown:", 0, growthSpec); err != nil {
		return err
	}
	g.Grown = figuresOf(g.GrownLevel, g.GrownRelay)
	b.logf("growth: re-ran on %d payments in %s: api %.0f/s (empty %.0f), relay %.0f/s (empty %.0f)",
		seed.N, time.Since(t0).Round(time.Second), g.Grown.API, g.Empty.API, g.Grown.Relay, g.Empty.Relay)
	return nil
}
