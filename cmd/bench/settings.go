package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
	warm        time.Duration
	rounds      int
	backlog     int
	floorConns  int
	workers     []int
	tuned       []string
	apiEnv      []string
	apiB        string
	rates       []float64
	e2eFor      time.Duration
	overloadFor time.Duration
	phases      map[string]bool
	// growth: payments to seed for the growth phase (0: skip it);
	// growthConc: its api concurrency; growthExplain: plan the hot
	// statements too.
	growth        int
	growthConc    int
	growthExplain bool
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
	fs.BoolVar(&s.quick, "quick", false, "a short run (about 4 minutes): 3 short rounds, small backlogs")
	fs.StringVar(&levels, "concurrency", "8,32,64", "closed-loop concurrency levels for api vs pgbench")
	fs.DurationVar(&s.round, "round", 0, "measured length of one api or pgbench round (default 4s, quick 2s)")
	fs.DurationVar(&s.warm, "warm", time.Second, "what each pgbench run spends first, unmeasured: connecting, filling caches, preparing")
	fs.IntVar(&s.rounds, "rounds", 0, "rounds per concurrency level and per relay run; medians are quoted, with min-max (default 5, quick 3)")
	fs.IntVar(&s.backlog, "backlog", 0, "relay backlog in payments, per round (default 5000, quick 2000)")
	fs.IntVar(&s.floorConns, "floor-clients", 20, "pgbench clients of the relay's floor: the relay's DB connections (its DATABASE_MAX_CONNS default)")
	fs.StringVar(&workers, "workers", "", "RELAY_WORKERS settings at 50ms gateway latency (default 50,100,200, quick 50,200)")
	fs.StringVar(&tuned, "tuned", "RELAY_FETCH_POLL_INTERVAL=10ms", "extra relay environment for the 'tuned' runs (empty: none)")
	fs.StringVar(&s.apiB, "api-b", "", "a directory with a second api build to run side by side with the first in the throughput phase (A/B)")
	fs.StringVar(&apiEnv, "api-env", "", "extra api environment, NAME=VALUE,... (default: none, the api's defaults)")
	var rates string
	fs.StringVar(&rates, "rates", "500,200", "offered loads of the end-to-end runs, payments per second; the first is also run with -tuned")
	fs.DurationVar(&s.e2eFor, "e2e", 0, "length of each end-to-end run (default 20s, quick 8s)")
	fs.DurationVar(&s.overloadFor, "overload", 0, "length of each open-loop run of the overload phase (default 10s, quick 5s)")
	fs.StringVar(&phases, "phases", "throughput,relay,e2e,overload,growth", "which phases to run")
	fs.IntVar(&s.growth, "growth", -1, "payments the growth phase seeds before running api and relay again (default 10000000, quick 1000000; 0 skips the phase)")
	fs.IntVar(&s.growthConc, "growth-concurrency", 0, "the growth phase's api concurrency (default 32 if in -concurrency, else its middle level)")
	fs.BoolVar(&s.growthExplain, "growth-explain", false, "the growth phase also plans the api's and relay's hot statements on a small seed and on the grown one (slow)")
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
	def(&s.round, 4*time.Second, 2*time.Second)
	def(&s.e2eFor, 20*time.Second, 8*time.Second)
	def(&s.overloadFor, 10*time.Second, 5*time.Second)
	defInt(&s.rounds, 5, 3)
	defInt(&s.backlog, 5000, 2000)
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
	if s.growth < 0 {
		s.growth = 10_000_000
		if s.quick {
			s.growth = 1_000_000
		}
	}
	if s.growthConc <= 0 {
		s.growthConc = s.levels[len(s.levels)/2]
		if slices.Contains(s.levels, 32) {
			s.growthConc = 32
		}
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
		if p == "drain" {
			p = "relay" // its old name
		}
		if p != "throughput" && p != "relay" && p != "e2e" && p != "overload" && p != "growth" {
			return s, fmt.Errorf("bad -phases: unknown phase %q (throughput, relay, e2e, overload, growth)", p)
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

func settingsOf(s settings) map[string]any {
	return map[string]any{
		"quick": s.quick, "concurrency": s.levels, "round": s.round.String(), "warm": s.warm.String(), "rounds": s.rounds,
		"backlog": s.backlog, "floorClients": s.floorConns, "workersAt50ms": s.workers,
		"tunedRelayEnv": s.tuned, "apiB": s.apiB, "e2eRates": s.rates, "e2eDuration": s.e2eFor.String(),
		"overloadDuration": s.overloadFor.String(),
		"growthPayments":   s.growth, "growthConcurrency": s.growthConc, "growthExplain": s.growthExplain,
		"apiEnv":           append([]string{"defaults (DATABASE_MAX_CONNS 20, LOG_LEVEL info)"}, s.apiEnv...),
		"throughputAPIEnv": noCap + " (the throughput phase's api and api-b, after -api-env)",
		"relayEnv": "defaults except RELAY_WORKERS (DATABASE_MAX_CONNS 20, RELAY_FETCH_POLL_INTERVAL 1s, " +
			"so FetchCooldown 100ms)",
	}
}
