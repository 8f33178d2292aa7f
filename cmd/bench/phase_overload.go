package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// The overload phase: what the api does when offered more payments than it
// can take (docs/design.md, "Overload"). It takes the api's maximum
// throughput (the throughput phase's best api/s when it ran, else a closed
// loop of its own), measures the latency of an open loop at a third of it
// (the unloaded figure), then offers overloadFactor times the maximum, open
// loop, for -overload, once with the api's default admission cap and once
// without one (API_MAX_IN_FLIGHT=0). Each run counts payments (a create and
// its confirm): accepted (201 and 202), refused (either call answered 503
// overloaded; not retried) or failed (any other answer, a timeout), with the
// accepted ones' latency from their scheduled start and the api's RSS
// sampled through the run. The relay is stopped: this is the api alone.

const (
	overloadFactor = 2.0 // the offered load, times the maximum
	unloadedShare  = 1.0 / 3
	rssEvery       = 100 * time.Millisecond
)

// overloadOutstanding bounds the payments in flight from the generator, so
// that it does not run out of file descriptors: each is a goroutine and a
// connection, in the bench and in the api, whose limits are alike (Go
// raises the soft limit to the hard one; 20,000 here). What is left after
// a margin: an uncapped api at 2× its maximum queues about the maximum's
// worth every second until its own 10 s request timeout answers, more than
// 8,000 in 5 s on 2 cores, so the bound must be that high for the generator
// not to cap the offer; a start skipped at the bound is counted as missed.
func overloadOutstanding() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 8000
	}
	return int(max(1000, min(r.Cur, 100_000)-2000))
}

// overloadResult is the phase's JSON.
type overloadResult struct {
	MaxPerSec float64 `json:"maxPerSec"`
	MaxFrom   string  `json:"maxFrom"`
	Factor    float64 `json:"factor"`
	Seconds   float64 `json:"secondsPerRun"`
	// Unloaded is the open loop at a third of the maximum, default cap.
	Unloaded overloadRun `json:"unloaded"`
	// Capped and Uncapped offer Factor × MaxPerSec, with the api's default
	// API_MAX_IN_FLIGHT and with none.
	Capped   overloadRun `json:"capped"`
	Uncapped overloadRun `json:"uncapped"`
}

// overloadRun is one open-loop run. Shares are of the payments offered.
type overloadRun struct {
	APIEnv         string         `json:"apiEnv"`
	OfferedPerSec  float64        `json:"offeredPerSec"`
	Offered        int            `json:"offered"`
	AcceptedPerSec float64        `json:"acceptedPerSec"` // over the run and the wait for its last answer
	Accepted       int            `json:"accepted"`
	Refused        int            `json:"refused"`
	RefusedShare   float64        `json:"refusedShare"`
	Failed         int            `json:"failed"`
	FailedShare    float64        `json:"failedShare"`
	Missed         int            `json:"missed"` // not started: the generator's own bound was reached
	Errors         map[string]int `json:"errors,omitempty"`
	Latency        latency        `json:"acceptedMs"` // create + confirm, from the scheduled start
	P99Ratio       float64        `json:"p99OverUnloaded,omitempty"`
	RSSStartMiB    float64        `json:"rssStartMiB"`
	RSSPeakMiB     float64        `json:"rssPeakMiB"`
	RSSEndMiB      float64        `json:"rssEndMiB"`
	// CPU seconds of the run by part (api, postgres, bench: the generator
	// shares the machine) and the machine's busy share.
	CPUSeconds  map[string]float64 `json:"cpuSeconds"`
	MachineBusy float64            `json:"machineBusyPct"`
}

