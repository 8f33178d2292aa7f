// Command bench measures the payment outbox on this machine and prints what
// it found as a table and as JSON:
//
//   - the api's throughput (payments created and confirmed per second) and
//     latency at fixed concurrency, side by side with pgbench running the same
//     SQL at the same concurrency; their ratio is the headline figure;
//   - the relay's drain rate from a backlog, with the gateway at zero and at
//     50 ms latency and several worker counts, side by side with pgbench
//     running the SQL a relay cannot do without (its floor) on the same
//     backlog; their ratio is the relay's headline figure;
//   - end-to-end latency (confirm accepted to confirmed) at a steady offered
//     load, open loop, with the api's and the relay's peak memory;
//   - overload: twice the api's maximum offered open loop, with its
//     admission cap and without, against its unloaded latency: how many it
//     refuses, the accepted ones' p99, its RSS;
//   - growth, last: the tables seeded with -growth payments (10 million)
//     and their rows, server-side; their bytes per payment on disk; the api
//     vs pgbench at one concurrency and the relay vs its floor at 0 ms run
//     again on them, against the empty-table figures.
//
// Both ratios are medians of rounds run back to back in rotating order, each
// figure printed with the range of its rounds. It starts gatewaysim, api and
// relay from bin/ itself (internal/systest), against a database it is
// allowed to wipe (scripts/bench makes a throwaway cluster for it, durable
// as production runs, and then a fast one), reports how durable the server
// is, and at the end of every phase checks every payment against the
// database and the gateway's ledger. It exits 1 when a payment was lost or is wrong (not
// confirmed, confirmed without a charge, charged twice) and 2 when it could
// not run; never because something was slow.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
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
	floor   string // pgbench script: the relay's floor
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
	scrubEnv()
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
	if b.same, b.floor, err = pgbenchScripts(b.set.dir); err != nil {
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
	b.res.Durability = b.db.durability(ctx)
	b.logf("machine: %d CPUs, %.0f GiB, PostgreSQL %s, %s; logs in %s", b.res.Machine.CPUs, b.res.Machine.MemGiB, b.res.Machine.Postgres, b.res.Durability, b.set.dir)

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
	}{{"throughput", b.throughput}, {"relay", b.relays}, {"e2e", b.endToEnd}, {"overload", b.overload}, {"growth", b.growth}} {
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

func (b *bench) check(ctx context.Context, phase string, made []payment, want string, ledger []gatewaysim.LedgerEntry) error {
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
