package chaos

import (
	"context"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// consecutiveCancelWindow is how close together two cancels for one
// paymentKey may come before the gateway refuses the second
// (FORBIDDEN_CONSECUTIVE_REQUEST), as Toss does within about a second.
const consecutiveCancelWindow = time.Second

// portOneKeyRetention is how long the simulated PortOne keeps an
// Idempotency-Key's first answer: its 3 hours scaled down to minutes, so a
// run reaches keys PortOne has forgotten (a retry past it is processed
// afresh) while Toss's 15 days stay out of reach, as they do in life.
const portOneKeyRetention = 2 * time.Minute

// configureFaults turns the gateway's faults on; downtime, when given, is a
// window during which the gateway answers every call with 503.
func (s *system) configureFaults(ctx context.Context, cfg Config, downtime ...gatewaysim.Window) error {
	r := cfg.ErrorRate
	simCfg := gatewaysim.Config{
		Seed:          cfg.Seed,
		Latency:       gatewaysim.Duration(cfg.Latency),
		LatencyJitter: gatewaysim.Duration(cfg.Jitter),
		ErrorRates: map[string]float64{
			"PROVIDER_ERROR":                    r * 0.35,
			"FAILED_INTERNAL_SYSTEM_PROCESSING": r * 0.3,
			"COMMON_ERROR":                      r * 0.15,
			"UNKNOWN_PAYMENT_ERROR":             r * 0.2,
		},
		LostResponseRate: cfg.LostRate,
		Downtime:         downtime,
		// Toss may replay a cached error under its key: assume it does.
		ReplayCachedErrors: true,
		// A held request is applied after HoldFor, past the relay's
		// timeout, answering 409 to its key meanwhile.
		HoldRate: cfg.HoldRate,
		HoldFor:  gatewaysim.Duration(cfg.HoldFor),
		// Toss refuses a second cancel for a payment within about a second.
		ConsecutiveCancelWindow: gatewaysim.Duration(consecutiveCancelWindow),
		PortOneKeyRetention:     gatewaysim.Duration(portOneKeyRetention),
		// PortOne tells the api of every status change, the ones nobody
		// asked for included, late, twice, out of order or not at all.
		PortOneWebhookURL:           s.apiURL + "/v1/webhooks/portone",
		PortOneWebhookSecret:        chaosPortOneWebhookSecret,
		PortOneWebhookDropRate:      cfg.WebhookDropRate,
		PortOneWebhookDuplicateRate: cfg.WebhookDuplicateRate,
		PortOneWebhookDelay:         gatewaysim.Duration(cfg.WebhookDelay),
		PortOneWebhookDelayJitter:   gatewaysim.Duration(cfg.WebhookJitter),
		// Toss's DEPOSIT_CALLBACK goes to the api with the same faults,
		// and a virtual account is due in seconds (vaDue).
		TossWebhookURL:           s.apiURL + "/v1/webhooks/toss",
		TossWebhookDropRate:      cfg.WebhookDropRate,
		TossWebhookDuplicateRate: cfg.WebhookDuplicateRate,
		TossWebhookDelay:         gatewaysim.Duration(cfg.WebhookDelay),
		TossWebhookDelayJitter:   gatewaysim.Duration(cfg.WebhookJitter),
		VirtualAccountDue:        gatewaysim.Duration(vaDue),
	}
	return s.sim.SetConfig(ctx, simCfg)
}
