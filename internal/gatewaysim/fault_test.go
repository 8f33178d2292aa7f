package gatewaysim

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScriptedError(t *testing.T) {
	t.Parallel()

	t.Run("NothingPerformed", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-fault-1", 5_000)
		b.script(t, auth.PaymentKey, OperationConfirm,
			Step{Kind: StepError, Code: "PROVIDER_ERROR"},
			Step{Kind: StepError, Code: "FAILED_INTERNAL_SYSTEM_PROCESSING", Status: http.StatusBadGateway, Message: "upstream down"},
		)

		b.confirm(t, auth, "confirm-fault-1").requireError(t, http.StatusBadRequest, "PROVIDER_ERROR")
		require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		require.Equal(t, StatusInProgress, b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t).Status)

		a := b.confirm(t, auth, "confirm-fault-1")
		a.requireError(t, http.StatusBadGateway, CodeFailedInternalSystemProcessing)
		require.Contains(t, string(a.body), "upstream down")
		require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)

		// The script is used up and injected errors were not stored: the same
		// key now reaches the gateway.
		require.Equal(t, StatusDone, b.confirm(t, auth, "confirm-fault-1").payment(t).Status)
		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		require.Equal(t, []string{OutcomeInjected, OutcomeProcessed, OutcomeInjected, OutcomeProcessed}, b.outcomes(t, auth.PaymentKey))
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.approved(t, "order-fault-2", 5_000)
		b.script(t, auth.PaymentKey, OperationCancel, Step{Kind: StepError, Code: "FAILED_REFUND_PROCESS"})
		b.cancel(t, auth.PaymentKey, "cancel-fault-2", map[string]any{"cancelReason": "x"}).
			requireError(t, http.StatusInternalServerError, "FAILED_REFUND_PROCESS")
		require.Empty(t, b.ledgerEntry(t, auth.PaymentKey).Refunds)
	})

	t.Run("UnknownCodeIs500", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-fault-3", 5_000)
		b.script(t, auth.PaymentKey, OperationConfirm, Step{Kind: StepError, Code: "SOMETHING_NEW"})
		b.confirm(t, auth, "").requireError(t, http.StatusInternalServerError, "SOMETHING_NEW")
	})
}

func TestReplayCachedErrors(t *testing.T) {
	t.Parallel()

	t.Run("Off", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-cache-1", 5_000)
		b.script(t, auth.PaymentKey, OperationConfirm, Step{Kind: StepError, Code: "FAILED_INTERNAL_SYSTEM_PROCESSING"})
		b.confirm(t, auth, "confirm-cache-1").requireError(t, http.StatusInternalServerError, CodeFailedInternalSystemProcessing)
		require.Equal(t, StatusDone, b.confirm(t, auth, "confirm-cache-1").payment(t).Status)
	})

	t.Run("On", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		b.setConfig(t, Config{ReplayCachedErrors: true})
		auth := b.authorize(t, "order-cache-2", 5_000)
		b.script(t, auth.PaymentKey, OperationConfirm, Step{Kind: StepError, Code: "FAILED_INTERNAL_SYSTEM_PROCESSING"})
		first := b.confirm(t, auth, "confirm-cache-2")
		first.requireError(t, http.StatusInternalServerError, CodeFailedInternalSystemProcessing)

		// The key is stuck on the error...
		require.Equal(t, first, b.confirm(t, auth, "confirm-cache-2"))
		require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		// ...and a new key, after a lookup shows nothing happened, gets through.
		require.Equal(t, StatusInProgress, b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t).Status)
		require.Equal(t, StatusDone, b.confirm(t, auth, "confirm-cache-2b").payment(t).Status)
		require.Equal(t, []string{OutcomeInjected, OutcomeReplayed, OutcomeProcessed, OutcomeProcessed}, b.outcomes(t, auth.PaymentKey))
	})
}

