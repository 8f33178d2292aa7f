package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// UnaskedCounts counts the money that moved without our asking, and what
// became of it here (docs/design.md section 10).
type UnaskedCounts struct {
	// NeverConfirmed counts the PortOne payments paid in the browser and
	// never confirmed with us; CanceledUnconfirmed those of them the
	// checkout canceled, still without a confirm.
	NeverConfirmed      int `json:"neverConfirmed"`
	CanceledUnconfirmed int `json:"canceledUnconfirmed"`
	// LatePayments counts the PortOne payments paid after we had marked
	// them expired.
	LatePayments int `json:"latePayments"`
	// Adopted counts the never-confirmed and late payments that ended
	// charged here as at the gateway; Refunded the canceled-unconfirmed
	// ones that ended canceled here with the gateway's refund.
	Adopted  int `json:"adopted"`
	Refunded int `json:"refunded"`
	// ConsoleRefunds and ConsoleRefundAmount are the refunds the shop's
	// staff made in the gateway's console, as its ledger shows them;
	// ConsoleRefused the ones it refused (nothing left to refund).
	ConsoleRefunds      int   `json:"consoleRefunds"`
	ConsoleRefundAmount int64 `json:"consoleRefundAmount"`
	ConsoleRefused      int   `json:"consoleRefused"`
	// ConsoleRefundsTakenAsOurs counts the Toss console refunds of exactly
	// a cancel's amount, made at the balance its request carried after it
	// was sent, that the relay took for that cancel's: Toss's list of
	// cancels cannot tell the two apart (the money is right either way).
	ConsoleRefundsTakenAsOurs int `json:"consoleRefundsTakenAsOurs"`
	// ChargedUnsettled counts the payments charged at the gateway and not
	// settled here (ready, failed, expired, or no row): 0 is the promise.
	ChargedUnsettled int `json:"chargedUnsettled"`
	// VA counts the virtual-account payments and what befell them.
	VA VACounts `json:"va"`
}

// outside is the world around the outbox that moves money without asking
// it: customers who pay in the browser and never come back, or come back
// after we gave up on them; shop staff refunding in the gateway's console;
// and Toss's webhooks about it, delayed, duplicated or dropped. Its work
// runs on goroutines of its own, beside the load; wait waits for it.
type outside struct {
	s    *system
	cfg  Config
	logf func(string, ...any)
	wg   sync.WaitGroup

	mu     sync.Mutex
	rng    *rand.Rand
	counts UnaskedCounts           // under mu
	toss   gatewaysim.WebhookStats // the Toss webhooks this harness sent, under mu
}

func newOutside(s *system, cfg Config, seed uint64, logf func(string, ...any)) *outside {
	return &outside{s: s, cfg: cfg, logf: logf, rng: rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))}
}

// wait waits for every late payer, console refund and webhook under way.
func (o *outside) wait() {
	o.wg.Wait()
}

func (o *outside) count(f func(c *UnaskedCounts)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(&o.counts)
}

// consoleRefund has the shop's staff refund p in the gateway's console, if
// its plan says so, once the gateway has charged it: after a short random
// while, so it lands among the relay's own confirm and cancels.
func (o *outside) consoleRefund(ctx context.Context, p *plan) {
	if !p.console {
		return
	}
	o.mu.Lock()
	wait := time.Duration(o.rng.Int64N(int64(500 * time.Millisecond)))
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		if err := o.refundInConsole(ctx, p, wait); err != nil {
			o.logf("console refund of order %s: %v", p.orderID, err)
		}
	}()
}

// consolePatience is how long the staff wait for the gateway to charge a
// payment they mean to refund (the relay's confirm may be held, lost, or
// the gateway down meanwhile).
const consolePatience = 90 * time.Second

func (o *outside) refundInConsole(ctx context.Context, p *plan, wait time.Duration) error {
	if !sleepCtx(ctx, wait) {
		return ctx.Err()
	}
	deadline := time.Now().Add(consolePatience)
	for {
		e, err := o.s.sim.LedgerEntry(ctx, p.paymentKey)
		if err == nil && e.Approvals > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway never charged %s (last: %v); no refund made", p.paymentKey, err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	res, err := o.s.sim.ConsoleCancel(ctx, gatewaysim.ConsoleCancelRequest{
		PaymentKey: p.paymentKey, Amount: p.consoleAmount, Reason: "chaos: refunded by the shop's staff",
	})
	var simErr *gatewaysim.Error
	if errors.As(err, &simErr) && simErr.Status < 500 {
		// Nothing left to refund, or less than asked: our own cancels got
		// there first. The staff shrug.
		o.count(func(c *UnaskedCounts) { c.ConsoleRefused++ })
		return nil
	}
	if err != nil {
		return fmt.Errorf("error refunding in the console: %w", err)
	}
	if p.gateway == gatewayToss {
		// Toss tells the shop of the change by webhook; PortOne's the
		// simulator sends itself.
		o.tossWebhook(ctx, p.paymentKey, p.orderID, res.Status)
	}
	return nil
}

