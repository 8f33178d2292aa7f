package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/payment-outbox/payment-outbox/internal/benchseed"
)

// results is everything a run found; it is also the JSON file.
type results struct {
	Date       string            `json:"date"`
	Seconds    float64           `json:"seconds"`
	Machine    machine           `json:"machine"`
	Settings   map[string]any    `json:"settings"`
	Auth       string            `json:"auth"`
	Durability string            `json:"durability"` // the server's fsync, synchronous_commit, full_page_writes
	Throughput []throughputLevel `json:"throughput"`
	Relay      []relayLevel      `json:"relay"`
	E2E        []e2eRun          `json:"e2e"`
	Overload   *overloadResult   `json:"overload,omitempty"`
	Growth     *growthPhase      `json:"growth,omitempty"`
	Goals      []goal            `json:"goals"`
	Checks     []checkResult     `json:"checks"`
	OK         bool              `json:"ok"`
}

// side is one system's figures at one concurrency level.
type side struct {
	PerSecond     float64            `json:"paymentsPerSec"` // median of the rounds
	Rounds        []float64          `json:"roundsPerSec"`
	Latency       latency            `json:"latencyMs"` // one payment (pgbench: one script run)
	Create        *latency           `json:"createMs,omitempty"`
	Confirm       *latency           `json:"confirmMs,omitempty"`
	Errors        map[string]int     `json:"errors,omitempty"`
	CPUPerPayment map[string]float64 `json:"cpuUsPerPayment"`
	// Write transactions (commits, each a WAL flush when durable) and WAL
	// bytes per payment, from the server's xid counter and WAL position.
	XactsPerPayment    float64 `json:"writeXactsPerPayment"`
	WALBytesPerPayment float64 `json:"walBytesPerPayment"`
	MachineBusy        float64 `json:"machineBusyPct"`
	Failed             int     `json:"failed,omitempty"`
	Aborted            bool    `json:"aborted,omitempty"`
	// pgbench same SQL: the median share of confirms, in
	// percent, that sent River's insert notification (notifyPct).
	NotifyPct float64 `json:"notifyPct,omitempty"`
}

type throughputLevel struct {
	Concurrency int       `json:"concurrency"`
	API         side      `json:"api"`
	Pgbench     side      `json:"pgbenchSameSQL"`
	Ratio       float64   `json:"ratio"` // api / pgbench (same SQL), median of per-round ratios
	Ratios      []float64 `json:"ratios"`
	// With -api-b: the second build's figures and its ratios (b/a: the
	// change's gain, rounds side by side).
	APIB    *side   `json:"apiB,omitempty"`
	RatioB  float64 `json:"ratioB,omitempty"`
	RatioBA float64 `json:"ratioBA,omitempty"`
}

// relayLevel is one relay configuration against its floor, rounds side by
// side.
type relayLevel struct {
	GatewayLatencyMs int64      `json:"gatewayLatencyMs"`
	Workers          int        `json:"workers"`
	Relay            relaySide  `json:"relay"`
	Tuned            *relaySide `json:"tuned,omitempty"` // the -tuned environment, 0ms only
	Floor            side       `json:"floor"`           // pgbench, the relay's floor SQL; "payments" are confirms
	FloorClients     int        `json:"floorClients"`
	Ratio            float64    `json:"ratio"` // relay steady / floor, median of per-round ratios
	Ratios           []float64  `json:"ratios"`
	RatioTuned       float64    `json:"ratioTuned,omitempty"`
	RatiosTuned      []float64  `json:"ratiosTuned,omitempty"`
}

// relaySide is one relay configuration's rounds.
type relaySide struct {
	Env                []string           `json:"env,omitempty"`
	PerSecond          float64            `json:"steadyPerSec"` // median of the rounds' steady rates
	Rounds             []float64          `json:"roundsSteadyPerSec"`
	FromStart          float64            `json:"confirmsPerSec"` // median, counted from starting the relay process
	CPUPerConfirm      map[string]float64 `json:"cpuUsPerConfirm"`
	XactsPerConfirm    float64            `json:"writeXactsPerConfirm"`
	WALBytesPerConfirm float64            `json:"walBytesPerConfirm"`
	MachineBusy        float64            `json:"machineBusyPct"`
	RelayPeakRSSMiB    float64            `json:"relayPeakRssMiB"`
	Runs               []drainRun         `json:"runs"`
}

