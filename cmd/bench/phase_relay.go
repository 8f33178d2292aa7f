package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// relaySpec is one relay configuration, measured against its floor in the
// same rounds.
type relaySpec struct {
	latency time.Duration
	workers int
	tuned   bool // the -tuned relay too, as a third side
}

func (b *bench) relaySpecs() []relaySpec {
	specs := []relaySpec{{latency: 0, workers: 50, tuned: len(b.set.tuned) > 0}}
	for _, w := range b.set.workers {
		specs = append(specs, relaySpec{latency: 50 * time.Millisecond, workers: w})
	}
	return specs
}

// relays measures the relay against its floor: for each spec, rounds of a
// relay draining a backlog and pgbench running the floor's SQL on the same
// backlog (pgbenchFloor), in an order that rotates by round; the ratio is the
// median of the per-round ratios, as for the api.
func (b *bench) relays(ctx context.Context) error {
	b.logf("relay: vs its floor (pgbench, %d clients), %d rounds per run, backlog %d", b.set.floorConns, b.set.rounds, b.set.backlog)
	for i, spec := range b.relaySpecs() {
		lvl, err := b.relayVsFloor(ctx, "", i, spec)
		if err != nil {
			return err
		}
		b.res.Relay = append(b.res.Relay, lvl)
	}
	return nil
}

// relayAcc accumulates one relay configuration's rounds.
type relayAcc struct {
	env  []string
	runs []drainRun
}

func (a *relayAcc) side() relaySide {
	s := relaySide{Env: a.env, Runs: a.runs, CPUPerConfirm: map[string]float64{}}
	var fromStart, busy []float64
	for _, d := range a.runs {
		s.Rounds = append(s.Rounds, d.SteadyPerSecond)
		fromStart = append(fromStart, d.PerSecond)
		busy = append(busy, d.MachineBusy)
		s.RelayPeakRSSMiB = max(s.RelayPeakRSSMiB, d.RelayPeakRSSMiB)
		for k, v := range d.CPUPerConfirm {
			s.CPUPerConfirm[k] += v / float64(len(a.runs))
		}
		s.XactsPerConfirm += d.XactsPerConfirm / float64(len(a.runs))
		s.WALBytesPerConfirm += d.WALBytesPerConfirm / float64(len(a.runs))
	}
	s.PerSecond, s.FromStart, s.MachineBusy = median(s.Rounds), median(fromStart), median(busy)
	return s
}

// relayVsFloor measures one relay configuration against its floor and
// returns the level; name, when not empty, names its checks (the growth
// phase's runs).
func (b *bench) relayVsFloor(ctx context.Context, name string, i int, spec relaySpec) (relayLevel, error) {
	if err := b.sys.setGateway(ctx, spec.latency); err != nil {
		return relayLevel{}, err
	}
	sides := []string{"relay", "floor"}
	if spec.tuned {
		sides = []string{"relay", "floor", "tuned"}
	}
	b.logf("relay: gateway %s, %d workers, sides %v", spec.latency, spec.workers, sides)
	relay, tuned := relayAcc{}, relayAcc{env: b.set.tuned}
	var floor sideAcc
	floor.clientIsPgbench = true
	var ratios, ratiosTuned []float64
	for r := range b.set.rounds {
		k := r % len(sides)
		order := append(slices.Clone(sides[k:]), sides[:k]...)
		perRound := map[string]float64{}
		for _, which := range order {
			tag := fmt.Sprintf("r%d-%d-%s-", i, r, which)
			switch which {
			case "relay", "tuned":
				acc := &relay
				if which == "tuned" {
					acc = &tuned
				}
				d, err := b.drainOnce(ctx, name, tag, spec, acc.env)
				if err != nil {
					return relayLevel{}, err
				}
				acc.runs = append(acc.runs, d)
				perRound[which] = d.SteadyPerSecond
			case "floor":
				pr, err := b.floorOnce(ctx, tag, &floor)
				if err != nil {
					return relayLevel{}, err
				}
				perRound[which] = pr.PerSecond
			}
			if ctx.Err() != nil {
				return relayLevel{}, ctx.Err()
			}
		}
		if f := perRound["floor"]; f > 0 {
			ratios = append(ratios, perRound["relay"]/f)
			if spec.tuned {
				ratiosTuned = append(ratiosTuned, perRound["tuned"]/f)
			}
		}
	}
	lvl := relayLevel{
		GatewayLatencyMs: spec.latency.Milliseconds(),
		Workers:          spec.workers,
		Relay:            relay.side(),
		Floor:            floor.side(),
		FloorClients:     b.set.floorConns,
		Ratio:            median(ratios),
		Ratios:           ratios,
	}
	if spec.tuned {
		t := tuned.side()
		lvl.Tuned = &t
		lvl.RatioTuned, lvl.RatiosTuned = median(ratiosTuned), ratiosTuned
	}
	b.logf("  gateway %s, %d workers: relay %s/s, floor %s/s, ratio %s",
		spec.latency, spec.workers, spread(lvl.Relay.Rounds, "%.0f"), spread(lvl.Floor.Rounds, "%.0f"), spread(ratios, "%.2f"))
	return lvl, nil
}

