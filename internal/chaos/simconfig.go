package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// Held requests are a gatewaysim feature that is landing separately: its
// config gains holdRate (a probability) and holdFor (a Go duration), and
// gatewaysim.Config has no such fields yet on this branch. Until it does,
// configureFaults adds them to the JSON it sends; once it does, set
// Config.HoldRate and Config.HoldFor in configureFaults and drop
// holdFields and checkHoldSupport's probe.
var holdFields = [...]string{"holdRate", "holdFor"}

// checkHoldSupport finds out whether the running gatewaysim can hold
// requests (its config names the hold fields); a run that asks for held
// requests from one that cannot reports them skipped rather than failing,
// as gatewaysim refuses unknown config fields.
func (s *system) checkHoldSupport(ctx context.Context, rep *Report, logf func(string, ...any)) error {
	if s.cfg.HoldRate == 0 {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.simURL+"/sim/v1/config", nil)
	if err != nil {
		return fmt.Errorf("error building the gatewaysim config request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("error reading the gatewaysim config: %w", err)
	}
	defer resp.Body.Close()
	var fields map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&fields); err != nil {
		return fmt.Errorf("error decoding the gatewaysim config: %w", err)
	}
	for _, f := range holdFields {
		if _, ok := fields[f]; !ok {
			what := "held gateway requests: this gatewaysim's config has no " + f
			logf("skipping %s", what)
			rep.Skipped = append(rep.Skipped, what)
			return nil
		}
	}
	s.holds = true
	return nil
}

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
	}
	if !s.holds {
		return s.sim.SetConfig(ctx, simCfg)
	}
	// The typed config plus the hold fields.
	raw, err := json.Marshal(simCfg)
	if err != nil {
		return fmt.Errorf("error encoding the gatewaysim config: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("error encoding the gatewaysim config: %w", err)
	}
	fields["holdRate"] = cfg.HoldRate
	fields["holdFor"] = cfg.HoldFor.String()
	body, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("error encoding the gatewaysim config: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.simURL+"/sim/v1/config", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("error building the gatewaysim config request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("error setting the gatewaysim config: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("error setting the gatewaysim config: HTTP %d: %s", resp.StatusCode, msg)
	}
	return nil
}