// tossStatusWebhook plays Toss telling the shop of a payment's status
// change: a moment after the checkout's requests, whatever the gateway's
// record says by then (DONE, CANCELED, PARTIAL_CANCELED; nothing if it has
// not charged yet, as Toss sends nothing until it has).
func (o *outside) tossStatusWebhook(ctx context.Context, p *plan) {
	if !p.charges() {
		return
	}
	o.mu.Lock()
	wait := time.Second + time.Duration(o.rng.Int64N(int64(time.Second)))
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		if !sleepCtx(ctx, wait) {
			return
		}
		e, err := o.s.sim.LedgerEntry(ctx, p.paymentKey)
		if err != nil || e.Approvals == 0 {
			return
		}
		o.tossWebhook(ctx, p.paymentKey, p.orderID, e.Status)
	}()
}

// payLate has the customer of a late-pay plan, who walked away, pay after
// all once our side has marked the payment expired.
func (o *outside) payLate(ctx context.Context, p *plan) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		if err := o.payAfterExpiry(ctx, p); err != nil {
			o.logf("late payment of order %s: %v", p.orderID, err)
		}
		o.consoleRefund(ctx, p)
	}()
}

func (o *outside) payAfterExpiry(ctx context.Context, p *plan) error {
	// RELAY_OPEN_DEADLINE after the confirm, plus the relay's own delays
	// under the chaos.
	deadline := time.Now().Add(portOneOpenDeadline + 2*time.Minute)
	var retries atomic.Int64
	for {
		var got struct {
			Status string `json:"status"`
		}
		if err := o.s.get(ctx, "/v1/payments/"+p.id, &got, &retries); err != nil {
			return err
		}
		if got.Status == "expired" {
			break
		}
		if got.Status != "confirming" && got.Status != "unknown" || time.Now().After(deadline) {
			// Pay anyway: the check holds whatever our side did to the
			// gateway's word.
			o.logf("order %s is %s, not expired, when its customer pays late", p.orderID, got.Status)
			break
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
	if _, err := o.s.sim.PortOnePay(ctx, gatewaysim.PortOnePayRequest{
		PaymentID: p.paymentKey, OrderID: p.orderID, OrderName: "chaos order", Amount: p.amount,
	}); err != nil {
		return fmt.Errorf("error paying late: %w", err)
	}
	o.count(func(c *UnaskedCounts) { c.LatePayments++ })
	return nil
}

// tossWebhook sends Toss's PAYMENT_STATUS_CHANGED webhook for a payment,
// as Toss does: unsigned, and subject to the webhook faults (dropped,
// duplicated, delayed), each delivery retried a few times on a 5xx.
func (o *outside) tossWebhook(ctx context.Context, paymentKey, orderID, status string) {
	o.mu.Lock()
	o.toss.Events++
	if o.rng.Float64() < o.cfg.WebhookDropRate {
		o.toss.Dropped++
		o.mu.Unlock()
		return
	}
	n := 1
	if o.rng.Float64() < o.cfg.WebhookDuplicateRate {
		n = 2
		o.toss.Duplicated++
	}
	delays := make([]time.Duration, n)
	for i := range delays {
		delays[i] = o.cfg.WebhookDelay
		if o.cfg.WebhookJitter > 0 {
			delays[i] += time.Duration(o.rng.Int64N(int64(o.cfg.WebhookJitter)))
		}
		if delays[i] > 0 {
			o.toss.Delayed++
		}
	}
	o.mu.Unlock()
	body, _ := json.Marshal(map[string]any{
		"eventType": "PAYMENT_STATUS_CHANGED",
		"createdAt": time.Now().In(time.FixedZone("KST", 9*3600)).Format("2006-01-02T15:04:05.000000"),
		"data":      map[string]any{"paymentKey": paymentKey, "orderId": orderID, "status": status},
	})
	for _, d := range delays {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			ok := sleepCtx(ctx, d) && o.postTossWebhook(ctx, body)
			o.mu.Lock()
			defer o.mu.Unlock()
			if ok {
				o.toss.Delivered++
			} else {
				o.toss.GivenUp++
			}
		}()
	}
}

// postTossWebhook delivers one Toss webhook to the api, trying again on a
// 5xx or no answer, as Toss retries.
func (o *outside) postTossWebhook(ctx context.Context, body []byte) bool {
	backoff := 200 * time.Millisecond
	for attempt := 1; attempt <= 5; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.s.apiURL+"/v1/webhooks/toss", bytes.NewReader(body))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return true
			}
			if resp.StatusCode < 500 {
				o.logf("the api refused a Toss webhook: HTTP %d", resp.StatusCode)
				return false
			}
		}
		if !sleepCtx(ctx, backoff) {
			return false
		}
		backoff *= 2
	}
	return false
}

