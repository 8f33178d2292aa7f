// Command bench measures the payment outbox on this machine and prints what
// it found as a table and as JSON:
//
//   - the api's throughput (payments created and confirmed per second) and
//     latency at fixed concurrency, side by side with pgbench running the same
//     SQL at the same concurrency; their ratio is the headline figure;
//   - the relay's drain rate from a backlog, with the gateway at zero and at
//     50 ms latency and several worker counts;
//   - end-to-end latency (confirm accepted to confirmed) at a steady offered
//     load, open loop, with the api's and the relay's peak memory.
//
// It starts gatewaysim, api and relay from bin/ itself, against a database it
// is allowed to wipe (scripts/bench makes a throwaway cluster for it), and at
// the end of every phase checks every payment against the database and the
// gateway's ledger. It exits 1 when a payment was lost or is wrong (not
// confirmed, confirmed without a charge, charged twice) and 2 when it could
// not run; never because something was slow.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// settings is the command line.
type settings struct {
	dbURL       string
	binDir      string
	dir         string
	out         string
	pgbench     string
	quick       bool
	levels      []int
	round       time.Duration
	rounds      int
	backlog     int
	backlogConc int
	workers     []int
	tuned       []string
	apiEnv      []string
	apiB        string
	rates       []float64
	e2eFor      time.Duration
	phases      map[string]bool
}

func parseSettings(args []string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	var levels, workers, tuned, phases, apiEnv string
	fs.StringVar(&s.dbURL, "db", "", "Postgres URL of a database the bench may WIPE (required; scripts/bench makes one)")
	fs.StringVar(&s.binDir, "bin", "bin", "where api, relay and gatewaysim are built")
	fs.StringVar(&s.dir, "dir", ".run/bench", "logs of the processes and the pgbench scripts")
	fs.StringVar(&s.out, "out", "", "JSON results file (default DIR/bench-results.json)")
	fs.StringVar(&s.pgbench, "pgbench", "", "pgbench binary (default: PATH, else the newest /usr/lib/postgresql/*/bin)")
	fs.BoolVar(&s.quick, "quick", false, "a short run (about 3 minutes): one short round, small backlogs")
	fs.StringVar(&levels, "concurrency", "8,32,64", "closed-loop concurrency levels for api vs pgbench")
	fs.DurationVar(&s.round, "round", 0, "length of one api or pgbench round (default 3s, quick 2s)")
	fs.IntVar(&s.rounds, "rounds", 0, "rounds per concurrency level; medians are quoted (default 3, quick 1)")
	fs.IntVar(&s.backlog, "backlog", 0, "relay backlog in payments (default 20000, quick 5000)")
	fs.IntVar(&s.backlogConc, "backlog-concurrency", 64, "concurrency of the api calls that build a backlog")
	fs.StringVar(&workers, "workers", "", "RELAY_WORKERS settings at 50ms gateway latency (default 50,100,200, quick 50,200)")
	fs.StringVar(&tuned, "tuned", "RELAY_FETCH_POLL_INTERVAL=10ms", "extra relay environment for the 'tuned' runs (empty: none)")
	fs.StringVar(&s.apiB, "api-b", "", "a directory with a second api build to run side by side with the first in the throughput phase (A/B)")
	fs.StringVar(&apiEnv, "api-env", "", "extra api environment, NAME=VALUE,... (default: none, the api's defaults)")
	var rates string
	fs.StringVar(&rates, "rates", "500,200", "offered loads of the end-to-end runs, payments per second; the first is also run with -tuned")
	fs.DurationVar(&s.e2eFor, "e2e", 0, "length of each end-to-end run (default 20s, quick 8s)")
	fs.StringVar(&phases, "phases", "throughput,drain,e2e", "which phases to run")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if s.dbURL == "" {
		return s, errors.New("-db is required: the URL of a database the bench may wipe (make bench makes one)")
	}
	def := func(v *time.Duration, full, quick time.Duration) {
		if *v == 0 {
			*v = full
			if s.quick {
				*v = quick
			}
		}
	}
	defInt := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if s.quick {
				*v = quick
			}
		}
	}
	def(&s.round, 3*time.Second, 2*time.Second)
	def(&s.e2eFor, 20*time.Second, 8*time.Second)
	defInt(&s.rounds, 3, 1)
	defInt(&s.backlog, 20000, 5000)
	if workers == "" {
		workers = "50,100,200"
		if s.quick {
			workers = "50,200"
		}
	}
	var err error
	if s.levels, err = intList(levels); err != nil {
		return s, fmt.Errorf("bad -concurrency: %w", err)
	}
	if s.workers, err = intList(workers); err != nil {
		return s, fmt.Errorf("bad -workers: %w", err)
	}
	if strings.TrimSpace(tuned) != "" {
		s.tuned = strings.Fields(strings.ReplaceAll(tuned, ",", " "))
	}
	if strings.TrimSpace(apiEnv) != "" {
		s.apiEnv = strings.Fields(strings.ReplaceAll(apiEnv, ",", " "))
	}
	s.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		p = strings.TrimSpace(p)
		if p != "throughput" && p != "drain" && p != "e2e" {
			return s, fmt.Errorf("bad -phases: unknown phase %q (throughput, drain, e2e)", p)
		}
		s.phases[p] = true
	}
	if s.out == "" {
		s.out = filepath.Join(s.dir, "bench-results.json")
	}
	for _, f := range strings.Split(rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return s, fmt.Errorf("bad -rates: %q is not a positive number", f)
		}
		s.rates = append(s.rates, r)
	}
	return s, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench is one run.
