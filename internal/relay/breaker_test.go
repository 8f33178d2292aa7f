package relay

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

func TestBreaker(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	b := NewBreaker(BreakerConfig{
		Threshold: 3, Cooldown: time.Second, MaxCooldown: 4 * time.Second,
		Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler),
	})
	down := gateway.Result{Err: errors.New("connection refused")}
	ok := gateway.Result{HTTPStatus: 200}
	refused := gateway.Result{HTTPStatus: 400, Code: "PROVIDER_ERROR"}

	allow := func() (Permit, bool) {
		p, a, _ := b.Allow()
		return p, a
	}

	// A working gateway saying no does not trip it.
	for range 10 {
		p, a := allow()
		require.True(t, a)
		b.Record(p, refused, gateway.ClassTransient)
	}
	require.Equal(t, BreakerClosed, b.State())

	// Five calls go out together; the first three failures open it.
	var inFlight []Permit
	for range 5 {
		p, a := allow()
		require.True(t, a)
		inFlight = append(inFlight, p)
	}
	for _, p := range inFlight {
		b.Record(p, down, gateway.ClassTransient)
	}
	require.Equal(t, BreakerOpen, b.State())
	_, a, wait := b.Allow()
	require.False(t, a)
	require.Equal(t, time.Second, wait, "answers to calls already in flight do not stretch the cooldown")

	// After the cooldown one probe goes; the others keep waiting.
	now = now.Add(time.Second)
	probe, a := allow()
	require.True(t, a)
	_, a = allow()
	require.False(t, a)
	b.Record(probe, down, gateway.ClassTransient)
	require.Equal(t, BreakerOpen, b.State())
	_, _, wait = b.Allow()
	require.Equal(t, 2*time.Second, wait, "a failed probe doubles the cooldown")

	now = now.Add(2 * time.Second)
	probe, a = allow()
	require.True(t, a)
	b.Record(probe, ok, gateway.ClassSuccess)
	require.Equal(t, BreakerClosed, b.State())
	_, a = allow()
	require.True(t, a)
}