// drainRun is one relay draining one backlog.
type drainRun struct {
	GatewayLatencyMs   int64              `json:"gatewayLatencyMs"`
	Workers            int                `json:"workers"`
	Env                []string           `json:"env,omitempty"`
	Backlog            int                `json:"backlog"`
	Confirmed          int                `json:"confirmed"`
	Seconds            float64            `json:"seconds"`         // relay start to the last confirm
	PerSecond          float64            `json:"confirmsPerSec"`  // Confirmed / Seconds
	SteadyPerSecond    float64            `json:"steadyPerSec"`    // between 10% and 90% done
	CPUPerConfirm      map[string]float64 `json:"cpuUsPerConfirm"` // relay, postgres, gatewaysim
	XactsPerConfirm    float64            `json:"writeXactsPerConfirm"`
	WALBytesPerConfirm float64            `json:"walBytesPerConfirm"`
	MachineBusy        float64            `json:"machineBusyPct"`
	RelayPeakRSSMiB    float64            `json:"relayPeakRssMiB"`
}

type e2eRun struct {
	OfferedPerSecond  float64            `json:"offeredPerSec"`
	AchievedPerSecond float64            `json:"achievedPerSec"`
	Seconds           float64            `json:"seconds"`
	Payments          int                `json:"payments"`
	Missed            int                `json:"missed"`
	Errors            map[string]int     `json:"errors,omitempty"`
	Workers           int                `json:"relayWorkers"`
	Env               []string           `json:"relayEnv,omitempty"`
	API               latency            `json:"apiMs"` // create + confirm, from the scheduled start
	E2E               latency            `json:"e2eMs"` // confirm accepted → confirmed
	PeakRSSMiB        map[string]float64 `json:"peakRssMiB"`
	RSSMiB            map[string]float64 `json:"rssAtEndMiB"`
	CPUPerPayment     map[string]float64 `json:"cpuUsPerPayment"`
	MachineBusy       float64            `json:"machineBusyPct"`
}

// goal is one of the targets and where this run stands.
type goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	Note     string `json:"note,omitempty"`
}

// The goals of issue 11 are ratios to a floor measured in the same rounds,
// so that they mean the same on any machine: what the api and the relay add
// on top of the SQL they cannot do without.
const (
	goalAPIRatio   = 0.7 // api ≥ 0.7 × pgbench (same SQL), at every concurrency
	goalRelayRatio = 0.6 // relay ≥ 0.6 × its floor, at 0ms and at 50ms with enough workers
	// Overload, with the default admission cap, at twice the maximum: the
	// accepted payments' p99 ≤ 2 × the unloaded p99, and the api's RSS
	// "flat": its peak during the run at most 50 MiB above its start.
	goalOverloadP99   = 2.0
	goalOverloadRSSMi = 50.0
	// Growth: each figure on the grown tables (api/s, pgbench/s, relay/s,
	// floor/s) at least 0.9 × its empty-table figure.
	goalGrowth = 0.9
)