func TestRandomErrors(t *testing.T) {
	t.Parallel()

	b := setup(t)
	b.setConfig(t, Config{Seed: 7, ErrorRates: map[string]float64{"PROVIDER_ERROR": 0.5, "FAILED_INTERNAL_SYSTEM_PROCESSING": 0.5}})
	auth := b.authorize(t, "order-random-1", 5_000)
	seen := map[string]int{}
	for i := range 40 {
		a := b.confirm(t, auth, fmt.Sprintf("confirm-random-%d", i))
		require.NotEqual(t, http.StatusOK, a.status)
		seen[string(a.body)]++
	}
	require.Len(t, seen, 2)
	require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)

	// Lookups are not subject to error rates, and a script overrides them.
	require.Equal(t, StatusInProgress, b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t).Status)
	b.script(t, auth.PaymentKey, OperationConfirm, Step{Kind: StepOK})
	require.Equal(t, StatusDone, b.confirm(t, auth, "confirm-random-ok").payment(t).Status)
}

func TestRandomErrorsAreSeeded(t *testing.T) {
	t.Parallel()

	draws := func(seed uint64) []string {
		f := newFaultInjector(Config{Seed: seed, ErrorRates: map[string]float64{"PROVIDER_ERROR": 0.3, "COMMON_ERROR": 0.2}})
		out := make([]string, 0, 100)
		for range 100 {
			code, _ := f.drawError()
			out = append(out, code)
		}
		return out
	}
	require.Equal(t, draws(42), draws(42))
	require.NotEqual(t, draws(42), draws(43))
}

func TestDowntime(t *testing.T) {
	t.Parallel()

	b := setup(t)
	auth := b.authorize(t, "order-down-1", 5_000)
	now := b.clock.Now()
	b.setConfig(t, Config{Downtime: []Window{{From: now.Add(-time.Minute), Until: now.Add(time.Minute)}}})

	b.confirm(t, auth, "confirm-down-1").requireError(t, http.StatusServiceUnavailable, CodeFailedInternalSystemProcessing)
	b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).
		requireError(t, http.StatusServiceUnavailable, CodeFailedInternalSystemProcessing)
	require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)

	b.clock.Advance(time.Minute)
	require.Equal(t, StatusDone, b.confirm(t, auth, "confirm-down-1").payment(t).Status)

	b.setConfig(t, Config{Down: true})
	b.cancel(t, auth.PaymentKey, "cancel-down-1", map[string]any{"cancelReason": "x"}).
		requireError(t, http.StatusServiceUnavailable, CodeFailedInternalSystemProcessing)
	require.Empty(t, b.ledgerEntry(t, auth.PaymentKey).Refunds)
}

func TestLatency(t *testing.T) {
	t.Parallel()

	b := setup(t)
	b.setConfig(t, Config{Latency: Duration(100 * time.Millisecond)})
	start := time.Now()
	b.toss(t, http.MethodGet, "/v1/payments/tgen_unknown", "", nil).requireError(t, http.StatusNotFound, CodeNotFoundPayment)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
}

func TestScriptValidation(t *testing.T) {
	t.Parallel()

	b := setup(t)
	ctx := context.Background()
	auth := b.authorize(t, "order-script-1", 5_000)

	_, err := b.control.Script(ctx, Script{PaymentKey: "tgen_unknown", Operation: OperationConfirm, Steps: []Step{{Kind: StepOK}}})
	requireSimError(t, err, http.StatusNotFound, CodeNotFoundPayment)

	for name, sc := range map[string]Script{
		"no steps":       {PaymentKey: auth.PaymentKey, Operation: OperationConfirm},
		"bad operation":  {PaymentKey: auth.PaymentKey, Operation: "refund", Steps: []Step{{Kind: StepOK}}},
		"bad kind":       {PaymentKey: auth.PaymentKey, Operation: OperationConfirm, Steps: []Step{{Kind: "explode"}}},
		"error no code":  {PaymentKey: auth.PaymentKey, Operation: OperationConfirm, Steps: []Step{{Kind: StepError}}},
		"error 200":      {PaymentKey: auth.PaymentKey, Operation: OperationConfirm, Steps: []Step{{Kind: StepError, Code: "X", Status: 200}}},
		"delay no delay": {PaymentKey: auth.PaymentKey, Operation: OperationConfirm, Steps: []Step{{Kind: StepDelay}}},
	} {
		_, err := b.control.Script(ctx, sc)
		require.Error(t, err, name)
		requireSimError(t, err, http.StatusBadRequest, CodeInvalidRequest)
	}

	queued, err := b.control.Script(ctx, Script{PaymentKey: auth.PaymentKey, Operation: OperationConfirm, Steps: []Step{{Kind: StepOK}, {Kind: StepOK}}})
	require.NoError(t, err)
	require.Equal(t, 2, queued.Pending)
}
