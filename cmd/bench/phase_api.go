package main

import (
	"context"
	"slices"
	"strconv"
	"time"
)

// sideAcc accumulates one system's rounds at one concurrency level.
type sideAcc struct {
	rounds           []float64
	lat, cre, con    []time.Duration
	cpu              map[string]float64
	walBytes, xacts  float64
	payments         int
	busy             []float64
	errors           map[string]int
	failed           int
	aborted          bool
	clientCPUSeconds float64
	clientIsPgbench  bool
	notifyPct        []float64 // pgbench: River's notification share per round
}

func (a *sideAcc) addCPU(u cpuUse, keep ...string) {
	if a.cpu == nil {
		a.cpu = map[string]float64{}
	}
	a.walBytes += u.WALBytes
	a.xacts += u.Xacts
	for _, k := range keep {
		a.cpu[k] += u.Seconds[k]
	}
	a.busy = append(a.busy, u.MachineBusy)
}

func (a *sideAcc) side() side {
	s := side{
		PerSecond:   median(a.rounds),
		Rounds:      a.rounds,
		Latency:     summarize(a.lat),
		Errors:      a.errors,
		MachineBusy: median(a.busy),
		Failed:      a.failed,
		Aborted:     a.aborted,
		NotifyPct:   median(a.notifyPct),
	}
	if len(a.cre) > 0 {
		c, f := summarize(a.cre), summarize(a.con)
		s.Create, s.Confirm = &c, &f
	}
	cpu := map[string]float64{}
	for k, v := range a.cpu {
		cpu[k] = v
	}
	if a.clientIsPgbench {
		cpu["pgbench"] = a.clientCPUSeconds
	}
	s.CPUPerPayment = cpuUse{Seconds: cpu}.perUnit(a.payments)
	if a.payments > 0 {
		s.XactsPerPayment = a.xacts / float64(a.payments)
		s.WALBytesPerPayment = a.walBytes / float64(a.payments)
	}
	return s
}

// noCap is the api environment without the admission cap.
const noCap = "API_MAX_IN_FLIGHT=0"

// throughput runs the api and pgbench side by side, closed loop, at each
// concurrency level. The relay is not running: this is the api's half of
// the system alone, which is what pgbench's SQL stands for.
func (b *bench) throughput(ctx context.Context) error {
	lvls, err := b.throughputAt(ctx, "throughput", b.set.levels)
	b.res.Throughput = append(b.res.Throughput, lvls...)
	return err
}