func (b *bench) overload(ctx context.Context) error {
	if err := b.sys.setGateway(ctx, 0); err != nil {
		return err
	}
	g := newIDs(b.tag, "o")
	var made []payment
	res := &overloadResult{Factor: overloadFactor, Seconds: b.set.overloadFor.Seconds()}

	// The maximum: the throughput phase's best, measured without the cap,
	// or a closed loop here, without the cap too, at a few concurrencies.
	for _, t := range b.res.Throughput {
		if t.API.PerSecond > res.MaxPerSec {
			res.MaxPerSec, res.MaxFrom = t.API.PerSecond, fmt.Sprintf("throughput phase, c=%d", t.Concurrency)
		}
	}
	if res.MaxPerSec == 0 {
		if err := b.sys.restartAPI(ctx, noCap); err != nil {
			return err
		}
		for _, c := range []int{8, 16, 32} {
			w := b.api.closedLoop(ctx, c, time.Second, 0, g)
			lr := b.api.closedLoop(ctx, c, b.set.round, 0, g)
			made = append(append(made, w.made...), lr.made...)
			b.logf("  closed loop c=%d: %.0f payments/s", c, lr.perSecond())
			if lr.perSecond() > res.MaxPerSec {
				res.MaxPerSec, res.MaxFrom = lr.perSecond(), fmt.Sprintf("closed loop c=%d, %s, %s", c, b.set.round, noCap)
			}
		}
	}
	if res.MaxPerSec <= 0 {
		return fmt.Errorf("overload: the api completed no payment in its closed loop")
	}
	low, high := res.MaxPerSec*unloadedShare, res.MaxPerSec*overloadFactor
	b.logf("overload: max %.0f payments/s (%s); unloaded %.0f/s, then %.0f/s for %s with the default cap and with %s",
		res.MaxPerSec, res.MaxFrom, low, high, b.set.overloadFor, noCap)

	runs := []struct {
		into *overloadRun
		env  []string
		rate float64
	}{{&res.Unloaded, nil, low}, {&res.Capped, nil, high}, {&res.Uncapped, []string{noCap}, high}}
	for i, r := range runs {
		// A fresh api for each setting, warmed at the unloaded rate (its
		// pool connected, its statements prepared), so RSS at the start is
		// a working api's, not a cold one's.
		if i != 1 {
			if err := b.sys.restartAPI(ctx, r.env...); err != nil {
				return err
			}
			w := b.api.openLoop(ctx, low, time.Second, overloadOutstanding(), g)
			made = append(made, w.made...)
		}
		run, lr := b.overloadRun(ctx, r.rate, g)
		made = append(made, lr.made...)
		run.APIEnv = "defaults"
		if len(r.env) > 0 {
			run.APIEnv = r.env[0]
		}
		*r.into = run
		b.logf("  %.0f/s offered, %s: accepted %.0f/s, refused %.1f%%, failed %.1f%%, p50 %.1f ms p99 %.1f ms, RSS %.0f→%.0f MiB (peak %.0f)",
			run.OfferedPerSec, run.APIEnv, run.AcceptedPerSec, 100*run.RefusedShare, 100*run.FailedShare,
			run.Latency.P50, run.Latency.P99, run.RSSStartMiB, run.RSSEndMiB, run.RSSPeakMiB)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if p := res.Unloaded.Latency.P99; p > 0 {
		res.Capped.P99Ratio = res.Capped.Latency.P99 / p
		res.Uncapped.P99Ratio = res.Uncapped.Latency.P99 / p
	}
	b.res.Overload = res
	if err := b.sys.restartAPI(ctx); err != nil {
		return err
	}

	ledger, err := b.sys.ledger(ctx)
	if err != nil {
		return err
	}
	if err := b.check(ctx, "overload (outbox, no relay)", made, "confirming", ledger); err != nil {
		return err
	}
	return b.db.wipe(ctx)
}

// overloadRun offers rate payments/s for -overload, open loop, sampling the
// api's RSS until the last answer is in.
func (b *bench) overloadRun(ctx context.Context, rate float64, g *ids) (overloadRun, *loadResult) {
	pid := pidOf(b.sys.api)
	mib := func() float64 { return float64(statusKB(pid, "VmRSS")) / 1024 }
	run := overloadRun{OfferedPerSec: rate, RSSStartMiB: mib()}
	run.RSSPeakMiB = run.RSSStartMiB
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				run.RSSPeakMiB = max(run.RSSPeakMiB, mib())
			}
		}
	}()
	before := b.snap(ctx)
	lr := b.api.openLoop(ctx, rate, b.set.overloadFor, overloadOutstanding(), g)
	u := cpuBetween(before, b.snap(ctx))
	run.CPUSeconds, run.MachineBusy = u.Seconds, u.MachineBusy
	close(stop)
	wg.Wait()
	run.RSSEndMiB = mib()
	run.RSSPeakMiB = max(run.RSSPeakMiB, run.RSSEndMiB)

	run.Accepted, run.Refused, run.Missed, run.Errors = lr.Payments, lr.Refused, lr.Missed, lr.Errors
	run.Failed = sumErrors(lr.Errors)
	run.Offered = run.Accepted + run.Refused + run.Failed
	if run.Offered > 0 {
		run.RefusedShare = float64(run.Refused) / float64(run.Offered)
		run.FailedShare = float64(run.Failed) / float64(run.Offered)
	}
	run.AcceptedPerSec = lr.perSecond()
	run.Latency = summarize(lr.total)
	return run, lr
}
