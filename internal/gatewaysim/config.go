package gatewaysim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// DefaultSessionTTL is how long after the customer's authentication a confirm
// is accepted, as at Toss.
const DefaultSessionTTL = 10 * time.Minute

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("250ms", "10m").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("error decoding duration: want a string like \"250ms\": %w", err)
	}
	parsed, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("error parsing duration: %w", err)
	}
	*d = Duration(parsed)
	return nil
}

// Window is a span of time during which the gateway is down.
type Window struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

// Config is the fault configuration. The zero value is a well-behaved gateway:
// no latency, no errors, a 10-minute session TTL.
type Config struct {
	// Seed seeds the random faults, so a run with the same seed and the same
	// sequence of calls injects the same faults.
	Seed uint64 `json:"seed"`
	// Latency is added to every /v1 call; LatencyJitter adds a uniformly
	// random extra in [0, LatencyJitter).
	Latency       Duration `json:"latency"`
	LatencyJitter Duration `json:"latencyJitter"`
	// ErrorRates maps a Toss error code to the probability that a confirm or
	// cancel call is answered with it instead of being performed.
	ErrorRates map[string]float64 `json:"errorRates"`
	// LostResponseRate is the probability that a confirm or cancel is
	// performed and its response then dropped by closing the connection.
	LostResponseRate float64 `json:"lostResponseRate"`
	// HoldRate is the probability that a confirm or cancel is held, as a
	// gateway under load holds a request: it is neither answered nor
	// performed until HoldFor has passed, whatever the client does
	// meanwhile. A client whose timeout is shorter gives up first, and the
	// operation still happens, with every check (balance, refundableAmount,
	// one approval per paymentKey) made at that later moment. While a
	// request is held, its Idempotency-Key answers 409
	// IDEMPOTENT_REQUEST_PROCESSING; other keys are served normally. Held
	// calls are logged with OutcomeHeld once performed. A positive HoldRate
	// needs a positive HoldFor.
	HoldRate float64 `json:"holdRate"`
	// IgnoreRefundableAmount makes the gateway skip the refundableAmount
	// check, as if the caller had not sent it: to show that the relay's key
	// rule alone keeps a held cancel from refunding twice.
	IgnoreRefundableAmount bool     `json:"ignoreRefundableAmount"`
	HoldFor                Duration `json:"holdFor"`
	// ConsecutiveCancelWindow, when positive, refuses a cancel for a
	// paymentKey that arrives within it after the previous cancel for that
	// paymentKey was taken up: FORBIDDEN_CONSECUTIVE_REQUEST (with the
	// status errorStatuses gives it), nothing processed, as Toss refuses a
	// second cancel about a second after the first. A replay or 409 under a
	// stored or in-flight key is answered before the check and does not
	// count; nor does a refused cancel, so the window runs from the last
	// cancel the rule let through (even one that was then held or met an
	// injected fault). The refusal is stored under the Idempotency-Key only
	// when ReplayCachedErrors is on, as an injected error is: it says "not
	// now", not what the gateway did with the payment, and Toss does not
	// document whether it keeps it. Zero turns the rule off.
	ConsecutiveCancelWindow Duration `json:"consecutiveCancelWindow"`
	// Downtime and Down make every /v1 call answer 503
	// FAILED_INTERNAL_SYSTEM_PROCESSING without performing anything: Down
	// always, Downtime during its windows.
	Downtime []Window `json:"downtime"`
	Down     bool     `json:"down"`
	// ReplayCachedErrors stores injected transient errors under the
	// Idempotency-Key, so a retry with the same key gets the same error.
	// Toss does not document whether it does this; both are worth testing.
	ReplayCachedErrors bool `json:"replayCachedErrors"`
	// SessionTTL is how long after authentication a confirm is accepted;
	// zero means DefaultSessionTTL.
	SessionTTL Duration `json:"sessionTTL"`
	// AutoAuthorize lets a confirm with an unknown paymentKey create its
	// session from the request body, for demos and load tests.
	AutoAuthorize bool `json:"autoAuthorize"`
	// TossKeyRetention and PortOneKeyRetention are how long each API keeps
	// an Idempotency-Key's first response; zero means the gateway's own
	// (DefaultTossKeyRetention, DefaultPortOneKeyRetention). A stored
	// response older than its API's retention is forgotten, so a repeat
	// under that key is processed as a fresh request, as at the gateway
	// once its window has passed. Tests scale them down to reach "the key
	// is forgotten" without waiting hours.
	TossKeyRetention    Duration `json:"tossKeyRetention"`
	PortOneKeyRetention Duration `json:"portOneKeyRetention"`
	// PortOneWebhookURL, when set, is where the simulator POSTs a PortOne V2
	// webhook ({"type":"Transaction.Paid", "timestamp", "data":{"paymentId",
	// "storeId", "transactionId"}}) each time a PortOne payment changes
	// status, signed per Standard Webhooks with PortOneWebhookSecret, as
	// PortOne does. It is sent in the background after the change, never
	// holding up the call that made it, and retried a few times on failure.
	PortOneWebhookURL string `json:"portOneWebhookURL,omitempty"`
	// PortOneWebhookSecret signs those webhooks: "whsec_" and base64, the
	// form PortOne's console issues. Required with PortOneWebhookURL.
	PortOneWebhookSecret string `json:"portOneWebhookSecret,omitempty"`
	// PortOneWebhookDropRate is the chance a PortOne webhook is never sent,
	// PortOneWebhookDuplicateRate the chance it is delivered twice under
	// one webhook-id (as when the gateway missed our first 2xx), each
	// delivery on its own delay. PortOneWebhookDelay holds every webhook
	// back that long before its first attempt, and
	// PortOneWebhookDelayJitter adds a uniformly random extra in [0,
	// jitter), so events of one payment can arrive out of order. PortOne
	// promises none of these away: a receiver must settle from a lookup,
	// never from the webhook alone. Drawn from the seeded source, and only
	// while one of them is set.
	PortOneWebhookDropRate      float64  `json:"portOneWebhookDropRate,omitempty"`
	PortOneWebhookDuplicateRate float64  `json:"portOneWebhookDuplicateRate,omitempty"`
	PortOneWebhookDelay         Duration `json:"portOneWebhookDelay,omitempty"`
	PortOneWebhookDelayJitter   Duration `json:"portOneWebhookDelayJitter,omitempty"`
	// TossWebhookURL, when set, is where the simulator POSTs Toss's
	// DEPOSIT_CALLBACK ({createdAt, secret, status, transactionKey,
	// orderId}) when a virtual account is paid into, retried a few times
	// like the PortOne webhooks. Unset: the webhook is lost, and only the
	// relay's deposit sweep finds the deposit.
	TossWebhookURL string `json:"tossWebhookURL,omitempty"`
	// TossWebhookDropRate, TossWebhookDuplicateRate, TossWebhookDelay and
	// TossWebhookDelayJitter are the PortOne webhook faults for Toss's
	// DEPOSIT_CALLBACK: never sent, sent twice, held back before the first
	// attempt. Toss retries a callback for days, and a receiver must not
	// depend on any one arriving.
	TossWebhookDropRate      float64  `json:"tossWebhookDropRate,omitempty"`
	TossWebhookDuplicateRate float64  `json:"tossWebhookDuplicateRate,omitempty"`
	TossWebhookDelay         Duration `json:"tossWebhookDelay,omitempty"`
	TossWebhookDelayJitter   Duration `json:"tossWebhookDelayJitter,omitempty"`
	// VirtualAccountDue is how long an issued virtual account takes a
	// deposit; zero means DefaultVirtualAccountDue (3 days). Tests scale
	// it down to reach "never paid" without waiting days.
	VirtualAccountDue Duration `json:"virtualAccountDue,omitempty"`
}

