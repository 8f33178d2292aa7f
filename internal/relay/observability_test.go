package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/relay"
)

// metricValue sums the series of a family whose labels include the given
// name, value pairs.
func metricValue(t *testing.T, reg *metrics.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func newRelayMetrics() (*metrics.Registry, *metrics.Relay) {
	reg := metrics.NewRegistry(nil)
	return reg, metrics.NewRelay(reg)
}

func TestMetrics(t *testing.T) {
	t.Parallel()

	t.Run("CallsRetriesOutcomes", func(t *testing.T) {
		t.Parallel()
		reg, m := newRelayMetrics()
		b := setup(t, setupOpts{metrics: m})

		p, key := b.newPayment(t, 20000, nil)
		// Two different transient answers: the same one twice would be taken
		// for a cached replay and looked up.
		b.script(t, key, gatewaysim.OperationConfirm,
			step(gatewaysim.StepError, "PROVIDER_ERROR"),
			step(gatewaysim.StepError, "FAILED_INTERNAL_SYSTEM_PROCESSING"))
		b.requestConfirm(t, p.ID, key, 20000, nil)
		declined, declinedKey := b.newPayment(t, 3000, nil)
		b.script(t, declinedKey, gatewaysim.OperationConfirm, step(gatewaysim.StepError, "REJECT_CARD_COMPANY"))
		b.requestConfirm(t, declined.ID, declinedKey, 3000, nil)

		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		b.waitStatus(t, declined.ID, payment.StatusFailed)
		b.requestCancel(t, p.ID, 0)
		b.waitStatus(t, p.ID, payment.StatusCanceled)
		b.waitDrained(t)

		calls := func(op, class string) float64 {
			return metricValue(t, reg, "payment_outbox_gateway_calls_total", "operation", op, "class", class)
		}
		require.Equal(t, 2.0, calls("confirm", "transient"))
		require.Equal(t, 1.0, calls("confirm", "success"))
		require.Equal(t, 1.0, calls("confirm", "refused"))
		require.Equal(t, 1.0, calls("cancel", "success"))
		require.Equal(t, 0.0, calls("lookup", "success"))
		require.Equal(t, 5.0, metricValue(t, reg, "payment_outbox_gateway_call_duration_seconds"))
		require.Equal(t, 2.0, metricValue(t, reg, "payment_outbox_relay_retries_total", "operation", "confirm"))
		require.Equal(t, 0.0, metricValue(t, reg, "payment_outbox_relay_snoozes_total"))

		outcome := func(status string) float64 {
			return metricValue(t, reg, "payment_outbox_relay_outcomes_total", "status", status)
		}
		require.Equal(t, 1.0, outcome("confirmed"))
		require.Equal(t, 1.0, outcome("failed"))
		require.Equal(t, 1.0, outcome("canceled"))
		require.Equal(t, 3.0, metricValue(t, reg, "payment_outbox_relay_outcomes_total"), "one per committed change")
		require.Equal(t, 0.0, metricValue(t, reg, "payment_outbox_breaker_state"))
	})

	t.Run("KeyRotation", func(t *testing.T) {
		t.Parallel()
		reg, m := newRelayMetrics()
		b := setup(t, setupOpts{metrics: m})
		b.replayCachedErrors(t)
		p, key := b.newPayment(t, 11000, nil)
		b.script(t, key, gatewaysim.OperationConfirm, step(gatewaysim.StepError, "CARD_PROCESSING_ERROR"))
		b.requestConfirm(t, p.ID, key, 11000, nil)

		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, 1.0, metricValue(t, reg, "payment_outbox_relay_key_rotations_total", "operation", "confirm"))
		// After each odd answer, and once more after the key rule's quiet
		// period: the lookup that earns the new key.
		require.Equal(t, 3.0, metricValue(t, reg, "payment_outbox_gateway_calls_total", "operation", "lookup", "class", "unclear"))
		// The job waits out the rest of the quiet period once, unless the
		// machine is slow enough that its next attempt comes after it.
		require.LessOrEqual(t, metricValue(t, reg, "payment_outbox_relay_snoozes_total", "operation", "confirm", "reason", "key_quiet"), 1.0)
	})

	t.Run("Breaker", func(t *testing.T) {
		t.Parallel()
		reg, m := newRelayMetrics()
		br := relay.NewBreaker(relay.BreakerConfig{
			Threshold: 3, Cooldown: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Metrics: m,
		})
		require.Equal(t, 0.0, metricValue(t, reg, "payment_outbox_breaker_state"), "closed from the start")
		b := setup(t, setupOpts{breaker: br, metrics: m})
		cfg := b.sim.Config()
		cfg.Down = true
		require.NoError(t, b.sim.SetConfig(cfg))

		var ids []string
		for range 5 {
			p, key := b.newPayment(t, 2000, nil)
			b.requestConfirm(t, p.ID, key, 2000, nil)
			ids = append(ids, p.ID)
		}
		require.Eventually(t, func() bool {
			return metricValue(t, reg, "payment_outbox_relay_snoozes_total", "reason", metrics.SnoozeBreakerOpen) > 0
		}, 10*time.Second, 5*time.Millisecond)
		require.GreaterOrEqual(t, metricValue(t, reg, "payment_outbox_breaker_openings_total"), 1.0)
		require.GreaterOrEqual(t, metricValue(t, reg, "payment_outbox_breaker_state"), 1.0, "open, or half-open with a probe out")

		cfg.Down = false
		require.NoError(t, b.sim.SetConfig(cfg))
		for _, id := range ids {
			b.waitStatus(t, id, payment.StatusConfirmed)
		}
		require.Equal(t, 0.0, metricValue(t, reg, "payment_outbox_breaker_state"))
	})

	t.Run("Misconfigured", func(t *testing.T) {
		t.Parallel()
		reg, m := newRelayMetrics()
		b := setup(t, setupOpts{secretKey: "test_sk_not_the_right_one", metrics: m})
		p, key := b.newPayment(t, 7000, nil)
		b.requestConfirm(t, p.ID, key, 7000, nil)

		require.Eventually(t, func() bool {
			return metricValue(t, reg, "payment_outbox_relay_snoozes_total",
				"operation", "confirm", "reason", metrics.SnoozeMisconfigured) >= 1
		}, 10*time.Second, 10*time.Millisecond)
		require.GreaterOrEqual(t, metricValue(t, reg, "payment_outbox_gateway_calls_total", "class", "misconfigured"), 1.0)
		require.Equal(t, 0.0, metricValue(t, reg, "payment_outbox_relay_retries_total"), "a snooze is not a retry")
	})

	t.Run("ReconcilerLookups", func(t *testing.T) {
		t.Parallel()
		reg, m := newRelayMetrics()
		b := setup(t, setupOpts{paused: true, reconcile: true, metrics: m})
		p, key := b.newPayment(t, 17000, nil)
		b.force(t, p.ID, func(p *payment.Payment) { _, _ = p.RequestConfirm(key, 17000, time.Now()) })
		b.force(t, p.ID, func(p *payment.Payment) { p.GiveUpConfirm("no_answer", "retry budget spent") })
		// The gateway did charge (the relay's last answer was lost).
		res := b.gw.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: key, OrderID: p.OrderID, Amount: 17000}, "confirm-"+p.ID+"-1")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		b.start(t)

		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.GreaterOrEqual(t, metricValue(t, reg, "payment_outbox_reconciler_lookups_enqueued_total"), 1.0)
		require.Equal(t, 1.0, metricValue(t, reg, "payment_outbox_relay_outcomes_total", "status", "confirmed"))
	})
}

