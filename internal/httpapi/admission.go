package httpapi

import (
	"net/http"
	"sync/atomic"
	"time"

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

// DefaultMaxUnauthenticatedInFlight is the cap on unauthenticated requests
// (gateway webhooks, console sign-in) at work at once in one api process
// that cmd/api applies unless API_MAX_UNAUTHENTICATED_IN_FLIGHT says
// otherwise: a quarter of the pool, at least 2. Config's zero is no cap.
// Their bodies are read before they count (see openBody), so the cap bounds
// their database work: whatever strangers send, three quarters of the pool
// stay the checkouts'. A webhook's work is one short transaction, so even a
// busy gateway's deliveries need one or two at a time (docs/design.md,
// "Overload").
func DefaultMaxUnauthenticatedInFlight(poolSize int) int {
	return max(poolSize/4, 2)
}

// DefaultUnauthenticatedBodyTimeout is how long an unauthenticated request
// may take to send its whole body. Those bodies are a few hundred bytes
// (a webhook event, a sign-in form) and at most the body limit (64 KiB):
// over any link a gateway or an operator uses that is well under a second,
// while a client trickling bytes to hold a connection is cut off here
// rather than at the server's 15 s ReadTimeout.
const DefaultUnauthenticatedBodyTimeout = 3 * time.Second

// Readiness under saturation (docs/design.md, "Overload"): /readyz answers
// 503 while at least saturatedShare of the checkout budget's slots are held
// by requests older than saturatedAfter. A request answers in milliseconds,
// so a busy process, even one refusing half its load, turns its slots over
// far faster than that and stays ready; only a process whose slots are held
// (slow clients, a stalled dependency) is taken out of rotation.
const (
	saturatedAfter = time.Second
	// saturatedShare is three quarters, as a fraction: some slots always
	// turn over (a held request ends, its slot is taken again at once), so
	// "every slot" would miss a process that is starved all the same.
	saturatedShareNum, saturatedShareDen = 3, 4
)

// overloadRetryAfter is the Retry-After, in seconds, of a 503 overloaded.
const overloadRetryAfter = "1"

// ctxKeyRelease holds the func that gives the request's admission slot back
// early (see releaseSlot).
const ctxKeyRelease = "httpapi.release"

// ctxKeyRefused marks a request refused as overloaded, or cut off for a
// body too slow, for the access log: both are counted, and logged only at
// debug level.
const ctxKeyRefused = "httpapi.refused"

// budget is a cap on requests in flight: a request takes one of its slots
// or is refused. Each slot remembers since when it is held, which is what
// readiness judges saturation by.
type budget struct {
	// free holds the indexes of the free slots.
	free chan int
	// heldSince is, per slot, the Unix nanoseconds it was taken at; 0 while
	// free.
	heldSince []atomic.Int64
}

// newBudget returns a budget of n slots, or nil (no cap) for n <= 0.
func newBudget(n int) *budget {
	if n <= 0 {
		return nil
	}
	b := &budget{free: make(chan int, n), heldSince: make([]atomic.Int64, n)}
	for i := range n {
		b.free <- i
	}
	return b
}

// take takes a slot at now, or reports false when every slot is held. The
// release func gives it back; calling it again does nothing. A nil budget
// admits everything.
func (b *budget) take(now time.Time) (release func(), ok bool) {
	if b == nil {
		return func() {}, true
	}
	select {
	case i := <-b.free:
		b.heldSince[i].Store(now.UnixNano())
		released := false
		return func() {
			if !released {
				released = true
				b.heldSince[i].Store(0)
				b.free <- i
			}
		}, true
	default:
		return nil, false
	}
}

// inFlight is how many slots are held.
func (b *budget) inFlight() int {
	if b == nil {
		return 0
	}
	return cap(b.free) - len(b.free)
}

// heldLongerThan counts the slots held since before now-d. It reads each
// slot once without a lock: a slot taken or freed during the count is
// counted either way, which is all a readiness probe needs.
func (b *budget) heldLongerThan(now time.Time, d time.Duration) int {
	if b == nil {
		return 0
	}
	before := now.Add(-d).UnixNano()
	n := 0
	for i := range b.heldSince {
		if since := b.heldSince[i].Load(); since != 0 && since < before {
			n++
		}
	}
	return n
}

// saturated reports whether the budget's slots are held rather than
// turning over (see saturatedAfter), with how many are held that long.
func (b *budget) saturated(now time.Time) (held int, ok bool) {
	if b == nil {
		return 0, false
	}
	held = b.heldLongerThan(now, saturatedAfter)
	return held, held*saturatedShareDen >= cap(b.free)*saturatedShareNum
}

// overloaded is the 503 of a request refused at a cap.
func overloaded(detail string) error {
	return &problemError{status: http.StatusServiceUnavailable, code: codeOverloaded, detail: detail,
		header: map[string]string{headerRetryAfter: overloadRetryAfter}}
}

// admit caps the requests in flight at maxInFlight (the checkout budget):
// one more is answered 503 overloaded at once, with Retry-After, before it
// authenticates, reads its body or touches the database, so it wrote nothing
// and costs next to nothing. A request counts from here until its answer is
// written, except a long-poll read (GET ?wait=), which stops counting while
// it waits (see releaseSlot). The probes, /metrics and /openapi.json never
// count and are never refused: an orchestrator must see an overloaded
// process as alive, and Prometheus must see the overload. Nor do the
// unauthenticated routes (openRoutes): anyone may call them, so they have a
// budget of their own (openBody), and no stranger holds a checkout's slot.
func (s *Server) admit(next echo.HandlerFunc) echo.HandlerFunc {
	if s.checkout == nil {
		return next
	}
	return func(c echo.Context) error {
		switch c.Path() {
		case "/healthz", "/readyz", routeMetrics, routeOpenAPI:
			return next(c)
		}
		if s.openRoutes[c.Request().Method+" "+c.Path()] {
			return next(c)
		}
		release, ok := s.checkout.take(s.now())
		if !ok {
			s.metrics.Overloaded()
			c.Set(ctxKeyRefused, true)
			return overloaded("this api process has as many requests in flight as it takes; nothing was done; send again after Retry-After")
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
