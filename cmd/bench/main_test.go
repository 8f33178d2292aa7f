package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	t.Parallel()

	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	require.Equal(t, 100, l.N)
	require.InDelta(t, 50, l.P50, 1e-9)
	require.InDelta(t, 95, l.P95, 1e-9)
	require.InDelta(t, 99, l.P99, 1e-9)
	require.InDelta(t, 100, l.Max, 1e-9)
	require.Equal(t, latency{}, summarize(nil))
}

func TestMedian(t *testing.T) {
	t.Parallel()

	require.InDelta(t, 2.0, median([]float64{3, 1, 2}), 1e-9)
	require.InDelta(t, 2.5, median([]float64{4, 1, 2, 3}), 1e-9)
	require.Zero(t, median(nil))
}

func TestReadPgbenchLog(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "pgbench-tx.123")
	log := "0 0 1532 0 1700000000 123456\n0 1 2044 0 1700000001 125000\n1 0 failed 0 1700000001 126000\n"
	require.NoError(t, os.WriteFile(path, []byte(log), 0o644))
	txs, err := readPgbenchLog(path)
	require.NoError(t, err)
	require.Equal(t, []pgbenchTx{
		{client: 0, end: time.Unix(1700000000, 123456000), latency: 1532 * time.Microsecond},
		{client: 0, end: time.Unix(1700000001, 125000000), latency: 2044 * time.Microsecond},
	}, txs)
}

func TestMeasured(t *testing.T) {
	t.Parallel()

	t0 := time.Unix(1700000000, 0)
	tx := func(ms int) pgbenchTx {
		return pgbenchTx{end: t0.Add(time.Duration(ms) * time.Millisecond), latency: time.Duration(ms) * time.Microsecond}
	}
	// The warm-up's transactions (before 1s) are not counted.
	txs := []pgbenchTx{tx(100), tx(900), tx(1000), tx(1500), tx(2999), tx(3000), tx(3100)}
	n, lat, window := measured(txs, t0.Add(time.Second), t0.Add(3*time.Second))
	require.Equal(t, 4, n)
	require.Equal(t, []time.Duration{1000 * time.Microsecond, 1500 * time.Microsecond, 2999 * time.Microsecond, 3000 * time.Microsecond}, lat)
	require.Equal(t, 2*time.Second, window)

	// A run that ended early is measured up to its last transaction.
	n, _, window = measured(txs[:4], t0.Add(time.Second), t0.Add(3*time.Second))
	require.Equal(t, 2, n)
	require.Equal(t, 500*time.Millisecond, window)

	n, _, window = measured(txs[:2], t0.Add(time.Second), t0.Add(3*time.Second))
	require.Zero(t, n)
	require.Zero(t, window)

	// A client whose first transaction ended late (a pile-up of fresh
	// backends) moves the window's start to that moment.
	late := append(slices.Clone(txs), pgbenchTx{client: 1, end: t0.Add(1500 * time.Millisecond)})
	n, _, window = measured(late, t0.Add(time.Second), t0.Add(3*time.Second))
	require.Equal(t, 4, n) // 1500 (both), 2999, 3000
	require.Equal(t, 1500*time.Millisecond, window)
}

func TestSpread(t *testing.T) {
	t.Parallel()

	require.Equal(t, "-", spread(nil, "%.0f"))
	require.Equal(t, "7", spread([]float64{7}, "%.0f"))
	require.Equal(t, "0.70 (0.50–0.90)", spread([]float64{0.9, 0.5, 0.7}, "%.2f"))
}

func TestParseSettings(t *testing.T) {
	t.Parallel()

	_, err := parseSettings(nil, os.Stderr)
	require.ErrorContains(t, err, "-db is required")

	s, err := parseSettings([]string{"-db", "postgres://x", "-quick"}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, 2000, s.backlog)
	require.Equal(t, 3, s.rounds)
	require.Equal(t, time.Second, s.warm)
	require.Equal(t, []int{50, 200}, s.workers)
	require.Equal(t, []float64{500, 200}, s.rates)
	require.True(t, s.phases["throughput"] && s.phases["relay"] && s.phases["e2e"] && s.phases["overload"])
	require.Equal(t, 5*time.Second, s.overloadFor)

	s, err = parseSettings([]string{"-db", "postgres://x", "-phases", "drain"}, os.Stderr)
	require.NoError(t, err)
	require.True(t, s.phases["relay"], "drain is the relay phase's old name")

	_, err = parseSettings([]string{"-db", "postgres://x", "-phases", "nope"}, os.Stderr)
	require.ErrorContains(t, err, "unknown phase")
}

func TestEvaluateGoals(t *testing.T) {
	t.Parallel()

	r := &results{
		Throughput: []throughputLevel{{Concurrency: 8, Ratio: 0.8}, {Concurrency: 32, Ratio: 0.69}, {Concurrency: 64, Ratio: 0.9}},
		Relay: []relayLevel{
			{GatewayLatencyMs: 0, Workers: 50, Ratio: 0.61, Tuned: &relaySide{Env: []string{"X=1"}}, RatioTuned: 0.8},
			{GatewayLatencyMs: 50, Workers: 50, Ratio: 0.2},
			{GatewayLatencyMs: 50, Workers: 200, Ratio: 0.65},
		},
	}
	goals := evaluateGoals(r)
	require.Len(t, goals, 3)
	require.False(t, goals[0].Met, "c=32 below 0.7")
	require.Contains(t, goals[0].Measured, "0.80 / 0.69 / 0.90 at c=8/32/64")
	require.True(t, goals[1].Met, goals[1].Measured)
	require.Contains(t, goals[1].Note, "0.80 with X=1")
	require.True(t, goals[2].Met, "200 workers are enough")
	require.Contains(t, goals[2].Note, "RELAY_WORKERS=200")

	r.Relay[0].Ratio, r.Relay[2].Ratio = 0.59, 0.5
	goals = evaluateGoals(r)
	require.False(t, goals[1].Met)
	require.False(t, goals[2].Met)
}

