package relay

import (
	"log/slog"
	"sync"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
)

// Breaker is the circuit breaker at the gateway boundary, and the only one:
// when the gateway keeps failing (network errors, 5xx, downtime) it stops
// the relay from calling it, so jobs wait by snoozing instead of spending
// their attempts on a gateway that is down, and calls resume by themselves
// once a probe gets through.
type Breaker struct {
	mu          sync.Mutex
	threshold   int
	cooldown    time.Duration
	maxCooldown time.Duration
	now         func() time.Time
	log         *slog.Logger
	metrics     *metrics.Relay

	state    BreakerState
	failures int           // consecutive failures while closed
	until    time.Time     // while open: when a probe may go
	wait     time.Duration // the current cooldown, doubling on failed probes
	probing  bool
	// opened counts openings, so that an answer to a call allowed before
	// the breaker opened is not taken for the probe's.
	opened uint64
}

// Permit is the breaker's leave for one call; hand it back with Record.
type Permit struct {
	opened uint64
	probe  bool
}

// BreakerState is the breaker's position.
type BreakerState string

// The breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half_open"
)

// BreakerConfig tunes a Breaker; zero values take the defaults.
type BreakerConfig struct {
	// Threshold is how many consecutive failures open the breaker (5).
	Threshold int
	// Cooldown is how long it stays open before a probe (2s); it doubles
	// after each failed probe up to MaxCooldown (1m).
	Cooldown    time.Duration
	MaxCooldown time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
	// Metrics shows the breaker's state and counts its openings; nil
	// counts nothing.
	Metrics *metrics.Relay
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) *Breaker {
	b := &Breaker{
		threshold: cfg.Threshold, cooldown: cfg.Cooldown, maxCooldown: cfg.MaxCooldown,
		now: cfg.Now, log: cfg.Logger, metrics: cfg.Metrics, state: BreakerClosed,
	}
	if b.threshold <= 0 {
		b.threshold = 5
	}
	if b.cooldown <= 0 {
		b.cooldown = 2 * time.Second
	}
	if b.maxCooldown < b.cooldown {
		b.maxCooldown = max(time.Minute, b.cooldown)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.wait = b.cooldown
	b.metrics.BreakerClosed()
	return b
}

// Allow reports whether a call may go now, and if not, how long to wait.
// While half-open exactly one caller is let through as the probe.
func (b *Breaker) Allow() (Permit, bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return Permit{opened: b.opened}, true, 0
	case BreakerOpen:
		now := b.now()
		if now.Before(b.until) {
			return Permit{}, false, b.until.Sub(now)
		}
		b.state = BreakerHalfOpen
		b.metrics.BreakerHalfOpen()
		b.log.Warn("gateway circuit breaker half-open; sending a probe")
		fallthrough
	default: // half-open
		if b.probing {
			return Permit{}, false, b.cooldown
		}
		b.probing = true
		return Permit{opened: b.opened, probe: true}, true, 0
	}
}

// Record tells the breaker how a call it allowed went.
func (b *Breaker) Record(p Permit, res gateway.Result, class gateway.Class) {
	failed := gatewayFailing(res, class)
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.opened != b.opened {
		// Allowed before the latest opening: what it says is old news, and
		// counting it would stretch the cooldown once per call in flight.
		return
	}
	switch b.state {
	case BreakerClosed:
		if !failed {
			b.failures = 0
			return
		}
		b.failures++
		if b.failures >= b.threshold {
			b.open(b.cooldown)
		}
	case BreakerHalfOpen:
		if !p.probe {
			return
		}
		b.probing = false
		if failed {
			b.open(min(2*b.wait, b.maxCooldown))
			return
		}
		b.state = BreakerClosed
		b.failures = 0
		b.wait = b.cooldown
		b.metrics.BreakerClosed()
		b.log.Warn("gateway circuit breaker closed; gateway answers again")
	}
}

// Abandon tells the breaker that a call it allowed was never made, so a
// half-open breaker lets another caller probe.
func (b *Breaker) Abandon(p Permit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.probe && p.opened == b.opened {
		b.probing = false
	}
}

// State returns the breaker's position (for logs and metrics).
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *Breaker) open(wait time.Duration) {
	b.state = BreakerOpen
	b.opened++
	b.metrics.BreakerOpened()
	b.wait = wait
	b.until = b.now().Add(wait)
	b.log.Error("gateway circuit breaker open; calls stop and jobs snooze",
		slog.Int("consecutive_failures", b.failures), slog.Duration("cooldown", wait))
}

// gatewayFailing says whether an answer means the gateway itself is not
// working. A card provider's PROVIDER_ERROR or a refusal is a working gateway
// saying no; only no answer or a 5xx counts.
func gatewayFailing(res gateway.Result, class gateway.Class) bool {
	if class != gateway.ClassTransient {
		return false
	}
	return res.HTTPStatus == 0 || res.HTTPStatus >= 500
}