func evaluateGoals(r *results) []goal {
	var goals []goal

	if len(r.Throughput) > 0 {
		g := goal{Goal: fmt.Sprintf("api ≥ %.1f × pgbench (same SQL), payments/s", goalAPIRatio), Met: true}
		var parts []string
		for _, t := range r.Throughput {
			parts = append(parts, fmt.Sprintf("%.2f", t.Ratio))
			if t.Ratio < goalAPIRatio {
				g.Met = false
			}
		}
		g.Measured = fmt.Sprintf("%s at c=%s", strings.Join(parts, " / "), joinInts(levelsOf(r)))
		goals = append(goals, g)
	}

	var at0, at50 []relayLevel
	for _, l := range r.Relay {
		if l.GatewayLatencyMs == 0 {
			at0 = append(at0, l)
		} else if l.GatewayLatencyMs == 50 {
			at50 = append(at50, l)
		}
	}
	if len(at0) > 0 {
		l := at0[0]
		g := goal{
			Goal:     fmt.Sprintf("relay ≥ %.1f × floor, gateway 0ms", goalRelayRatio),
			Measured: fmt.Sprintf("%.2f (%.0f/s of %.0f/s, %d workers, defaults)", l.Ratio, l.Relay.PerSecond, l.Floor.PerSecond, l.Workers),
			Met:      l.Ratio >= goalRelayRatio,
		}
		if l.Tuned != nil {
			g.Note = fmt.Sprintf("%.2f with %s", l.RatioTuned, strings.Join(l.Tuned.Env, " "))
		}
		goals = append(goals, g)
	}
	if len(at50) > 0 {
		// "With enough workers": the best of the worker counts tried.
		best := at50[0]
		var parts []string
		for _, l := range at50 {
			parts = append(parts, fmt.Sprintf("%.2f", l.Ratio))
			if l.Ratio > best.Ratio {
				best = l
			}
		}
		goals = append(goals, goal{
			Goal:     fmt.Sprintf("relay ≥ %.1f × floor, gateway 50ms (enough workers)", goalRelayRatio),
			Measured: fmt.Sprintf("%s at %s workers", strings.Join(parts, " / "), joinInts(workersOf(at50))),
			Met:      best.Ratio >= goalRelayRatio,
			Note:     fmt.Sprintf("best %.0f/s of %.0f/s with RELAY_WORKERS=%d (default 50)", best.Relay.PerSecond, best.Floor.PerSecond, best.Workers),
		})
	}
	if o := r.Overload; o != nil {
		c, u := o.Capped, o.Uncapped
		goals = append(goals, goal{
			Goal: fmt.Sprintf("overload %.0f× max, default cap: accepted p99 ≤ %.0f × unloaded p99", o.Factor, goalOverloadP99),
			Measured: fmt.Sprintf("%.2f (%.1f ms of %.1f ms; %.0f%% refused)",
				c.P99Ratio, c.Latency.P99, o.Unloaded.Latency.P99, 100*c.RefusedShare),
			Met:  o.Unloaded.Latency.P99 > 0 && c.Latency.N > 0 && c.P99Ratio <= goalOverloadP99,
			Note: fmt.Sprintf("no cap: %.2f (%.1f ms), %.0f%% failed", u.P99Ratio, u.Latency.P99, 100*u.FailedShare),
		})
		goals = append(goals, goal{
			Goal: fmt.Sprintf("overload %.0f× max, default cap: api RSS peak ≤ start + %.0f MiB", o.Factor, goalOverloadRSSMi),
			Measured: fmt.Sprintf("+%.0f MiB (%.0f → peak %.0f, end %.0f)",
				c.RSSPeakMiB-c.RSSStartMiB, c.RSSStartMiB, c.RSSPeakMiB, c.RSSEndMiB),
			Met:  c.RSSStartMiB > 0 && c.RSSPeakMiB-c.RSSStartMiB <= goalOverloadRSSMi,
			Note: fmt.Sprintf("no cap: +%.0f MiB (%.0f → peak %.0f)", u.RSSPeakMiB-u.RSSStartMiB, u.RSSStartMiB, u.RSSPeakMiB),
		})
	}
	if gr := r.Growth; gr != nil && gr.Grown.API > 0 {
		e, g := gr.Empty, gr.Grown
		met := true
		var parts []string
		for _, f := range []struct {
			name         string
			empty, grown float64
		}{{"api", e.API, g.API}, {"pgbench", e.Pgbench, g.Pgbench}, {"relay", e.Relay, g.Relay}, {"floor", e.Floor, g.Floor}} {
			q := 0.0
			if f.empty > 0 {
				q = f.grown / f.empty
			}
			if q < goalGrowth {
				met = false
			}
			parts = append(parts, fmt.Sprintf("%s %.2f", f.name, q))
		}
		goals = append(goals, goal{
			Goal:     fmt.Sprintf("grown to %s payments: each figure ≥ %.1f × empty", humanCount(gr.Payments), goalGrowth),
			Measured: strings.Join(parts, ", ") + " (grown ÷ empty)",
			Met:      met,
			Note:     fmt.Sprintf("ratios: api÷pgbench %.2f → %.2f, relay÷floor %.2f → %.2f", e.APIRatio, g.APIRatio, e.RelayRatio, g.RelayRatio),
		})
	}
	return goals
}

// humanCount writes 10000000 as 10M and 200000 as 200k.
func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), ".0") + "M"
	case n >= 1000 && n%100 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), ".0") + "k"
	}
	return fmt.Sprint(n)
}

func levelsOf(r *results) []int {
	var out []int
	for _, t := range r.Throughput {
		out = append(out, t.Concurrency)
	}
	return out
}

func workersOf(d []relayLevel) []int {
	var out []int
	for _, x := range d {
		out = append(out, x.Workers)
	}
	return out
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, "/")
}

