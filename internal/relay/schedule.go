package relay

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Schedule is the relay's retry schedule for transient gateway answers. It is
// the only retry layer: the gateway client never retries, and River runs the
// job again at the time the schedule gives (the worker's NextRetry), so a
// retry survives a relay crash and never multiplies into retries of retries.
type Schedule struct {
	Initial time.Duration
	Max     time.Duration
}

// DefaultSchedule is the schedule docs/design.md names: 1s doubling to 1m.
var DefaultSchedule = Schedule{Initial: time.Second, Max: time.Minute}

// Delay returns how long to wait before the given attempt (1-based: the
// delay after the first failed attempt is Delay(1)). Jitter of ±20% spreads
// the retries of a burst of jobs that failed together.
func (s Schedule) Delay(attempt int) time.Duration {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(s.Initial),
		backoff.WithMaxInterval(s.Max),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.2),
		// River owns the attempt budget (paymentjob.MaxAttempts); the
		// schedule only spaces the attempts.
		backoff.WithMaxElapsedTime(0),
	)
	d := b.NextBackOff()
	for i := 1; i < attempt; i++ {
		d = b.NextBackOff()
	}
	return d
}