// virtualAccountDue is VirtualAccountDue or its default.
func (c Config) virtualAccountDue() time.Duration {
	if c.VirtualAccountDue > 0 {
		return c.VirtualAccountDue.std()
	}
	return DefaultVirtualAccountDue
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if c.Latency < 0 || c.LatencyJitter < 0 {
		return errors.New("latency and latencyJitter must not be negative")
	}
	if c.SessionTTL < 0 {
		return errors.New("sessionTTL must not be negative")
	}
	sum := 0.0
	for code, rate := range c.ErrorRates {
		if !KnownCode(code) {
			return fmt.Errorf("errorRates: unknown error code %q", code)
		}
		if code == CodeIdempotentRequestProcessing {
			// The simulator produces this itself from in-flight keys; injecting it
			// would claim a concurrency that is not there.
			return fmt.Errorf("errorRates: %s cannot be injected", code)
		}
		if !validRate(rate) {
			return fmt.Errorf("errorRates[%s]: %v is not a probability in [0, 1]", code, rate)
		}
		sum += rate
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("errorRates: the rates add up to %v, more than 1", sum)
	}
	if !validRate(c.LostResponseRate) {
		return fmt.Errorf("lostResponseRate: %v is not a probability in [0, 1]", c.LostResponseRate)
	}
	if !validRate(c.HoldRate) {
		return fmt.Errorf("holdRate: %v is not a probability in [0, 1]", c.HoldRate)
	}
	if c.HoldFor < 0 {
		return fmt.Errorf("holdFor: %s is negative", c.HoldFor.std())
	}
	if c.TossKeyRetention < 0 {
		return fmt.Errorf("tossKeyRetention: %s is negative", c.TossKeyRetention.std())
	}
	if c.PortOneKeyRetention < 0 {
		return fmt.Errorf("portOneKeyRetention: %s is negative", c.PortOneKeyRetention.std())
	}
	if c.ConsecutiveCancelWindow < 0 {
		return fmt.Errorf("consecutiveCancelWindow: %s is negative", c.ConsecutiveCancelWindow.std())
	}
	if c.HoldRate > 0 && c.HoldFor == 0 {
		// A hold of nothing would log calls as held that were not.
		return fmt.Errorf("holdRate: %v needs a positive holdFor", c.HoldRate)
	}
	if err := c.validatePortOneWebhook(); err != nil {
		return err
	}
	if err := c.validateTossWebhook(); err != nil {
		return err
	}
	for i, w := range c.Downtime {
		if w.From.IsZero() || w.Until.IsZero() {
			return fmt.Errorf("downtime[%d]: from and until are both required", i)
		}
		if !w.Until.After(w.From) {
			return fmt.Errorf("downtime[%d]: until must be after from", i)
		}
	}
	return nil
}