// drainOnce seeds a backlog, starts one relay and times it until every
// payment is confirmed, then checks them against the gateway's ledger.
func (b *bench) drainOnce(ctx context.Context, phase, tag string, spec relaySpec, env []string) (drainRun, error) {
	if err := b.db.wipe(ctx); err != nil {
		return drainRun{}, err
	}
	made, err := b.db.seedBacklog(ctx, b.tag+"-"+tag, b.set.backlog)
	if err != nil {
		return drainRun{}, err
	}
	before := b.snap(ctx)
	t0 := time.Now()
	if err := b.sys.startRelay(ctx, spec.workers, env); err != nil {
		return drainRun{}, err
	}
	// A slow relay is a finding, not a failure: wait long, and only payments
	// still confirming after that count against the run.
	if _, err := b.db.waitSettled(ctx, 10*time.Minute); err != nil {
		return drainRun{}, err
	}
	after := b.snap(ctx)
	rss := statusKB(pidOf(b.sys.relay), "VmHWM")
	if err := b.sys.stopRelay(); err != nil {
		b.logf("  relay stop: %v", err)
	}
	t, err := b.db.confirmTimes(ctx, time.Time{})
	if err != nil {
		return drainRun{}, err
	}
	d := drainRun{
		GatewayLatencyMs: spec.latency.Milliseconds(),
		Workers:          spec.workers,
		Env:              env,
		Backlog:          len(made),
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
	if t.n > 0 {
		d.XactsPerConfirm, d.WALBytesPerConfirm = u.Xacts/float64(t.n), u.WALBytes/float64(t.n)
	}
	b.logf("    relay%s: drained %d in %.1fs: %.0f confirms/s (steady %.0f/s)", strings.Join(append([]string{""}, env...), " "), t.n, d.Seconds, d.PerSecond, d.SteadyPerSecond)

	ledger, err := b.sys.ledger(ctx)
	if err != nil {
		return d, err
	}
	name := fmt.Sprintf("relay %s, %d workers", spec.latency, spec.workers)
	if phase != "" {
		name = phase + " " + name
	}
	if len(env) > 0 {
		name += ", " + strings.Join(env, " ")
	}
	if err := b.check(ctx, name, made, "confirmed", ledger); err != nil {
		return d, err
	}
	if err := b.sys.resetGateway(ctx); err != nil {
		return d, err
	}
	return d, b.db.wipe(ctx)
}

// floorOnce seeds a backlog large enough that pgbench cannot run out of jobs
// in warm + round at any rate this machine reaches, and runs the floor's SQL
// on it with as many clients as the relay has connections.
func (b *bench) floorOnce(ctx context.Context, tag string, acc *sideAcc) (*pgbenchRun, error) {
	if err := b.db.wipe(ctx); err != nil {
		return nil, err
	}
	// Two and a half times the best floor round so far (rounds on a shared
	// machine vary that much), else a rate no floor on a small machine
	// reaches; seeding costs time too.
	rate := 4000.0
	if len(acc.rounds) > 0 {
		rate = max(2000, 2.5*slices.Max(acc.rounds))
	}
	n := max(b.set.backlog, int(math.Ceil(rate*(b.set.warm+b.set.round).Seconds())))
	if _, err := b.db.seedBacklog(ctx, b.tag+"-"+tag, n); err != nil {
		return nil, err
	}
	before := b.snap(ctx)
	pr, err := runPgbench(ctx, b.pgbench, b.set.dbURL, b.floor, b.set.dir, b.set.floorConns, b.set.warm, b.set.round)
	if err != nil {
		return nil, err
	}
	after := b.snap(ctx)
	acc.rounds = append(acc.rounds, pr.PerSecond)
	acc.lat = append(acc.lat, pr.latencies...)
	acc.payments += pr.Total
	acc.failed += pr.Failed
	acc.aborted = acc.aborted || pr.Aborted
	acc.clientCPUSeconds += pr.CPUSeconds
	acc.addCPU(cpuBetween(before, after), "postgres")
	b.logf("    floor: %.0f confirms/s (%d in the last %.1fs of %.1fs)%s", pr.PerSecond, pr.Payments, pr.Window.Seconds(), pr.Elapsed.Seconds(), map[bool]string{true: ", ABORTED", false: ""}[pr.Aborted])
	if pr.Total >= n {
		b.logf("    floor: WARNING: pgbench used the whole backlog of %d", n)
	}
	return pr, b.db.wipe(ctx)
}

// spread formats a median and the range of the values it is the median of:
// "812 (790–840)"; a single value stands alone.
func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	m := fmt.Sprintf(format, median(v))
	if len(v) == 1 {
		return m
	}
	return m + " (" + fmt.Sprintf(format, slices.Min(v)) + "–" + fmt.Sprintf(format, slices.Max(v)) + ")"
}
