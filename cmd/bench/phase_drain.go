package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// drainSpec is one relay drain run.
type drainSpec struct {
	latency time.Duration
	workers int
	env     []string
}

func (b *bench) drainSpecs() []drainSpec {
	specs := []drainSpec{{latency: 0, workers: 50}}
	if len(b.set.tuned) > 0 {
		specs = append(specs, drainSpec{latency: 0, workers: 50, env: b.set.tuned})
	}
	for _, w := range b.set.workers {
		specs = append(specs, drainSpec{latency: 50 * time.Millisecond, workers: w})
	}
	return specs
}

func (b *bench) drains(ctx context.Context) error {
	for i, spec := range b.drainSpecs() {
		if err := b.drain(ctx, i, spec); err != nil {
			return err
		}
	}
	return nil
}

// drain builds a backlog through the api with no relay running, then starts
// one relay and times it until every payment is confirmed.
func (b *bench) drain(ctx context.Context, i int, spec drainSpec) error {
	if err := b.sys.setGateway(ctx, spec.latency); err != nil {
		return err
	}
	g := newIDs(b.tag, "d"+strconv.Itoa(i))
	lr := b.api.closedLoop(ctx, b.set.backlogConc, 0, b.set.backlog, g)
	b.logf("drain: backlog of %d built through the api at %.0f/s; relay with %d workers %s, gateway latency %s",
		lr.Payments, lr.perSecond(), spec.workers, strings.Join(spec.env, " "), spec.latency)

	before := b.sys.snapCPU()
	t0 := time.Now()
	if err := b.sys.startRelay(ctx, spec.workers, spec.env); err != nil {
		return err
	}
	// A slow relay is a finding, not a failure: wait long, and only payments
	// still confirming after that count against the run.
	if _, err := b.db.waitSettled(ctx, 10*time.Minute); err != nil {
		return err
	}
	after := b.sys.snapCPU()
	rss := statusKB(pidOf(b.sys.relay), "VmHWM")
	if err := b.sys.stopRelay(); err != nil {
		b.logf("  relay stop: %v", err)
	}
	t, err := b.db.confirmTimes(ctx, time.Time{})
	if err != nil {
		return err
	}
	d := drainRun{
		GatewayLatencyMs: spec.latency.Milliseconds(),
		Workers:          spec.workers,
		Env:              spec.env,
		Backlog:          lr.Payments,
		BacklogPerSecond: lr.perSecond(),
		Confirmed:        t.n,
		RelayPeakRSSMiB:  float64(rss) / 1024,
	}
	if t.n > 0 {
		d.Seconds = t.last.Sub(t0).Seconds()
		d.PerSecond = float64(t.n) / d.Seconds
		if span := t.p90.Sub(t.p10).Seconds(); span > 0 {
			d.SteadyPerSecond = 0.8 * float64(t.n) / span
		}
	}
	u := cpuBetween(before, after)
	d.CPUPerConfirm = u.perUnit(t.n)
	delete(d.CPUPerConfirm, "api") // idle here
	delete(d.CPUPerConfirm, "bench")
	d.MachineBusy = u.MachineBusy
	b.res.Drain = append(b.res.Drain, d)
	b.logf("  drained %d in %.1fs: %.0f confirms/s (steady %.0f/s)", t.n, d.Seconds, d.PerSecond, d.SteadyPerSecond)

	ledger, err := b.sys.ledger(ctx)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("drain %s, %d workers", spec.latency, spec.workers)
	if len(spec.env) > 0 {
		name += ", " + strings.Join(spec.env, " ")
	}
	if err := b.check(ctx, name, lr.made, "confirmed", ledger); err != nil {
		return err
	}
	if err := b.sys.resetGateway(ctx); err != nil {
		return err
	}
	return b.db.wipe(ctx)
}