// validatePortOneWebhook checks the webhook destination and its secret: a
// URL the simulator can POST to, and a secret the Standard Webhooks library
// reads (checked here so a bad one is refused at PUT, not at each send).
func (c Config) validatePortOneWebhook() error {
	if c.PortOneWebhookURL != "" {
		u, err := url.Parse(c.PortOneWebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("portOneWebhookURL: %q is not an http(s) URL", c.PortOneWebhookURL)
		}
		if c.PortOneWebhookSecret == "" {
			return errors.New("portOneWebhookURL needs a portOneWebhookSecret to sign with")
		}
	}
	if !validRate(c.PortOneWebhookDropRate) {
		return fmt.Errorf("portOneWebhookDropRate: %v is not a probability in [0, 1]", c.PortOneWebhookDropRate)
	}
	if !validRate(c.PortOneWebhookDuplicateRate) {
		return fmt.Errorf("portOneWebhookDuplicateRate: %v is not a probability in [0, 1]", c.PortOneWebhookDuplicateRate)
	}
	if c.PortOneWebhookDelay < 0 || c.PortOneWebhookDelayJitter < 0 {
		return errors.New("portOneWebhookDelay and portOneWebhookDelayJitter must not be negative")
	}
	if c.PortOneWebhookSecret != "" {
		if _, err := standardwebhooks.NewWebhook(c.PortOneWebhookSecret); err != nil {
			// The library's error never quotes the secret.
			return fmt.Errorf("portOneWebhookSecret: not a Standard Webhooks secret (whsec_ and base64): %w", err)
		}
	}
	return nil
}

