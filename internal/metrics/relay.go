package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Names of the relay's metrics.
const (
	nameGatewayCalls          = namespace + "_gateway_calls_total"
	nameGatewayCallDuration   = namespace + "_gateway_call_duration_seconds"
	nameRelayRetries          = namespace + "_relay_retries_total"
	nameRelaySnoozes          = namespace + "_relay_snoozes_total"
	nameRelayKeyRotations     = namespace + "_relay_key_rotations_total"
	nameRelayOutcomes         = namespace + "_relay_outcomes_total"
	nameBreakerState          = namespace + "_breaker_state"
	nameBreakerOpenings       = namespace + "_breaker_openings_total"
	nameReconcilerLookupsSent = namespace + "_reconciler_lookups_enqueued_total"
)

// Why a job was snoozed rather than run or retried.
const (
	// SnoozeBreakerOpen: the circuit breaker is open, so no call was made.
	SnoozeBreakerOpen = "breaker_open"
	// SnoozeMisconfigured: the gateway refused our credentials or request.
	SnoozeMisconfigured = "misconfigured"
	// SnoozeKeyQuiet: the key rule waits for the gateway to be certainly
	// done with an Idempotency-Key before the relay looks the payment up.
	SnoozeKeyQuiet = "key_quiet"
)

// The breaker_state gauge's values. Ordered by how bad they are, so max()
// over relays gives the worst.
const (
	breakerClosed   = 0
	breakerHalfOpen = 1
	breakerOpen     = 2
)

// gatewayBuckets cover a gateway that answers in tens to hundreds of
// milliseconds, up to the relay's default 10s call timeout and past it.
var gatewayBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Relay counts what the relay does. A nil *Relay counts nothing.
type Relay struct {
	gatewayCalls    *prometheus.CounterVec
	gatewayDuration *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	snoozes         *prometheus.CounterVec
	keyRotations    *prometheus.CounterVec
	outcomes        *prometheus.CounterVec
	breakerState    prometheus.Gauge
	breakerOpenings prometheus.Counter
	lookupsEnqueued prometheus.Counter
	books           booksCounters
}

// NewRelay registers the relay's metrics on r.
func NewRelay(r *Registry) *Relay {
	m := &Relay{
		gatewayCalls: r.counterVec(nameGatewayCalls,
			"Gateway calls made, by operation (confirm, cancel, lookup) and how the relay classified the answer.",
			"operation", "class"),
		gatewayDuration: r.histogramVec(nameGatewayCallDuration,
			"Time a gateway call took, from sending the request to having read the answer or given up, by operation.",
			gatewayBuckets, "operation"),
		retries: r.counterVec(nameRelayRetries,
			"Transient gateway answers handed back to River for a retry under the same Idempotency-Key, by operation.",
			"operation"),
		snoozes: r.counterVec(nameRelaySnoozes,
			"Jobs snoozed without spending an attempt, by gateway operation and reason (breaker_open, misconfigured, key_quiet).",
			"operation", "reason"),
		keyRotations: r.counterVec(nameRelayKeyRotations,
			"Operations moved to a new Idempotency-Key after a lookup showed the gateway had not performed them, by operation.",
			"operation"),
		outcomes: r.counterVec(nameRelayOutcomes,
			"Payment status changes the relay committed, by the new status.",
			"status"),
		breakerState: r.gauge(nameBreakerState,
			"The gateway circuit breaker of this relay: 0 closed, 1 half-open (a probe is out), 2 open."),
		breakerOpenings: r.counter(nameBreakerOpenings,
			"Times this relay's gateway circuit breaker opened (from closed, or again after a failed probe)."),
		lookupsEnqueued: r.counter(nameReconcilerLookupsSent,
			"Lookups the reconciler put in the outbox for payments stuck in confirming, canceling or unknown."),
		books: newBooksCounters(r),
	}
	for _, op := range operations {
		for _, c := range classes {
			m.gatewayCalls.WithLabelValues(string(op), string(c))
		}
		m.retries.WithLabelValues(string(op))
		m.snoozes.WithLabelValues(string(op), SnoozeBreakerOpen)
		m.snoozes.WithLabelValues(string(op), SnoozeMisconfigured)
	}
	m.keyRotations.WithLabelValues(string(payment.OperationConfirm))
	m.keyRotations.WithLabelValues(string(payment.OperationCancel))
	for _, s := range statuses {
		m.outcomes.WithLabelValues(string(s))
	}
	return m
}

// GatewayCall counts one gateway call and its duration.
func (m *Relay) GatewayCall(op payment.Operation, class gateway.Class, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.gatewayCalls.WithLabelValues(string(op), string(class)).Inc()
	m.gatewayDuration.WithLabelValues(string(op)).Observe(elapsed.Seconds())
}

// Retry counts a transient answer handed back to River.
func (m *Relay) Retry(op payment.Operation) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(string(op)).Inc()
}

// Snooze counts a job snoozed for reason (SnoozeBreakerOpen,
// SnoozeMisconfigured, SnoozeKeyQuiet).
func (m *Relay) Snooze(op payment.Operation, reason string) {
	if m == nil {
		return
	}
	m.snoozes.WithLabelValues(string(op), reason).Inc()
}

// KeyRotation counts an operation moved to a new Idempotency-Key.
func (m *Relay) KeyRotation(op payment.Operation) {
	if m == nil {
		return
	}
	m.keyRotations.WithLabelValues(string(op)).Inc()
}

// Outcome counts a payment status change the relay committed.
func (m *Relay) Outcome(status payment.Status) {
	if m == nil {
		return
	}
	m.outcomes.WithLabelValues(string(status)).Inc()
}

// LookupsEnqueued counts lookups the reconciler enqueued.
func (m *Relay) LookupsEnqueued(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.lookupsEnqueued.Add(float64(n))
}

// BreakerClosed records that the breaker is closed.
func (m *Relay) BreakerClosed() { m.setBreaker(breakerClosed) }

// BreakerHalfOpen records that the breaker let a probe through.
func (m *Relay) BreakerHalfOpen() { m.setBreaker(breakerHalfOpen) }

// BreakerOpened records that the breaker opened, and counts the opening.
func (m *Relay) BreakerOpened() {
	if m == nil {
		return
	}
	m.breakerOpenings.Inc()
	m.setBreaker(breakerOpen)
}

func (m *Relay) setBreaker(v float64) {
	if m == nil {
		return
	}
	m.breakerState.Set(v)
}