func TestEvaluateOverloadGoals(t *testing.T) {
	t.Parallel()

	r := &results{Overload: &overloadResult{
		Factor:   2,
		Unloaded: overloadRun{Latency: latency{N: 100, P99: 20}},
		Capped: overloadRun{Latency: latency{N: 100, P99: 38}, P99Ratio: 1.9, RefusedShare: 0.5,
			RSSStartMiB: 30, RSSPeakMiB: 75, RSSEndMiB: 40},
		Uncapped: overloadRun{Latency: latency{N: 100, P99: 4000}, P99Ratio: 200, RSSStartMiB: 30, RSSPeakMiB: 300},
	}}
	goals := evaluateGoals(r)
	require.Len(t, goals, 2)
	require.True(t, goals[0].Met, goals[0].Measured)
	require.Contains(t, goals[0].Measured, "1.90 (38.0 ms of 20.0 ms; 50% refused)")
	require.Contains(t, goals[0].Note, "no cap: 200.00")
	require.True(t, goals[1].Met, "+45 MiB is within +50")
	require.Contains(t, goals[1].Measured, "+45 MiB (30 → peak 75, end 40)")

	r.Overload.Capped.P99Ratio, r.Overload.Capped.RSSPeakMiB = 2.1, 81
	goals = evaluateGoals(r)
	require.False(t, goals[0].Met, "p99 above 2 × unloaded")
	require.False(t, goals[1].Met, "+51 MiB")

	// Nothing accepted, or no RSS read, is not a goal met.
	r.Overload.Capped = overloadRun{}
	goals = evaluateGoals(r)
	require.False(t, goals[0].Met)
	require.False(t, goals[1].Met)
}

func TestRefusedCountsApart(t *testing.T) {
	t.Parallel()

	var r loadResult
	kind := answerError("confirm", 503, 202, "confirming", apiAnswer{Code: "overloaded"}, nil)
	r.record(payment{orderID: "o1", id: "p1"}, time.Millisecond, 0, 0, kind)
	r.record(payment{orderID: "o2"}, time.Millisecond, 0, 0, answerError("create", 503, 201, "ready", apiAnswer{Code: "unavailable"}, nil))
	r.record(payment{orderID: "o3", id: "p3", accepted: true}, time.Millisecond, 0, 0, "")
	require.Equal(t, 1, r.Refused)
	require.Equal(t, map[string]int{"create: HTTP 503 unavailable": 1}, r.Errors)
	require.Equal(t, 1, r.Payments)
	require.Len(t, r.total, 1)
	require.Equal(t, map[string]int{"create: HTTP 503 unavailable": 1, "refused: 503 overloaded": 1}, r.errorsAndRefused())
}

func TestNotifyPct(t *testing.T) {
	t.Parallel()

	require.Equal(t, 10, notifyPct(1000)) // 100 notifications a second of 1000 confirms
	require.Equal(t, 33, notifyPct(300))
	require.Equal(t, 100, notifyPct(50)) // every confirm, below 100/s
	require.Equal(t, 1, notifyPct(50000))
	require.Equal(t, 10, notifyPct(0)) // no api rate yet
}

func TestEvaluateGrowthGoal(t *testing.T) {
	t.Parallel()

	empty := growthFigures{API: 1000, Pgbench: 1200, APIRatio: 0.83, Relay: 800, Floor: 1000, RelayRatio: 0.8}
	grown := growthFigures{API: 950, Pgbench: 1100, APIRatio: 0.86, Relay: 730, Floor: 950, RelayRatio: 0.77}
	r := &results{Growth: &growthPhase{Payments: 10_000_000, Empty: empty, Grown: grown}}
	goals := evaluateGoals(r)
	require.Len(t, goals, 1)
	require.True(t, goals[0].Met, goals[0].Measured)
	require.Contains(t, goals[0].Goal, "10M payments")
	require.Contains(t, goals[0].Measured, "api 0.95, pgbench 0.92, relay 0.91, floor 0.95")
	require.Contains(t, goals[0].Note, "relay÷floor 0.80 → 0.77")

	r.Growth.Grown.Floor = 890 // 0.89 of the empty floor
	goals = evaluateGoals(r)
	require.False(t, goals[0].Met, goals[0].Measured)

	// A phase that did not get as far as the grown runs sets no goal.
	r.Growth.Grown = growthFigures{}
	require.Empty(t, evaluateGoals(r))
}

func TestHumanCount(t *testing.T) {
	t.Parallel()
	require.Equal(t, "10M", humanCount(10_000_000))
	require.Equal(t, "1.5M", humanCount(1_500_000))
	require.Equal(t, "200k", humanCount(200_000))
	require.Equal(t, "1234567", humanCount(1_234_567))
}
