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
		{"consecutive request twice", []KeyAnswer{running(0, 400, "FORBIDDEN_CONSECUTIVE_REQUEST"), running(1, 400, "FORBIDDEN_CONSECUTIVE_REQUEST")}, t0.Add(time.Hour), false},
		{"PortOne outstanding request twice", []KeyAnswer{running(0, 409, "IDEMPOTENCY_OUTSTANDING_REQUEST"), running(1, 409, "IDEMPOTENCY_OUTSTANDING_REQUEST")}, t0.Add(time.Hour), false},
		{"timeouts", []KeyAnswer{timeout, timeout}, t0.Add(time.Hour), false},
		{"relay died during the last call", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR"), died}, t0.Add(time.Hour), false},
		{"gateway timeout status", []KeyAnswer{answer(0, 504, "PROVIDER_ERROR"), answer(1, 504, "PROVIDER_ERROR")}, t0.Add(time.Hour), false},
		{"proxy 502 without a code", []KeyAnswer{answer(0, 502, ""), answer(1, 502, "")}, t0.Add(time.Hour), false},
		{"a later request restarts the quiet period", []KeyAnswer{answer(0, 500, "PROVIDER_ERROR"), answer(30, 500, "PROVIDER_ERROR")}, t0.Add(40 * time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, KeyAbandonable(tt.answers, tt.now, quiet))
		})
	}
}
