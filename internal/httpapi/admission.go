package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// DefaultMaxInFlight is the cap on requests in flight in one api process
// that cmd/api applies unless API_MAX_IN_FLIGHT says otherwise, for a pool
// of poolSize connections: half as many again. Config's zero is no cap.
// Chosen from measurement (docs/design.md, "Overload"): the api's
// throughput stops growing before its pool is busy, so a request admitted
// past a few more than the pool only waits for a connection, adding its wait
// to everyone's latency and its goroutine and buffers to the heap; the few
// more cover the time a request spends outside its connection (reading,
// authenticating, answering).
func DefaultMaxInFlight(poolSize int) int {
	return poolSize + poolSize/2
}

// overloadRetryAfter is the Retry-After, in seconds, of a 503 overloaded.
const overloadRetryAfter = "1"

// ctxKeyRelease holds the func that gives the request's admission slot back
// early (see releaseSlot).
const ctxKeyRelease = "httpapi.release"

// ctxKeyRefused marks a request refused as overloaded, for the access log.
const ctxKeyRefused = "httpapi.refused"

// admit caps the requests in flight at maxInFlight: one more is answered
// 503 overloaded at once, with Retry-After, before it authenticates, reads
// its body or touches the database, so it wrote nothing and costs next to
// nothing. A request counts from here until its answer is written, except
// a long-poll read (GET ?wait=), which stops counting while it waits (see
// releaseSlot). The probes, /metrics and /openapi.json never count and are
// never refused: an orchestrator must see an overloaded process as alive and
// ready (it is), and Prometheus must see the overload.
func (s *Server) admit(next echo.HandlerFunc) echo.HandlerFunc {
	if s.maxInFlight <= 0 {
		return next
	}
	return func(c echo.Context) error {
		switch c.Path() {
		case "/healthz", "/readyz", routeMetrics, routeOpenAPI:
			return next(c)
		}
		if s.inFlight.Add(1) > s.maxInFlight {
			s.inFlight.Add(-1)
			s.metrics.Overloaded()
			c.Set(ctxKeyRefused, true)
			return &problemError{status: http.StatusServiceUnavailable, code: codeOverloaded,
				detail: "this api process has as many requests in flight as it takes; nothing was done; send again after Retry-After",
				header: map[string]string{headerRetryAfter: overloadRetryAfter}}
		}
		released := false
		release := func() {
			if !released {
				released = true
				s.inFlight.Add(-1)
			}
		}
		c.Set(ctxKeyRelease, release)
		defer release()
		return next(c)
	}
}

// releaseSlot gives the request's admission slot back before it is done:
// for a request about to wait (GET ?wait=), which holds no connection while
// it does. Its reads around the wait go uncounted, bounded instead by
// MaxWaiters. Call it on the request's goroutine.
func releaseSlot(c echo.Context) {
	if release, ok := c.Get(ctxKeyRelease).(func()); ok {
		release()
	}
}