type bench struct {
	set     settings
	sys     *system
	db      *db
	api     *apiClient
	apiB    *apiClient // -api-b, or nil
	tag     string
	res     *results
	pgbench string
	same    string // pgbench script: every statement the api runs
	writes  string // pgbench script: the writes only
	stderr  io.Writer
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "bench %s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	set, err := parseSettings(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	b := &bench{set: set, stderr: stderr, tag: "b" + strconv.FormatInt(time.Now().Unix()%1_000_000, 36)}
	err = b.run(ctx)
	if b.res != nil && b.res.Date != "" {
		b.finish()
		printReport(stdout, b.res)
		if werr := writeJSON(set.out, b.res); werr != nil {
			fmt.Fprintf(stderr, "bench: %v\n", werr)
		} else {
			fmt.Fprintf(stdout, "\nJSON: %s\n", set.out)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	case !b.res.OK:
		fmt.Fprintln(stderr, "bench: FAILED: payments were lost or are wrong (see Checks above)")
		return 1
	}
	return 0
}

func (b *bench) run(ctx context.Context) error {
	started := time.Now()
	if err := os.MkdirAll(b.set.dir, 0o755); err != nil {
		return fmt.Errorf("error creating %s: %w", b.set.dir, err)
	}
	var err error
	if b.pgbench, err = findPgbench(b.set.pgbench); err != nil {
		return err
	}
	if b.same, b.writes, err = pgbenchScripts(b.set.dir); err != nil {
		return err
	}
	if b.db, err = openDB(ctx, b.set.dbURL); err != nil {
		return err
	}
	defer b.db.pool.Close()
	if b.sys, err = newSystem(b.set.binDir, b.set.dir, b.set.dbURL); err != nil {
		return err
	}
	b.sys.apiEnv = b.set.apiEnv
	b.sys.apiBDir = b.set.apiB
	defer b.sys.stopAll()

	b.res = &results{Date: started.Format(time.RFC3339), Machine: machineInfo(), Settings: settingsOf(b.set)}
	b.res.Machine.Postgres, b.sys.postmaster = b.db.serverInfo(ctx)
	b.logf("machine: %d CPUs, %.0f GiB, PostgreSQL %s; logs in %s", b.res.Machine.CPUs, b.res.Machine.MemGiB, b.res.Machine.Postgres, b.set.dir)

	if err := b.sys.migrate(ctx); err != nil {
		return err
	}
	key, ok, err := b.sys.createAPIKey(ctx, "bench-"+b.tag)
	if err != nil {
		return err
	}
	b.res.Auth = "none: this api has no `keys create` command"
	if ok {
		b.res.Auth = "Authorization: Bearer (key from `api keys create`)"
	}
	b.api = newAPIClient(b.sys.apiAddr, key)
	if b.set.apiB != "" {
		b.apiB = newAPIClient(b.sys.apiBAddr, key)
	}
	b.logf("auth: %s", b.res.Auth)

	if err := b.db.wipe(ctx); err != nil {
		return err
	}
	if err := b.sys.startSim(ctx); err != nil {
		return err
	}
	if err := b.sys.startAPI(ctx); err != nil {
		return err
	}

	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{{"throughput", b.throughput}, {"drain", b.drains}, {"e2e", b.endToEnd}} {
		if !b.set.phases[phase.name] {
			continue
		}
		if err := phase.run(ctx); err != nil {
			return err
		}
	}
	b.res.Seconds = time.Since(started).Seconds()
	return nil
}

// sideAcc accumulates one system's rounds at one concurrency level.
type sideAcc struct {
	rounds            []float64
	lat, cre, con     []time.Duration
	cpu               map[string]float64
	payments          int
	busy              []float64
	errors            map[string]int
	failed            int
	aborted           bool
	clientCPUSeconds  float64
	clientIsPgbench   bool
	latencyFromServer bool
}

func (a *sideAcc) addCPU(u cpuUse, keep ...string) {
	if a.cpu == nil {
		a.cpu = map[string]float64{}
	}
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
	return s
}

// throughput runs the api and pgbench side by side, closed loop, at each
// concurrency level. The relay is not running: this is the api's half of
// the system alone, which is what pgbench's SQL stands for.
func (b *bench) throughput(ctx context.Context) error {
	b.logf("throughput: api vs pgbench, concurrency %v, %d × %s rounds each (relay stopped)", b.set.levels, b.set.rounds, b.set.round)
	if err := b.sys.setGateway(ctx, 0); err != nil {
		return err
	}
	if b.apiB != nil {
		if err := b.sys.startAPIB(ctx); err != nil {
			return err
		}
		defer func() {
			_ = b.sys.apiB.stop(30 * time.Second)
			b.sys.apiB = nil
		}()
	}
	g := newIDs(b.tag, "t")
	var made []payment
	warm := min(time.Second, b.set.round)
	for _, c := range b.set.levels {
		// Warm-up: the api's pool connects and prepares its statements,
		// pgbench's backends start; none of it is measured.
		w := b.api.closedLoop(ctx, c, warm, 0, g)
		made = append(made, w.made...)
		if b.apiB != nil {
			w := b.apiB.closedLoop(ctx, c, warm, 0, g)
			made = append(made, w.made...)
		}
		for _, script := range []string{b.same, b.writes} {
			if _, err := runPgbench(ctx, b.pgbench, b.set.dbURL, script, b.set.dir, c, time.Second); err != nil {
				return err
			}
		}

		var api, apiB, same, writes sideAcc
		same.clientIsPgbench, writes.clientIsPgbench = true, true
		var ratios, ratiosWrites, ratiosB, ratiosBWrites, ratiosBA []float64
		for r := range b.set.rounds {
			// The three back to back, in an order that rotates by round, so
			// whatever drifts on a shared machine hits them alike.
			perRound := map[string]float64{}
			systems := []string{"api", "same", "writes"}
			if b.apiB != nil {
				systems = []string{"api", "same", "api-b", "writes"}
			}
			k := r % len(systems)
			order := append(slices.Clone(systems[k:]), systems[:k]...)
			for _, which := range order {
				before := b.sys.snapCPU()
				switch which {
				case "api", "api-b":
					client, acc, proc := b.api, &api, "api"
					if which == "api-b" {
						client, acc, proc = b.apiB, &apiB, "api-b"
					}
					lr := client.closedLoop(ctx, c, b.set.round, 0, g)
					after := b.sys.snapCPU()
					made = append(made, lr.made...)
					acc.rounds = append(acc.rounds, lr.perSecond())
					acc.lat = append(acc.lat, lr.total...)
					acc.cre = append(acc.cre, lr.create...)
					acc.con = append(acc.con, lr.confirm...)
					acc.payments += lr.Payments
					u := cpuBetween(before, after)
					u.Seconds["api"] = u.Seconds[proc]
					acc.addCPU(u, "api", "postgres", "bench")
					for k, v := range lr.Errors {
						if acc.errors == nil {
							acc.errors = map[string]int{}
						}
						acc.errors[k] += v
					}
					perRound[which] = lr.perSecond()
				default:
					acc, script := &same, b.same
					if which == "writes" {
						acc, script = &writes, b.writes
					}
					pr, err := runPgbench(ctx, b.pgbench, b.set.dbURL, script, b.set.dir, c, b.set.round)
					if err != nil {
						return err
					}
					after := b.sys.snapCPU()
					acc.rounds = append(acc.rounds, pr.PerSecond)
					acc.lat = append(acc.lat, pr.latencies...)
					acc.payments += pr.Payments
					acc.failed += pr.Failed
					acc.aborted = acc.aborted || pr.Aborted
					acc.clientCPUSeconds += pr.CPUSeconds
					acc.addCPU(cpuBetween(before, after), "postgres")
					perRound[which] = pr.PerSecond
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			if perRound["same"] > 0 {
				ratios = append(ratios, perRound["api"]/perRound["same"])
			}
			if perRound["writes"] > 0 {
				ratiosWrites = append(ratiosWrites, perRound["api"]/perRound["writes"])
			}
			if b.apiB != nil && perRound["same"] > 0 && perRound["writes"] > 0 && perRound["api"] > 0 {
				ratiosB = append(ratiosB, perRound["api-b"]/perRound["same"])
				ratiosBWrites = append(ratiosBWrites, perRound["api-b"]/perRound["writes"])
				ratiosBA = append(ratiosBA, perRound["api-b"]/perRound["api"])
			}
		}
		lvl := throughputLevel{
			Concurrency:   c,
			API:           api.side(),
			Pgbench:       same.side(),
			PgbenchWrites: writes.side(),
			Ratio:         median(ratios),
			RatioWrites:   median(ratiosWrites),
		}
		if b.apiB != nil {
			sb := apiB.side()
			lvl.APIB = &sb
			lvl.RatioB, lvl.RatioBWrites, lvl.RatioBA = median(ratiosB), median(ratiosBWrites), median(ratiosBA)
			b.logf("  c=%d: api-b %.0f/s, b/a %.2f, b/pgbench %.2f (writes only %.2f)", c, sb.PerSecond, lvl.RatioBA, lvl.RatioB, lvl.RatioBWrites)
		}
		b.res.Throughput = append(b.res.Throughput, lvl)
		b.logf("  c=%d: api %.0f/s, pgbench %.0f/s (writes only %.0f/s), ratio %.2f",
			c, lvl.API.PerSecond, lvl.Pgbench.PerSecond, lvl.PgbenchWrites.PerSecond, lvl.Ratio)
	}
	// No relay ran: every accepted confirm must be waiting in the outbox,
	// one job each, and the gateway must have seen nothing.
	ledger, err := b.sys.ledger(ctx)
	if err != nil {
		return err
	}
	if err := b.check(ctx, "throughput (outbox, no relay)", made, "confirming", ledger); err != nil {
		return err
	}
	return b.db.wipe(ctx)
}

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
	rss := statusKB(b.sys.relay.pid(), "VmHWM")
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
	before := b.sys.snapCPU()
	lr := b.api.openLoop(ctx, rate, b.set.e2eFor, 4000, g)
	after := b.sys.snapCPU()
	if _, err := b.db.waitSettled(ctx, 5*time.Minute); err != nil {
		return err
	}
	run := e2eRun{
		OfferedPerSecond:  rate,
		AchievedPerSecond: lr.perSecond(),
		Seconds:           lr.Elapsed.Seconds(),
		Payments:          lr.Payments,
		Missed:            lr.Missed,
		Errors:            lr.Errors,
		Workers:           workers,
		Env:               env,
		API:               summarize(lr.total),
		PeakRSSMiB:        map[string]float64{},
		RSSMiB:            map[string]float64{},
	}
	for name, p := range map[string]*proc{"api": b.sys.api, "relay": b.sys.relay, "gatewaysim": b.sys.sim} {
		run.PeakRSSMiB[name] = float64(statusKB(p.pid(), "VmHWM")) / 1024
		run.RSSMiB[name] = float64(statusKB(p.pid(), "VmRSS")) / 1024
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

func (b *bench) check(ctx context.Context, phase string, made []payment, want string, ledger []ledgerEntry) error {
	c, err := b.db.check(ctx, phase, made, want, ledger)
	if err != nil {
		return err
	}
	b.res.Checks = append(b.res.Checks, c)
	verdict := "ok"
	if len(c.Problems) > 0 {
		verdict = fmt.Sprintf("%d PROBLEMS, first: %s", len(c.Problems), c.Problems[0])
	}
	b.logf("  check %s: %d accepted, %d %s: %s", phase, c.Accepted, c.Final, want, verdict)
	return nil
}

// finish sets the verdict and the goals.
func (b *bench) finish() {
	b.res.OK = true
	for _, c := range b.res.Checks {
		if len(c.Problems) > 0 {
			b.res.OK = false
		}
	}
	b.res.Goals = evaluateGoals(b.res)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemGiB = float64(int(kb/1024/1024*10+0.5)) / 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil && len(st) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

func writeJSON(path string, r *results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("error creating %s: %w", filepath.Dir(path), err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("error encoding results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("error writing %s: %w", path, err)
	}
	return nil
}
