package gatewaysim

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// faultInjector holds the fault Config and the seeded random source the
// random faults are drawn from. One mutex guards both: draws are cheap and a
// rand.Rand is not safe for concurrent use.
type faultInjector struct {
	mu  sync.Mutex
	cfg Config
	rng *rand.Rand
}

func newFaultInjector(cfg Config) *faultInjector {
	f := &faultInjector{}
	f.set(cfg)
	return f
}

// set replaces the config and reseeds, so the same config always starts the
// same sequence of faults.
func (f *faultInjector) set(cfg Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = cfg.clone()
	f.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
}

// current returns the config without copying it. set never mutates a config
// it has handed out (it replaces it whole), so callers may read but must not
// modify the result. It saves a map copy on every /v1 call.
func (f *faultInjector) current() Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

// config returns a copy of the config the caller may keep and modify.
func (f *faultInjector) config() Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg.clone()
}

// latency returns how long this call should take.
func (f *faultInjector) latency() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := time.Duration(f.cfg.Latency)
	if f.cfg.LatencyJitter > 0 {
		d += time.Duration(f.rng.Int64N(int64(f.cfg.LatencyJitter)))
	}
	return d
}

// drawError picks the error code to inject into this call, if any: one
// uniform draw walked along the rates in code order, so at most one error
// fires and the total rate is the sum of the rates.
func (f *faultInjector) drawError() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cfg.ErrorRates) == 0 {
		return "", false
	}
	codes := make([]string, 0, len(f.cfg.ErrorRates))
	for code := range f.cfg.ErrorRates {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	draw := f.rng.Float64()
	for _, code := range codes {
		rate := f.cfg.ErrorRates[code]
		if draw < rate {
			return code, true
		}
		draw -= rate
	}
	return "", false
}

// drawLost reports whether this call's response is dropped.
func (f *faultInjector) drawLost() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg.LostResponseRate <= 0 {
		return false
	}
	return f.rng.Float64() < f.cfg.LostResponseRate
}

// drawHold reports whether this call is held, and for how long. It draws
// nothing while holds are off, so a config without holds injects exactly the
// faults it did before holds existed.
func (f *faultInjector) drawHold() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg.HoldRate <= 0 || f.cfg.HoldFor <= 0 {
		return 0, false
	}
	if f.rng.Float64() < f.cfg.HoldRate {
		return f.cfg.HoldFor.std(), true
	}
	return 0, false
}

// webhookFate is what the webhook faults do to one PortOne webhook: never
// sent, or sent once or twice, each delivery after its own delay.
type webhookFate struct {
	drop   bool
	delays []time.Duration // one per delivery
}

// drawWebhook decides one PortOne webhook's fate. It draws nothing while
// the webhook faults are off, so turning them on changes no other fault's
// sequence for a config that had none.
func (f *faultInjector) drawWebhook() webhookFate {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg
	return f.drawFate(c.PortOneWebhookDropRate, c.PortOneWebhookDuplicateRate, c.PortOneWebhookDelay.std(), c.PortOneWebhookDelayJitter.std())
}

// drawTossWebhook decides one Toss DEPOSIT_CALLBACK's fate, as drawWebhook
// does PortOne's.
func (f *faultInjector) drawTossWebhook() webhookFate {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg
	return f.drawFate(c.TossWebhookDropRate, c.TossWebhookDuplicateRate, c.TossWebhookDelay.std(), c.TossWebhookDelayJitter.std())
}

// drawFate draws a webhook's fate from its faults. Callers hold f.mu.
func (f *faultInjector) drawFate(drop, duplicate float64, delay, jitter time.Duration) webhookFate {
	if drop <= 0 && duplicate <= 0 && delay <= 0 && jitter <= 0 {
		return webhookFate{delays: []time.Duration{0}}
	}
	if drop > 0 && f.rng.Float64() < drop {
		return webhookFate{drop: true}
	}
	n := 1
	if duplicate > 0 && f.rng.Float64() < duplicate {
		n = 2
	}
	fate := webhookFate{delays: make([]time.Duration, n)}
	for i := range fate.delays {
		d := delay
		if jitter > 0 {
			d += time.Duration(f.rng.Int64N(int64(jitter)))
		}
		fate.delays[i] = d
	}
	return fate
}