// settle waits, once the outbox has drained, for the money that moved
// without our asking to be known here: PortOne's webhooks under way to
// arrive or be given up, and every payment the gateway charged and still
// holds money of to be charged on our side too (a webhook's lookup, or the
// relay's own sweep of payments left ready, finds it). Then, when drain
// is set, it drains again, for the lookups that set off. Past timeout it
// goes on, and the checks report what did not settle.
func (s *system) settle(ctx context.Context, timeout time.Duration, drain bool, logf func(string, ...any)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		n, what, err := s.unsettled(ctx)
		if err == nil && n == 0 {
			logf("the gateway's unasked-for money settled here in %s", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			logf("after %s, still unsettled: %s (last error: %v); the checks report them", timeout, what, err)
			break
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
	if !drain {
		return nil
	}
	return s.drain(ctx, s.cfg.DrainTimeout, logf)
}

// unsettled counts what settle waits for, and says what it is.
func (s *system) unsettled(ctx context.Context) (int, string, error) {
	hooks, err := s.sim.WebhookStats(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("error reading the gateway's webhook counts: %w", err)
	}
	tossHooks, err := s.sim.TossWebhookStats(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("error reading the gateway's Toss webhook counts: %w", err)
	}
	inFlight := int(hooks.Events - hooks.Dropped + hooks.Duplicated - hooks.Delivered - hooks.GivenUp)
	inFlight += int(tossHooks.Events - tossHooks.Dropped + tossHooks.Duplicated - tossHooks.Delivered - tossHooks.GivenUp)
	ledger, err := s.sim.Ledger(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("error reading the gateway's ledger: %w", err)
	}
	st, err := s.readState(ctx)
	if err != nil {
		return 0, "", err
	}
	byKey, byOrder := paymentIndexes(st)
	money := 0
	for _, e := range ledger.Payments {
		if e.Approvals == 0 || e.BalanceAmount == 0 {
			continue
		}
		our := ourPaymentFor(byKey, byOrder, e)
		if our == nil || our.status == "ready" || our.status == "failed" || our.status == "expired" || our.status == "canceled" {
			money++
		}
	}
	return inFlight + money, fmt.Sprintf("%d gateway webhooks under way, %d payments charged at the gateway and not here", inFlight, money), nil
}

// countOutside puts in the report what the world outside did: the late
// payments and console refunds it made or was refused, and the webhook
// faults of both gateways.
func (s *system) countOutside(ctx context.Context, rep *Report, logf func(string, ...any)) error {
	hooks, err := s.sim.WebhookStats(ctx)
	if err != nil {
		return fmt.Errorf("error reading the gateway's webhook counts: %w", err)
	}
	if hooks.GivenUp > 0 && s.simProc != nil {
		// Why: a receiver down for longer than the simulator's few quick
		// retries, or one that refused them.
		shown := 0
		for _, line := range strings.Split(s.simProc.Output().String(), "\n") {
			if strings.Contains(line, "webhook given up") && shown < 3 {
				logf("gatewaysim: %s", line)
				shown++
			}
		}
	}
	o := s.out
	o.mu.Lock()
	defer o.mu.Unlock()
	rep.Unasked.LatePayments = o.counts.LatePayments
	rep.Unasked.ConsoleRefused = o.counts.ConsoleRefused
	payments := rep.Unasked.VA.Payments
	rep.Unasked.VA = o.counts.VA
	rep.Unasked.VA.Payments = payments
	tossHooks, err := s.sim.TossWebhookStats(ctx)
	if err != nil {
		return fmt.Errorf("error reading the gateway's Toss webhook counts: %w", err)
	}
	rep.GatewayWebhooks = map[string]gatewaysim.WebhookStats{gatewayPortOne: hooks, gatewayToss: o.toss, "toss-deposit": tossHooks}
	return nil
}