// validateTossWebhook checks the DEPOSIT_CALLBACK's destination and faults.
func (c Config) validateTossWebhook() error {
	if c.TossWebhookURL != "" {
		u, err := url.Parse(c.TossWebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tossWebhookURL: %q is not an http(s) URL", c.TossWebhookURL)
		}
	}
	if !validRate(c.TossWebhookDropRate) {
		return fmt.Errorf("tossWebhookDropRate: %v is not a probability in [0, 1]", c.TossWebhookDropRate)
	}
	if !validRate(c.TossWebhookDuplicateRate) {
		return fmt.Errorf("tossWebhookDuplicateRate: %v is not a probability in [0, 1]", c.TossWebhookDuplicateRate)
	}
	if c.TossWebhookDelay < 0 || c.TossWebhookDelayJitter < 0 {
		return errors.New("tossWebhookDelay and tossWebhookDelayJitter must not be negative")
	}
	return nil
}

func validRate(rate float64) bool {
	return !math.IsNaN(rate) && rate >= 0 && rate <= 1
}

// sessionTTL returns the effective session TTL.
func (c Config) sessionTTL() time.Duration {
	if c.SessionTTL == 0 {
		return DefaultSessionTTL
	}
	return time.Duration(c.SessionTTL)
}

// keyRetention returns how long the API gateway (GatewayToss,
// GatewayPortOne) keeps an Idempotency-Key's first response.
func (c Config) keyRetention(gateway string) time.Duration {
	if gateway == GatewayPortOne {
		if c.PortOneKeyRetention == 0 {
			return DefaultPortOneKeyRetention
		}
		return c.PortOneKeyRetention.std()
	}
	if c.TossKeyRetention == 0 {
		return DefaultTossKeyRetention
	}
	return c.TossKeyRetention.std()
}

// downAt reports whether the gateway is down at now.
func (c Config) downAt(now time.Time) bool {
	if c.Down {
		return true
	}
	for _, w := range c.Downtime {
		if !now.Before(w.From) && now.Before(w.Until) {
			return true
		}
	}
	return false
}

// clone returns a copy that shares no maps or slices with c, so a caller can
// keep and change the Config it passed in or got back.
func (c Config) clone() Config {
	if c.ErrorRates != nil {
		rates := make(map[string]float64, len(c.ErrorRates))
		for code, rate := range c.ErrorRates {
			rates[code] = rate
		}
		c.ErrorRates = rates
	}
	if c.Downtime != nil {
		c.Downtime = append([]Window(nil), c.Downtime...)
	}
	return c
}

// ParseErrorRates parses the flag form of Config.ErrorRates,
// "PROVIDER_ERROR=0.05,FAILED_INTERNAL_SYSTEM_PROCESSING=0.02". An empty
// string is no rates. Codes and rates are checked by Config.Validate.
func ParseErrorRates(s string) (map[string]float64, error) {
	rates := map[string]float64{}
	if strings.TrimSpace(s) == "" {
		return rates, nil
	}
	for _, part := range strings.Split(s, ",") {
		code, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || code == "" {
			return nil, fmt.Errorf("error parsing error rate %q: want CODE=RATE", part)
		}
		rate, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("error parsing error rate %q: %w", part, err)
		}
		rates[code] = rate
	}
	return rates, nil
}

// FormatErrorRates is the inverse of ParseErrorRates, with codes sorted.
func FormatErrorRates(rates map[string]float64) string {
	codes := make([]string, 0, len(rates))
	for code := range rates {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	parts := make([]string, 0, len(codes))
	for _, code := range codes {
		parts = append(parts, code+"="+strconv.FormatFloat(rates[code], 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// std returns d as a time.Duration.
func (d Duration) std() time.Duration {
	return time.Duration(d)
}
