package console

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSignInThrottleMemoryIsBounded floods the throttle with failures from
// more addresses than it tracks: it holds at most signInMaxTracked counts
// (plus the shared one), the newcomers share that count and are held up
// together, an address counted before the flood keeps its own, and a new
// window forgets everything.
func TestSignInThrottleMemoryIsBounded(t *testing.T) {
	t.Parallel()
	th := newSignInThrottle()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	th.failed(now, "198.51.100.1", "po_live_known")
	for i := range 3 * signInMaxTracked {
		th.failed(now, fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), "-")
	}
	require.LessOrEqual(t, th.tracked(), signInMaxTracked+1)
	_, blocked := th.blocked(now, "10.200.0.1", "po_live_abcdefgh")
	require.True(t, blocked, "a newcomer past the bound shares the flood's count")
	_, blocked = th.blocked(now, "198.51.100.1", "po_live_known")
	require.False(t, blocked, "an address and prefix counted before the flood keep their own count")
	th.roll(now.Add(signInWindow))
	require.Zero(t, th.tracked())
}