// printReport prints the run as plain-text tables.
func printReport(w io.Writer, r *results) {
	m := r.Machine
	fmt.Fprintf(w, "\npayment outbox benchmark, %s (%.0fs)\n", r.Date, r.Seconds)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %.1f GiB, Linux %s, PostgreSQL %s, %s, commit %s\n",
		m.CPUs, m.CPUModel, m.MemGiB, m.Kernel, m.Postgres, m.Go, m.Commit)
	fmt.Fprintf(w, "auth: %s\n", r.Auth)
	fmt.Fprintf(w, "postgres durability: %s\n", r.Durability)

	if len(r.Throughput) > 0 {
		fmt.Fprintf(w, "\n1. API vs pgbench: payments/s (create + confirm), closed loop, relay stopped; median (min–max) of %v rounds of %v, pgbench after a %v warm-up each\n",
			r.Settings["rounds"], r.Settings["round"], r.Settings["warm"])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "conc\tapi/s\tp50 ms\tp99 ms\tpgbench/s\tp50 ms\tp99 ms\tRATIO\terrors\t")
		for _, t := range r.Throughput {
			a, p := t.API, t.Pgbench
			fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.1f\t%s\t%.1f\t%.1f\t%s\t%d\t\n",
				t.Concurrency, spread(a.Rounds, "%.0f"), a.Latency.P50, a.Latency.P99,
				spread(p.Rounds, "%.0f"), p.Latency.P50, p.Latency.P99, spread(t.Ratios, "%.2f"),
				sumErrors(a.Errors)+p.Failed)
		}
		tw.Flush()
		if r.Throughput[0].APIB != nil {
			fmt.Fprintf(w, "   api-b (%v):\n", r.Settings["apiB"])
			for _, t := range r.Throughput {
				fmt.Fprintf(w, "   c=%-3d api-b %.0f/s (p50 %.1f p99 %.1f ms), b/a %.2f, b/pgbench same SQL %.2f, api-b CPU µs/payment %.0f (a: %.0f), postgres %.0f (a: %.0f)\n",
					t.Concurrency, t.APIB.PerSecond, t.APIB.Latency.P50, t.APIB.Latency.P99, t.RatioBA, t.RatioB,
					t.APIB.CPUPerPayment["api"], t.API.CPUPerPayment["api"], t.APIB.CPUPerPayment["postgres"], t.API.CPUPerPayment["postgres"])
			}
		}
		fmt.Fprintln(w, "   per call (api):           create p50/p99 ms   confirm p50/p99 ms   CPU µs per payment: api  postgres  client | pgbench run: postgres  client   machine busy api/pgbench")
		for _, t := range r.Throughput {
			a, p := t.API, t.Pgbench
			if a.Create == nil {
				a.Create, a.Confirm = &latency{}, &latency{}
			}
			fmt.Fprintf(w, "   c=%-3d                    %6.1f / %-6.1f     %6.1f / %-6.1f                      %5.0f  %8.0f  %6.0f |           %8.0f  %6.0f   %3.0f%% / %3.0f%%\n",
				t.Concurrency, a.Create.P50, a.Create.P99, a.Confirm.P50, a.Confirm.P99,
				a.CPUPerPayment["api"], a.CPUPerPayment["postgres"], a.CPUPerPayment["bench"],
				p.CPUPerPayment["postgres"], p.CPUPerPayment["pgbench"], a.MachineBusy, p.MachineBusy)
		}
		fmt.Fprintln(w, "   in Postgres, per payment: write transactions (each a commit, a WAL flush when durable), WAL KiB; api / pgbench same SQL")
		for _, t := range r.Throughput {
			a, p := t.API, t.Pgbench
			fmt.Fprintf(w, "   c=%-3d                    xacts %4.1f / %-4.1f   WAL %5.1f / %-5.1f\n",
				t.Concurrency, a.XactsPerPayment, p.XactsPerPayment, a.WALBytesPerPayment/1024, p.WALBytesPerPayment/1024)
		}
	}

	if len(r.Relay) > 0 {
		fmt.Fprintf(w, "\n2. Relay vs its floor: confirms/s draining a backlog of %v (steady: 10%%–90%% done) against pgbench running the floor's SQL with %d clients on the same backlog; median (min–max) of %v rounds\n",
			r.Settings["backlog"], r.Relay[0].FloorClients, r.Settings["rounds"])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "gateway\tworkers\trelay env\trelay steady/s\tfrom start/s\tfloor/s\tRATIO\trelay µs/conf\tpg µs/conf\tsim µs/conf\tfloor pg µs/conf\txacts/conf relay/floor\tWAL KiB/conf\tbusy\trelay RSS MiB\t")
		row := func(l relayLevel, s relaySide, ratios []float64) {
			env := strings.Join(s.Env, " ")
			if env == "" {
				env = "defaults"
			}
			fmt.Fprintf(tw, "%dms\t%d\t%s\t%s\t%.0f\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f / %.1f\t%.1f / %.1f\t%.0f%%\t%.0f\t\n",
				l.GatewayLatencyMs, l.Workers, env, spread(s.Rounds, "%.0f"), s.FromStart, spread(l.Floor.Rounds, "%.0f"), spread(ratios, "%.2f"),
				s.CPUPerConfirm["relay"], s.CPUPerConfirm["postgres"], s.CPUPerConfirm["gatewaysim"], l.Floor.CPUPerPayment["postgres"],
				s.XactsPerConfirm, l.Floor.XactsPerPayment, s.WALBytesPerConfirm/1024, l.Floor.WALBytesPerPayment/1024,
				s.MachineBusy, s.RelayPeakRSSMiB)
		}
		for _, l := range r.Relay {
			row(l, l.Relay, l.Ratios)
			if l.Tuned != nil {
				row(l, *l.Tuned, l.RatiosTuned)
			}
		}
		tw.Flush()
		for _, l := range r.Relay {
			if l.Floor.Aborted {
				fmt.Fprintf(w, "   note: a floor run at %dms/%d workers aborted (see .run/bench); its rate counts up to its last confirm\n", l.GatewayLatencyMs, l.Workers)
			}
		}
	}

	for i, e := range r.E2E {
		if i == 0 {
			fmt.Fprintf(w, "\n3. End to end: steady offered load (open loop) for %.0fs, gateway 0ms, relay %d workers; e2e = confirm accepted → confirmed (row timestamps)\n",
				e.Seconds, e.Workers)
			fmt.Fprintln(w, "   offered  relay env                       achieved/s  missed  errors | api p50/p99 ms | e2e p50  p95  p99  max ms | peak RSS MiB api relay sim | CPU µs/payment api relay pg  busy")
		}
		env := strings.Join(e.Env, " ")
		if env == "" {
			env = "defaults"
		}
		fmt.Fprintf(w, "   %5.0f/s  %-31s %8.0f  %6d  %6d | %5.1f / %-6.1f | %7.1f %5.1f %5.1f %6.1f | %14.0f %5.0f %4.0f | %15.0f %5.0f %4.0f %4.0f%%\n",
			e.OfferedPerSecond, env, e.AchievedPerSecond, e.Missed, sumErrors(e.Errors), e.API.P50, e.API.P99,
			e.E2E.P50, e.E2E.P95, e.E2E.P99, e.E2E.Max,
			e.PeakRSSMiB["api"], e.PeakRSSMiB["relay"], e.PeakRSSMiB["gatewaysim"],
			e.CPUPerPayment["api"], e.CPUPerPayment["relay"], e.CPUPerPayment["postgres"], e.MachineBusy)
	}

	if o := r.Overload; o != nil {
		fmt.Fprintf(w, "\n4. Overload: open loop, payments (create + confirm) offered for %.0fs, relay stopped; max %.0f/s from %s; refused = either call 503 overloaded (not retried), failed = any other error or timeout; latency of the accepted, from the scheduled start\n",
			o.Seconds, o.MaxPerSec, o.MaxFrom)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "run\tapi\toffered/s\taccepted/s\trefused\tfailed\tmissed\tp50 ms\tp99 ms\tp99/unloaded\tRSS MiB start\tpeak\tend\tCPU s api\tpg\tbench\tbusy\t")
		for _, x := range []struct {
			name string
			run  overloadRun
		}{{"unloaded", o.Unloaded}, {fmt.Sprintf("%.0f× max", o.Factor), o.Capped}, {fmt.Sprintf("%.0f× max", o.Factor), o.Uncapped}} {
			ratio := "-"
			if x.run.P99Ratio > 0 {
				ratio = fmt.Sprintf("%.2f", x.run.P99Ratio)
			}
			c := x.run.CPUSeconds
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.1f%%\t%.1f%%\t%d\t%.1f\t%.1f\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.0f%%\t\n",
				x.name, x.run.APIEnv, x.run.OfferedPerSec, x.run.AcceptedPerSec, 100*x.run.RefusedShare, 100*x.run.FailedShare,
				x.run.Missed, x.run.Latency.P50, x.run.Latency.P99, ratio, x.run.RSSStartMiB, x.run.RSSPeakMiB, x.run.RSSEndMiB,
				c["api"], c["postgres"], c["bench"], x.run.MachineBusy)
		}
		tw.Flush()
		for _, x := range []overloadRun{o.Capped, o.Uncapped} {
			if len(x.Errors) > 0 {
				fmt.Fprintf(w, "   failures with %s: %v\n", x.APIEnv, x.Errors)
			}
		}
	}

	if gr := r.Growth; gr != nil {
		printGrowth(w, gr)
	}

	if len(r.Goals) > 0 {
		fmt.Fprintln(w, "\nGoals")
		for _, g := range r.Goals {
			mark := "NOT MET"
			if g.Met {
				mark = "met"
			}
			fmt.Fprintf(w, "   %-7s  %-62s %s", mark, g.Goal, g.Measured)
			if g.Note != "" {
				fmt.Fprintf(w, "  [%s]", g.Note)
			}
			fmt.Fprintln(w)
		}
	}

	fmt.Fprintln(w, "\nChecks (every accepted payment in the expected state with one job; gateway: exactly one approval each)")
	total := 0
	for _, c := range r.Checks {
		verdict := "ok"
		if len(c.Problems) > 0 {
			verdict = fmt.Sprintf("%d PROBLEMS: %s", len(c.Problems), strings.Join(c.Problems[:min(3, len(c.Problems))], "; "))
		}
		extra := ""
		if c.Retried > 0 {
			extra = fmt.Sprintf(", %d retried", c.Retried)
		}
		fmt.Fprintf(w, "   %-58s %6d accepted, %6d in state, %6d approvals%s: %s\n", c.Phase, c.Accepted, c.Final, c.Approvals, extra, verdict)
		for _, n := range c.Notes[:min(3, len(c.Notes))] {
			fmt.Fprintf(w, "   %-58s note: %s\n", "", n)
		}
		total += c.Accepted
	}
	verdict := "OK: no payment lost, none charged twice"
	if !r.OK {
		verdict = "FAILED: payments lost or wrong"
	}
	fmt.Fprintf(w, "   %d payments checked: %s\n", total, verdict)
}

