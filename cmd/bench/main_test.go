package main

import (
	"os"
	"path/filepath"
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
	log := "0 0 1532 0 1700000000 123456\n0 1 2044 0 1700000000 125000\n1 0 failed 0 1700000000 126000\n"
	require.NoError(t, os.WriteFile(path, []byte(log), 0o644))
	lat, err := readPgbenchLog(path)
	require.NoError(t, err)
	require.Equal(t, []time.Duration{1532 * time.Microsecond, 2044 * time.Microsecond}, lat)
}

func TestParseSettings(t *testing.T) {
	t.Parallel()

	_, err := parseSettings(nil, os.Stderr)
	require.ErrorContains(t, err, "-db is required")

	s, err := parseSettings([]string{"-db", "postgres://x", "-quick"}, os.Stderr)
	require.NoError(t, err)
	require.Equal(t, 5000, s.backlog)
	require.Equal(t, []int{50, 200}, s.workers)
	require.Equal(t, []float64{500, 200}, s.rates)
	require.True(t, s.phases["throughput"] && s.phases["drain"] && s.phases["e2e"])

	_, err = parseSettings([]string{"-db", "postgres://x", "-phases", "nope"}, os.Stderr)
	require.ErrorContains(t, err, "unknown phase")
}

func TestEvaluateGoals(t *testing.T) {
	t.Parallel()

	r := &results{
		Throughput: []throughputLevel{{Concurrency: 8, Ratio: 0.7}, {Concurrency: 32, Ratio: 0.5}},
		Drain: []drainRun{
			{GatewayLatencyMs: 0, Workers: 50, PerSecond: 3100},
			{GatewayLatencyMs: 50, Workers: 50, PerSecond: 400},
			{GatewayLatencyMs: 50, Workers: 100, PerSecond: 800},
			{GatewayLatencyMs: 50, Workers: 200, PerSecond: 1600},
		},
		E2E: []e2eRun{
			{OfferedPerSecond: 500, AchievedPerSecond: 499, E2E: latency{N: 10, P50: 20, P99: 100}},
			{OfferedPerSecond: 200, AchievedPerSecond: 200, E2E: latency{N: 10, P50: 900, P99: 900}},
		},
	}
	goals := evaluateGoals(r)
	require.Len(t, goals, 4) // the 200/s run is context, not a goal
	require.False(t, goals[0].Met, "one level below 0.6")
	require.True(t, goals[1].Met)
	require.True(t, goals[2].Met, goals[2].Note)
	require.True(t, goals[3].Met)
}
