package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// endToEnd offers a steady load, open loop, with the relay running, and
// reads from the rows how long each payment took from the confirm being
// accepted to confirmed: at each rate with the relay's defaults, and at the
// first rate with the tuned environment.
func (b *bench) endToEnd(ctx context.Context) error {
	type spec struct {
		rate float64
		env  []string
	}
	var specs []spec
	for i, r := range b.set.rates {
		specs = append(specs, spec{rate: r})
		if i == 0 && len(b.set.tuned) > 0 {
			specs = append(specs, spec{rate: r, env: b.set.tuned})
		}
	}
	for i, sp := range specs {
		if err := b.e2e(ctx, i, sp.rate, sp.env); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) e2e(ctx context.Context, i int, rate float64, env []string) error {
	if err := b.sys.setGateway(ctx, 0); err != nil {
		return err
	}
	// Fresh processes, so their peak RSS is this load's.
	if err := b.sys.stopAPI(); err != nil {
		b.logf("  api stop: %v", err)
	}
	if err := b.sys.startAPI(ctx); err != nil {
		return err
	}
	const workers = 50 // the relay's default
	if err := b.sys.startRelay(ctx, workers, env); err != nil {
		return err
	}
	g := newIDs(b.tag, "e"+strconv.Itoa(i))
	b.logf("e2e: %.0f payments/s offered for %s, relay %d workers %s", rate, b.set.e2eFor, workers, strings.Join(env, " "))
	// Warm-up at the same rate: connections, prepared statements and the
	// relay's first fetches are not what a steady load looks like.
	warm := b.api.openLoop(ctx, rate, 2*time.Second, 4000, g)
	if _, err := b.db.waitSettled(ctx, time.Minute); err != nil {
		return err
	}
	since := time.Now()
	before := b.snap(ctx)
	lr := b.api.openLoop(ctx, rate, b.set.e2eFor, 4000, g)
	after := b.snap(ctx)
	if _, err := b.db.waitSettled(ctx, 5*time.Minute); err != nil {
		return err
	}
	run := e2eRun{
		OfferedPerSecond:  rate,
		AchievedPerSecond: lr.perSecond(),
		Seconds:           lr.Elapsed.Seconds(),
		Payments:          lr.Payments,
		Missed:            lr.Missed,
		Errors:            lr.errorsAndRefused(),
		Workers:           workers,
		Env:               env,
		API:               summarize(lr.total),
		PeakRSSMiB:        map[string]float64{},
		RSSMiB:            map[string]float64{},
	}
	for name, p := range map[string]*proc{"api": b.sys.api, "relay": b.sys.relay, "gatewaysim": b.sys.sim} {
		run.PeakRSSMiB[name] = float64(statusKB(pidOf(p), "VmHWM")) / 1024
		run.RSSMiB[name] = float64(statusKB(pidOf(p), "VmRSS")) / 1024
	}
	u := cpuBetween(before, after)
	run.CPUPerPayment = u.perUnit(lr.Payments)
	run.MachineBusy = u.MachineBusy
	if err := b.sys.stopRelay(); err != nil {
		b.logf("  relay stop: %v", err)
	}
	t, err := b.db.confirmTimes(ctx, since)
	if err != nil {
		return err
	}
	run.E2E = latency{N: t.n, P50: round3(t.e2eP50), P95: round3(t.e2eP95), P99: round3(t.e2eP99), Max: round3(t.e2eMax)}
	b.res.E2E = append(b.res.E2E, run)
	b.logf("  achieved %.0f/s; e2e p50 %.1fms p99 %.1fms; peak RSS api %.0f MiB relay %.0f MiB",
		run.AchievedPerSecond, run.E2E.P50, run.E2E.P99, run.PeakRSSMiB["api"], run.PeakRSSMiB["relay"])

	ledger, err := b.sys.ledger(ctx)
	if err != nil {
		return err
	}
	made := append(warm.made, lr.made...)
	name := fmt.Sprintf("e2e %.0f/s", rate)
	if len(env) > 0 {
		name += ", " + strings.Join(env, " ")
	}
	if err := b.check(ctx, name, made, "confirmed", ledger); err != nil {
		return err
	}
	if err := b.sys.resetGateway(ctx); err != nil {
		return err
	}
	return b.db.wipe(ctx)
}