// lockedBuffer collects log lines written concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}

// TestLogsNameThePaymentAndJob: every log line about a payment job, the
// relay's and River's own, carries payment_id and job_id, once each.
func TestLogsNameThePaymentAndJob(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	b := setup(t, setupOpts{logs: &logs})

	p, key := b.newPayment(t, 20000, nil)
	b.script(t, key, gatewaysim.OperationConfirm, step(gatewaysim.StepError, "PROVIDER_ERROR"))
	b.requestConfirm(t, p.ID, key, 20000, nil)
	b.waitStatus(t, p.ID, payment.StatusConfirmed)
	b.requestCancel(t, p.ID, 5000)
	b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
	b.waitDrained(t)

	paymentKinds := map[string]bool{"payment_confirm": true, "payment_cancel": true, "payment_lookup": true}
	var msgs []string
	for _, raw := range logs.lines() {
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &l), raw)
		_, hasJob := l["job_id"]
		kind, _ := l["job_kind"].(string)
		if _, hasPayment := l["payment_id"]; hasPayment {
			require.True(t, hasJob, "a line about a payment names its job: %s", raw)
		}
		if !hasJob || !paymentKinds[kind] {
			continue
		}
		msgs = append(msgs, l["msg"].(string))
		require.Equal(t, p.ID, l["payment_id"], raw)
		require.Equal(t, 1, strings.Count(raw, `"payment_id"`), raw)
		require.Equal(t, 1, strings.Count(raw, `"job_id"`), raw)
	}
	require.Contains(t, msgs, "gateway call")
	require.True(t, slices.ContainsFunc(msgs, func(m string) bool { return strings.HasSuffix(m, "Job errored; retrying") }),
		"River's own line about the retry, in %q", msgs)
}

func TestJobLogging(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	jl := relay.NewJobLogging()
	logger := slog.New(jl.Handler(slog.NewJSONHandler(&logs, nil)))

	work := func(id int64, args string) {
		require.NoError(t, jl.Work(context.Background(), &rivertype.JobRow{ID: id, EncodedArgs: []byte(args)},
			func(context.Context) error { return nil }))
	}
	work(1, `{"paymentId":"p-1"}`)
	work(2, `{}`)

	logger.Info("about job 1", slog.Int64("job_id", 1))
	logger.Info("about job 2", slog.Int64("job_id", 2))
	logger.Info("already named", slog.Int64("job_id", 1), slog.String("payment_id", "p-x"))
	logger.With(slog.String("payment_id", "p-y")).Info("named by With", slog.Int64("job_id", 1))
	logger.WithGroup("g").Info("in a group", slog.Int64("job_id", 1))

	lines := logs.lines()
	require.Len(t, lines, 5)
	require.Contains(t, lines[0], `"payment_id":"p-1"`)
	require.NotContains(t, lines[1], "payment_id", "a job without a payment")
	require.Equal(t, 1, strings.Count(lines[2], "payment_id"))
	require.Contains(t, lines[2], `"payment_id":"p-x"`)
	require.Equal(t, 1, strings.Count(lines[3], "payment_id"))
	require.NotContains(t, lines[4], "p-1")

	// It remembers a bounded number of jobs, forgetting the oldest first.
	for id := int64(100); id < 100+5000; id++ {
		work(id, `{"paymentId":"p-many"}`)
	}
	logs.mu.Lock()
	logs.buf.Reset()
	logs.mu.Unlock()
	logger.Info("forgotten", slog.Int64("job_id", 1))
	logger.Info("remembered", slog.Int64("job_id", 100+4999))
	lines = logs.lines()
	require.NotContains(t, lines[0], "payment_id")
	require.Contains(t, lines[1], `"payment_id":"p-many"`)
}
