package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Names of the api's HTTP metrics.
const (
	nameHTTPRequests        = namespace + "_http_requests_total"
	nameHTTPRequestDuration = namespace + "_http_request_duration_seconds"
	nameOperatorActions     = namespace + "_operator_actions_total"
	nameHTTPOverloaded      = namespace + "_http_overloaded_total"
	nameSignInThrottled     = namespace + "_console_signin_throttled_total"
	// The unauthenticated budget's, counted apart from the checkout
	// budget's (docs/design.md, "Overload").
	nameHTTPUnauthOverloaded  = namespace + "_http_unauthenticated_overloaded_total"
	nameHTTPUnauthBodyTimeout = namespace + "_http_unauthenticated_body_timeouts_total"
)

// httpBuckets cover an API that answers from one Postgres transaction: a few
// milliseconds normally, up to its 10s request timeout at worst.
var httpBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// HTTP counts the api's requests. A nil *HTTP counts nothing.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	actions  *prometheus.CounterVec
	overload prometheus.Counter
	signIns  prometheus.Counter
	webhooks *prometheus.CounterVec

	unauthOverload    prometheus.Counter
	unauthBodyTimeout prometheus.Counter
}

// NewHTTP registers the HTTP metrics on r.
func NewHTTP(r *Registry) *HTTP {
	m := &HTTP{
		requests: r.counterVec(nameHTTPRequests,
			"HTTP requests answered, by route template, method and status.",
			"route", "method", "status"),
		duration: r.histogramVec(nameHTTPRequestDuration,
			"Time from receiving a request to having answered it, by route template and method.",
			httpBuckets, "route", "method"),
		actions: r.counterVec(nameOperatorActions,
			"Operator actions committed (API, command line or console), by action.",
			"action"),
		overload: r.counter(nameHTTPOverloaded,
			"Requests refused with 503 overloaded because the process already had API_MAX_IN_FLIGHT requests in flight. They are in "+nameHTTPRequests+" too."),
		signIns: r.counter(nameSignInThrottled,
			"Console sign-ins refused with 429 because their client address or key prefix had too many failed sign-ins in the last minute."),
		unauthOverload: r.counter(nameHTTPUnauthOverloaded,
			"Unauthenticated requests (gateway webhooks, console sign-in) refused with 503 overloaded because API_MAX_UNAUTHENTICATED_IN_FLIGHT of them were already at work. Apart from "+nameHTTPOverloaded+"; they are in "+nameHTTPRequests+" too."),
		unauthBodyTimeout: r.counter(nameHTTPUnauthBodyTimeout,
			"Unauthenticated requests cut off with 408 body_timeout because their body did not arrive within the short deadline those routes read under. They are in "+nameHTTPRequests+" too."),
	}
	m.webhooks = newWebhookCounter(r)
	// At zero from the start, so a rate over them is defined before the
	// first action.
	for _, a := range payment.Actions() {
		m.actions.WithLabelValues(string(a))
	}
	return m
}

// OperatorAction counts one committed operator action.
func (m *HTTP) OperatorAction(a payment.Action) {
	if m == nil {
		return
	}
	m.actions.WithLabelValues(string(a)).Inc()
}

// Overloaded counts one request refused for the in-flight cap.
func (m *HTTP) Overloaded() {
	if m == nil {
		return
	}
	m.overload.Inc()
}

// SignInThrottled counts one console sign-in refused by the throttle.
func (m *HTTP) SignInThrottled() {
	if m == nil {
		return
	}
	m.signIns.Inc()
}

// UnauthenticatedOverloaded counts one unauthenticated request refused for
// the unauthenticated budget.
func (m *HTTP) UnauthenticatedOverloaded() {
	if m == nil {
		return
	}
	m.unauthOverload.Inc()
}

// UnauthenticatedBodyTimeout counts one unauthenticated request cut off
// because its body came too slowly.
func (m *HTTP) UnauthenticatedBodyTimeout() {
	if m == nil {
		return
	}
	m.unauthBodyTimeout.Inc()
}

// ObserveRequest counts one answered request. route must be a route template
// ("/v1/payments/:id") or a fixed placeholder, never the raw path, which
// would make a series per payment. A method outside the standard ones is
// counted as "other": clients choose it, and every new value is a new series.
func (m *HTTP) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	method = normalMethod(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

func normalMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}
