package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestKeyAbandonable(t *testing.T) {
	t.Parallel()

	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	quiet := 15 * time.Second
	answer := func(sec int, status int, code string) KeyAnswer {
		return KeyAnswer{SentAt: t0.Add(time.Duration(sec) * time.Second), Finished: true, HTTPStatus: status, Code: code}
	}
	running := func(sec int, status int, code string) KeyAnswer {
		a := answer(sec, status, code)
		a.StillRunning = true
		return a
	}
	timeout := KeyAnswer{SentAt: t0, Finished: true}
	died := KeyAnswer{SentAt: t0}

	tests := []struct {
		name    string
		answers []KeyAnswer
		now     time.Time
		want    bool
	}{
		{"cached 5xx replayed, quiet passed", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR"), answer(2, 500, "PROVIDER_ERROR")}, t0.Add(20 * time.Second), true},
		{"cached unclear answer replayed", []KeyAnswer{answer(0, 400, "ALREADY_PROCESSED_PAYMENT"), answer(2, 400, "ALREADY_PROCESSED_PAYMENT")}, t0.Add(20 * time.Second), true},
		{"not quiet long enough", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR"), answer(2, 500, "PROVIDER_ERROR")}, t0.Add(10 * time.Second), false},
		{"one answer is not a replay", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR")}, t0.Add(time.Hour), false},
		{"two different answers", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR"), answer(2, 500, "COMMON_ERROR")}, t0.Add(time.Hour), false},
		// The hole this rule closes: a timed-out request held by the
		// gateway, then "still processing" twice.
		{"409 processing twice after a timeout", []KeyAnswer{timeout, running(1, 409, "IDEMPOTENT_REQUEST_PROCESSING"), running(2, 409, "IDEMPOTENT_REQUEST_PROCESSING")}, t0.Add(time.Hour), false},
		{"still running twice", []KeyAnswer{running(0, 400, "FORBIDDEN_CONSECUTIVE_REQUEST"), running(1, 400, "FORBIDDEN_CONSECUTIVE_REQUEST")}, t0.Add(time.Hour), false},
		// Toss's "another cancel just now" refusal, stored under the key and
		// replayed: once no request can be in flight, the key is stuck.
		{"consecutive-request refusal replayed, quiet passed", []KeyAnswer{answer(0, 403, "FORBIDDEN_CONSECUTIVE_REQUEST"), answer(1, 403, "FORBIDDEN_CONSECUTIVE_REQUEST")}, t0.Add(20 * time.Second), true},
		{"consecutive-request refusal replayed, not quiet yet", []KeyAnswer{answer(0, 403, "FORBIDDEN_CONSECUTIVE_REQUEST"), answer(1, 403, "FORBIDDEN_CONSECUTIVE_REQUEST")}, t0.Add(10 * time.Second), false},
		{"PortOne outstanding request twice", []KeyAnswer{running(0, 409, "IDEMPOTENCY_OUTSTANDING_REQUEST"), running(1, 409, "IDEMPOTENCY_OUTSTANDING_REQUEST")}, t0.Add(time.Hour), false},
		{"timeouts", []KeyAnswer{timeout, timeout}, t0.Add(time.Hour), false},
		{"relay died during the last call", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR"), died}, t0.Add(time.Hour), false},
		{"gateway timeout status", []KeyAnswer{answer(0, 504, "PROVIDER_ERROR"), answer(1, 504, "PROVIDER_ERROR")}, t0.Add(time.Hour), false},
		{"proxy 502 without a code", []KeyAnswer{answer(0, 502, ""), answer(1, 502, "")}, t0.Add(time.Hour), false},
		{"a later request restarts the quiet period", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR"), answer(30, 500, "PROVIDER_ERROR")}, t0.Add(40 * time.Second), false},
		// Past the gateway's retention the key protects nothing: the quiet
		// period alone decides, whatever the answers.
		{"forgotten key after timeouts, quiet passed", []KeyAnswer{timeout, answer(100, 503, "")}, t0.Add(time.Hour + 2*time.Minute), true},
		{"forgotten key, a request still in its quiet period", []KeyAnswer{timeout, answer(3600, 503, "")}, t0.Add(time.Hour + 5*time.Second), false},
		{"within retention, timeouts stay", []KeyAnswer{timeout, answer(100, 503, "")}, t0.Add(50 * time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, KeyAbandonable(tt.answers, tt.now, quiet, time.Hour))
		})
	}
}

func TestKeyForgotten(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	answers := []KeyAnswer{{SentAt: t0.Add(time.Hour)}, {SentAt: t0}, {SentAt: t0.Add(2 * time.Hour)}}
	require.Equal(t, t0, FirstSent(answers), "the window runs from the first request")
	require.False(t, KeyForgotten(answers, t0.Add(3*time.Hour), 3*time.Hour))
	require.True(t, KeyForgotten(answers, t0.Add(3*time.Hour+time.Second), 3*time.Hour))
	require.False(t, KeyForgotten(nil, t0.Add(24*time.Hour), time.Hour), "no request, no key to forget")
	require.False(t, KeyForgotten(answers, t0.Add(24*time.Hour), 0), "no retention known")
}