// throughputAt runs the api and pgbench at the levels, checks the api's
// payments (as the phase named name) and wipes them; it returns the levels
// measured. On the growth phase's tables it leaves the seeded rows alone
// (db.keepSeeded).
func (b *bench) throughputAt(ctx context.Context, name string, levels []int) (out []throughputLevel, err error) {
	b.logf("%s: api vs pgbench, concurrency %v, %d × %s rounds each (relay stopped; api with %s)", name, levels, b.set.rounds, b.set.round, noCap)
	if err := b.sys.setGateway(ctx, 0); err != nil {
		return nil, err
	}
	// Without the admission cap: a closed loop of 64 callers against a cap
	// of 30 measures how fast the api refuses, not its SQL path, which is
	// what pgbench stands beside. The next phases get the defaults back.
	if err := b.sys.restartAPI(ctx, noCap); err != nil {
		return nil, err
	}
	defer func() {
		if rerr := b.sys.restartAPI(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if b.apiB != nil {
		if err := b.sys.startAPIB(ctx); err != nil {
			return nil, err
		}
		defer func() {
			_ = b.sys.apiB.stop(30 * time.Second)
			b.sys.apiB = nil
		}()
	}
	g := newIDs(b.tag, "t")
	var made []payment
	warm := max(b.set.warm, time.Second)
	for _, c := range levels {
		// Warm-up: the api's pool connects and prepares its statements;
		// none of it is measured. pgbench connects afresh every round, so
		// each of its rounds drops its own first -warm (runPgbench).
		w := b.api.closedLoop(ctx, c, warm, 0, g)
		made = append(made, w.made...)
		// The api's latest rate at this concurrency, for the share of
		// pgbench's confirms that send River's insert notification.
		lastAPI := w.perSecond()
		if b.apiB != nil {
			w := b.apiB.closedLoop(ctx, c, warm, 0, g)
			made = append(made, w.made...)
		}
		var api, apiB, same sideAcc
		same.clientIsPgbench = true
		var ratios, ratiosB, ratiosBA []float64
		for r := range b.set.rounds {
			// Back to back, in an order that rotates by round, so whatever
			// drifts on a shared machine hits them alike.
			perRound := map[string]float64{}
			systems := []string{"api", "same"}
			if b.apiB != nil {
				systems = []string{"api", "same", "api-b"}
			}
			k := r % len(systems)
			order := append(slices.Clone(systems[k:]), systems[:k]...)
			for _, which := range order {
				before := b.snap(ctx)
				switch which {
				case "api", "api-b":
					client, acc, proc := b.api, &api, "api"
					if which == "api-b" {
						client, acc, proc = b.apiB, &apiB, "api-b"
					}
					lr := client.closedLoop(ctx, c, b.set.round, 0, g)
					after := b.snap(ctx)
					made = append(made, lr.made...)
					acc.rounds = append(acc.rounds, lr.perSecond())
					acc.lat = append(acc.lat, lr.total...)
					acc.cre = append(acc.cre, lr.create...)
					acc.con = append(acc.con, lr.confirm...)
					acc.payments += lr.Payments
					u := cpuBetween(before, after)
					u.Seconds["api"] = u.Seconds[proc]
					acc.addCPU(u, "api", "postgres", "bench")
					for k, v := range lr.errorsAndRefused() {
						if acc.errors == nil {
							acc.errors = map[string]int{}
						}
						acc.errors[k] += v
					}
					perRound[which] = lr.perSecond()
					if which == "api" {
						lastAPI = lr.perSecond()
					}
				default:
					acc, script := &same, b.same
					pct := notifyPct(lastAPI)
					acc.notifyPct = append(acc.notifyPct, float64(pct))
					pr, err := runPgbench(ctx, b.pgbench, b.set.dbURL, script, b.set.dir, c, b.set.warm, b.set.round,
						"notify_pct="+strconv.Itoa(pct))
					if err != nil {
						return out, err
					}
					after := b.snap(ctx)
					acc.rounds = append(acc.rounds, pr.PerSecond)
					acc.lat = append(acc.lat, pr.latencies...)
					acc.payments += pr.Total // the CPU below is the whole run's
					acc.failed += pr.Failed
					acc.aborted = acc.aborted || pr.Aborted
					acc.clientCPUSeconds += pr.CPUSeconds
					acc.addCPU(cpuBetween(before, after), "postgres")
					perRound[which] = pr.PerSecond
				}
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
			}
			if perRound["same"] > 0 {
				ratios = append(ratios, perRound["api"]/perRound["same"])
			}
			if b.apiB != nil && perRound["same"] > 0 && perRound["api"] > 0 {
				ratiosB = append(ratiosB, perRound["api-b"]/perRound["same"])
				ratiosBA = append(ratiosBA, perRound["api-b"]/perRound["api"])
			}
		}
		lvl := throughputLevel{
			Concurrency: c,
			API:         api.side(),
			Pgbench:     same.side(),
			Ratio:       median(ratios),
			Ratios:      ratios,
		}
		if b.apiB != nil {
			sb := apiB.side()
			lvl.APIB = &sb
			lvl.RatioB, lvl.RatioBA = median(ratiosB), median(ratiosBA)
			b.logf("  c=%d: api-b %.0f/s, b/a %.2f, b/pgbench %.2f", c, sb.PerSecond, lvl.RatioBA, lvl.RatioB)
		}
		out = append(out, lvl)
		b.logf("  c=%d: api %s/s, pgbench %s/s, ratio %s",
			c, spread(lvl.API.Rounds, "%.0f"), spread(lvl.Pgbench.Rounds, "%.0f"), spread(ratios, "%.2f"))
	}
	// No relay ran: every accepted confirm must be waiting in the outbox,
	// one job each, and the gateway must have seen nothing.
	ledger, err := b.sys.ledger(ctx)
	if err != nil {
		return out, err
	}
	if err := b.check(ctx, name+" (outbox, no relay)", made, "confirming", ledger); err != nil {
		return out, err
	}
	return out, b.db.wipe(ctx)
}
