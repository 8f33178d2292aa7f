package relay

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScheduleDelay(t *testing.T) {
	t.Parallel()

	s := Schedule{Initial: time.Second, Max: time.Minute}
	within := func(d, want time.Duration) {
		t.Helper()
		require.GreaterOrEqual(t, d, want*8/10, "delay %s for %s", d, want)
		require.LessOrEqual(t, d, want*12/10, "delay %s for %s", d, want)
	}
	within(s.Delay(1), time.Second)
	within(s.Delay(2), 2*time.Second)
	within(s.Delay(3), 4*time.Second)
	within(s.Delay(6), 32*time.Second)
	// Capped at Max however many attempts.
	within(s.Delay(7), time.Minute)
	within(s.Delay(50), time.Minute)
}
