package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// testWebhookSecret is a PortOne webhook secret: whsec_ and base64.
const testWebhookSecret = "whsec_Z2F0ZXdheXNpbS1jbWQtdGVzdA=="

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

func TestParseSettingsFaults(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		set, err := parseSettings(nil, noEnv)
		require.NoError(t, err)
		require.Zero(t, set.config.HoldRate)
		require.Zero(t, set.config.HoldFor)
		require.Zero(t, set.config.ConsecutiveCancelWindow)
		require.Empty(t, set.config.PortOneWebhookURL, "no webhooks unless asked")
	})

	t.Run("Flags", func(t *testing.T) {
		t.Parallel()
		set, err := parseSettings([]string{"-hold-rate", "0.05", "-hold-for", "3s", "-consecutive-cancel-window", "1s"}, noEnv)
		require.NoError(t, err)
		require.InDelta(t, 0.05, set.config.HoldRate, 1e-12)
		require.Equal(t, gatewaysim.Duration(3*time.Second), set.config.HoldFor)
		require.Equal(t, gatewaysim.Duration(time.Second), set.config.ConsecutiveCancelWindow)
	})

	t.Run("Environment", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{
			"SIM_HOLD_RATE":                 "1",
			"SIM_HOLD_FOR":                  "250ms",
			"SIM_CONSECUTIVE_CANCEL_WINDOW": "2s",
			"SIM_PORTONE_WEBHOOK_URL":       "http://127.0.0.1:8080/v1/webhooks/portone",
			"SIM_PORTONE_WEBHOOK_SECRET":    testWebhookSecret,
			"SIM_TOSS_WEBHOOK_URL":          "http://127.0.0.1:8080/v1/webhooks/toss",
		}
		set, err := parseSettings(nil, func(name string) string { return env[name] })
		require.NoError(t, err)
		require.InDelta(t, 1.0, set.config.HoldRate, 1e-12)
		require.Equal(t, gatewaysim.Duration(250*time.Millisecond), set.config.HoldFor)
		require.Equal(t, gatewaysim.Duration(2*time.Second), set.config.ConsecutiveCancelWindow)
		require.Equal(t, "http://127.0.0.1:8080/v1/webhooks/portone", set.config.PortOneWebhookURL)
		require.Equal(t, testWebhookSecret, set.config.PortOneWebhookSecret)
		require.Equal(t, "http://127.0.0.1:8080/v1/webhooks/toss", set.config.TossWebhookURL)

		// A flag wins over its variable.
		set, err = parseSettings([]string{"-hold-for", "1s"}, func(name string) string { return env[name] })
		require.NoError(t, err)
		require.Equal(t, gatewaysim.Duration(time.Second), set.config.HoldFor)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for want, args := range map[string][]string{
			"bad -hold-rate":                                 {"-hold-rate", "often"},
			"bad -hold-for":                                  {"-hold-for", "3"},
			"bad -consecutive-cancel-window":                 {"-consecutive-cancel-window", "soon"},
			"holdRate: 2 is not a probability":               {"-hold-rate", "2", "-hold-for", "1s"},
			"holdRate: 0.5 needs a positive holdFor":         {"-hold-rate", "0.5"},
			"consecutiveCancelWindow: -1s is negative":       {"-consecutive-cancel-window", "-1s"},
			"portOneWebhookURL needs a portOneWebhookSecret": {"-portone-webhook-url", "http://127.0.0.1:8080/v1/webhooks/portone"},
			"portOneWebhookSecret: not a Standard Webhooks secret": {
				"-portone-webhook-url", "http://127.0.0.1:8080/hook", "-portone-webhook-secret", "whsec_not base64!"},
		} {
			_, err := parseSettings(args, noEnv)
			require.ErrorContains(t, err, want, args)
		}
	})
}
