package console

import (
	"sync"
	"time"
)

// Console sign-in throttle (docs/design.md, section 21). An API key has 256
// bits of randomness, so guessing one is hopeless; what a throttle stops is
// the cost of trying (every try a key lookup, every failure a log line) and
// the guessing of the rest of a key whose prefix leaked (the prefix is shown
// in `api keys list` and in logs). So failures are counted per client
// address and per key prefix, and past a few in a minute a sign-in is
// answered 429 with Retry-After, before the key is looked up.
const (
	// signInFailuresPerWindow failures from one address, or for one key
	// prefix, are allowed per signInWindow; the next try waits for the
	// window to end. An operator mistyping a pasted key fails once or
	// twice.
	signInFailuresPerWindow = 5
	signInWindow            = time.Minute
	// signInMaxTracked bounds the addresses and prefixes counted in one
	// window, so a flood from many addresses cannot grow memory without
	// bound. Past it the newcomers share one count (overflowKey): a flood
	// that large throttles itself, and the addresses already counted keep
	// their own.
	signInMaxTracked = 10_000
	overflowKey      = ""
)

// signInThrottle counts failed console sign-ins in fixed windows. The zero
// value is not usable; see newSignInThrottle.
type signInThrottle struct {
	mu sync.Mutex
	// windowStart is the start of the current window; counts are that
	// window's failures, keyed "a:"+address or "p:"+key prefix. At the next
	// window they are dropped whole, so nothing outlives two minutes.
	windowStart time.Time
	counts      map[string]int
}

func newSignInThrottle() *signInThrottle {
	return &signInThrottle{counts: make(map[string]int)}
}

// roll starts a new window when now is past the current one. Call with mu
// held.
func (t *signInThrottle) roll(now time.Time) {
	if now.Before(t.windowStart) || !now.Before(t.windowStart.Add(signInWindow)) {
		t.windowStart = now.Truncate(signInWindow)
		clear(t.counts)
	}
}

// slot is the count a key is kept under: its own, or the shared overflow
// one once the window tracks signInMaxTracked. Call with mu held.
func (t *signInThrottle) slot(key string) string {
	if _, ok := t.counts[key]; ok || len(t.counts) < signInMaxTracked {
		return key
	}
	return overflowKey
}

// blocked reports whether a sign-in from addr for a key starting with
// prefix must wait, and for how long: one of them had its allowed failures
// in this window.
func (t *signInThrottle) blocked(now time.Time, addr, prefix string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll(now)
	for _, k := range []string{"a:" + addr, "p:" + prefix} {
		if t.counts[t.slot(k)] >= signInFailuresPerWindow {
			return t.windowStart.Add(signInWindow).Sub(now), true
		}
	}
	return 0, false
}

// failed counts a failed sign-in from addr for a key starting with prefix.
func (t *signInThrottle) failed(now time.Time, addr, prefix string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll(now)
	for _, k := range []string{"a:" + addr, "p:" + prefix} {
		t.counts[t.slot(k)]++
	}
}

// tracked is how many counts the window holds, for tests of the bound.
func (t *signInThrottle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.counts)
}