func sumErrors(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
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

// printGrowth prints the cost as it grows: the api's and the relay's figures
// on empty and grown tables, and what the grown tables cost on disk.
func printGrowth(w io.Writer, gr *growthPhase) {
	fp := gr.Seed.Footprint
	fmt.Fprintf(w, "\n5. Cost as it grows: %s payments seeded server-side (%.0fs, %.0f payments/s, %.0f rows/s), "+
		"then api vs pgbench at c=%d and relay vs floor at gateway 0ms, %d workers, again; empty figures from %s\n",
		humanCount(gr.Payments), gr.Seed.Seed.Seconds, gr.Seed.Seed.PaymentsPerSecond, gr.Seed.Seed.RowsPerSecond,
		gr.Concurrency, gr.Workers, gr.EmptyFrom)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tapi/s\tpgbench/s\tapi÷pgbench\trelay/s\tfloor/s\trelay÷floor\t")
	row := func(name string, f growthFigures) {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%.0f\t%.0f\t%.2f\t\n", name, f.API, f.Pgbench, f.APIRatio, f.Relay, f.Floor, f.RelayRatio)
	}
	row("empty", gr.Empty)
	row(humanCount(gr.Payments), gr.Grown)
	q := func(a, b float64) string {
		if b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	e, g := gr.Empty, gr.Grown
	fmt.Fprintf(tw, "grown÷empty\t%s\t%s\t%s\t%s\t%s\t%s\t\n", q(g.API, e.API), q(g.Pgbench, e.Pgbench), q(g.APIRatio, e.APIRatio),
		q(g.Relay, e.Relay), q(g.Floor, e.Floor), q(g.RelayRatio, e.RelayRatio))
	tw.Flush()
	if len(fp.Tables) > 0 {
		fmt.Fprintf(w, "   on disk (after VACUUM ANALYZE, tables with their indexes and TOAST):\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "   table\trows\theap\tindexes\ttotal\tbytes/payment\t")
		for _, t := range fp.Tables {
			fmt.Fprintf(tw, "   %s\t%d\t%s\t%s\t%s\t%.0f\t\n", t.Table, t.Rows, benchseed.MB(t.Heap+t.Toast), benchseed.MB(t.Indexes), benchseed.MB(t.Total), t.Per)
		}
		fmt.Fprintf(tw, "   all\t\t\t\t%s\t%.0f\t\n", benchseed.MB(fp.TotalBytes), fp.BytesPerPayment)
		tw.Flush()
	}
}
