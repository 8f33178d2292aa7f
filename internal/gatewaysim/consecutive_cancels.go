package gatewaysim

import (
	"sync"
	"time"
)

// consecutiveCancels remembers when the last cancel each payment let through
// arrived, for Config.ConsecutiveCancelWindow.
type consecutiveCancels struct {
	mu         sync.Mutex
	last       map[string]time.Time
	sinceSweep int
}

func newConsecutiveCancels() *consecutiveCancels {
	return &consecutiveCancels{last: map[string]time.Time{}}
}

func (c *consecutiveCancels) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = map[string]time.Time{}
	c.sinceSweep = 0
}

// admit reports whether a cancel for paymentKey arriving at now may be
// processed under window, and if so makes it the payment's latest. A refused
// cancel is not recorded, so a client retrying faster than the window still
// gets through once the window after the processed one has passed. Nothing is
// recorded while the rule is off.
func (c *consecutiveCancels) admit(paymentKey string, now time.Time, window time.Duration) bool {
	if window <= 0 || paymentKey == "" {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.last[paymentKey]; ok && now.Sub(last) < window {
		return false
	}
	c.last[paymentKey] = now
	c.sinceSweep++
	if c.sinceSweep >= sweepEvery {
		c.sweep(now, window)
	}
	return true
}

// sweep forgets cancels older than window, which can refuse nothing now, so a
// long load test does not grow the map without bound. Callers hold c.mu.
func (c *consecutiveCancels) sweep(now time.Time, window time.Duration) {
	c.sinceSweep = 0
	for key, last := range c.last {
		if now.Sub(last) >= window {
			delete(c.last, key)
		}
	}
}
