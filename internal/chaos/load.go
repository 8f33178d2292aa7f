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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// What a payment is meant to go through, and so where it must end.
type kind string

const (
	kindConfirm kind = "confirm" // → confirmed
	kindCancel  kind = "cancel"  // cancel sent right after the confirm → canceled
	kindPartial kind = "partial" // partial cancel once confirmed → partially_canceled
	kindDecline kind = "decline" // the card company refuses → failed
	kindExpire  kind = "expire"  // confirmed after the session lapsed → expired
	// The money that moves without our asking, PortOne only: the customer
	// pays in the browser, whether or not the checkout confirms with us.
	kindNeverConfirm      kind = "never-confirm"      // paid, never confirmed with us → confirmed, adopted
	kindCancelUnconfirmed kind = "cancel-unconfirmed" // paid, never confirmed, canceled by the checkout → canceled, refunded
	kindLatePay           kind = "late-pay"           // walked away, expired here, then paid after all → confirmed, adopted
)

type plan struct {
	kind      kind
	gateway   string // "toss" or "portone"
	orderID   string
	amount    int64
	partial   int64
	duplicate bool // the checkout sends its confirm twice
	// console is a refund the shop's staff make in the gateway's console
	// once the payment is charged, whatever the relay is doing with it;
	// consoleAmount is its amount, 0 for all that is left.
	console       bool
	consoleAmount int64

	id         string
	paymentKey string
	// loadErr is an answer of the api that a correct system never gives
	// to this plan's requests (see answerError).
	loadErr string

	// depositAmount is what a virtual-account plan's customer transfers
	// (0: the order's amount); forge says an attacker also posts a
	// DEPOSIT_CALLBACK for it with a wrong secret; vaErr is what the
	// harness saw go wrong on the way (see giveRefundAccount).
	depositAmount int64
	forge         bool
	vaErr         string
}

// want is the state a plan must end in.
func (p *plan) want() (string, int64) {
	switch p.kind {
	case kindCancel:
		return "canceled", 0
	case kindPartial:
		return "partially_canceled", p.amount - p.partial
	case kindDecline:
		return "failed", 0
	case kindExpire:
		return "expired", 0
	case kindCancelUnconfirmed:
		return "canceled", 0
	case kindVAWrong:
		// Refunded whole to the account the harness gave.
		return "canceled", 0
	case kindVANever:
		return "expired", 0
	}
	return "confirmed", p.amount
}

// charges reports whether the plan's customer ends up charged at the
// gateway at some point.
func (p *plan) charges() bool {
	return p.kind != kindDecline && p.kind != kindExpire && p.kind != kindVANever
}

func planPayments(cfg Config, rng *rand.Rand) []*plan {
	plans := make([]*plan, cfg.Payments)
	run := strconv.FormatUint(cfg.Seed%1_000_000_000, 36)
	for i := range plans {
		p := &plan{
			gateway:   gatewayToss,
			orderID:   fmt.Sprintf("chaos-%s-%06d", run, i),
			amount:    int64(1000 + rng.IntN(200)*100),
			duplicate: rng.IntN(5) == 0,
		}
		if rng.Float64() < cfg.PortOneShare {
			p.gateway = gatewayPortOne
		}
		if p.gateway == gatewayPortOne {
			switch y := rng.Float64(); {
			case y < cfg.NeverConfirmRate:
				p.kind = kindNeverConfirm
				if rng.Float64() < cfg.CancelUnconfirmedRate {
					p.kind = kindCancelUnconfirmed
				}
			case y < cfg.NeverConfirmRate+cfg.LatePayRate:
				p.kind = kindLatePay
			}
		}
		switch x := rng.IntN(100); {
		case p.kind != "":
		case x < 15:
			p.kind = kindCancel
		case x < 25:
			p.kind = kindPartial
			p.partial = int64(100 * (1 + rng.IntN(int(p.amount/100)-1)))
		case x < 33:
			p.kind = kindDecline
		case x < 37:
			p.kind = kindExpire
		default:
			p.kind = kindConfirm
		}
		if p.charges() && rng.Float64() < cfg.ConsoleRefundRate {
			p.console = true
			if rng.IntN(2) == 0 {
				// At most half, so a partial plan's own cancel may still fit.
				p.consoleAmount = int64(100 * (1 + rng.IntN(int(p.amount/200))))
			}
		}
		plans[i] = p
	}
	planVAs(cfg, plans)
	return plans
}

// push walks every plan through the api and the simulated checkout. g
// holds back new payments while the chaos waits to inject a fault.
func (s *system) push(ctx context.Context, cfg Config, plans []*plan, done *atomic.Int64, g *gate, retries *atomic.Int64) error {
	work := make(chan *plan)
	errs := make(chan error, cfg.Concurrency)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := s.pushOne(ctx, p, retries); err != nil {
					var answer *answerError
					if !errors.As(err, &answer) {
						errs <- fmt.Errorf("order %s: %w", p.orderID, err)
						return
					}
					// A finding: the check reports it, and the load goes on.
					p.loadErr = answer.Error()
				}
				done.Add(1)
			}
		}()
	}
	var err error
feed:
	for _, p := range plans {
		if err = g.wait(ctx); err != nil {
			break
		}
		select {
		case work <- p:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

func (s *system) pushOne(ctx context.Context, p *plan, retries *atomic.Int64) error {
	var created struct {
		ID string `json:"id"`
		// PaymentKey is, for PortOne, the paymentId the api bound the
		// payment to at create: the one the browser SDK pays under.
		PaymentKey string `json:"paymentKey"`
	}
	if err := s.post(ctx, "/v1/payments", p.key("create"), map[string]any{
		"orderId": p.orderID, "amount": p.amount, "orderName": "chaos order", "gateway": p.gateway,
	}, &created, retries, http.StatusCreated, http.StatusOK); err != nil {
		return err
	}
	p.id = created.ID
	if p.isVA() {
		// PortOne's paymentId is the one the api bound at create.
		p.paymentKey = created.PaymentKey
		return s.pushVA(ctx, p, retries)
	}

	if p.gateway == gatewayPortOne {
		// The paymentId the api bound to the intent at create.
		p.paymentKey = created.PaymentKey
		if err := s.payPortOne(ctx, p); err != nil {
			return err
		}
		switch p.kind {
		case kindNeverConfirm:
			// Paid in the browser; the checkout never tells us.
			s.out.consoleRefund(ctx, p)
			return nil
		case kindCancelUnconfirmed:
			// The checkout gives the order up without ever confirming: to
			// us the payment is ready, at the gateway it is charged.
			s.out.consoleRefund(ctx, p)
			return s.post(ctx, "/v1/payments/"+p.id+"/cancel", p.key("cancel"),
				map[string]any{"reason": "chaos: order given up before the confirm"}, nil, retries, http.StatusAccepted, http.StatusOK)
		}
		if err := s.confirmAndCancel(ctx, p, retries); err != nil {
			return err
		}
		if p.kind == kindLatePay {
			s.out.payLate(ctx, p)
		} else {
			s.out.consoleRefund(ctx, p)
		}
		return nil
	}
	req := gatewaysim.AuthorizeRequest{OrderID: p.orderID, Amount: p.amount, OrderName: "chaos order"}
	if p.kind == kindExpire {
		at := time.Now().Add(-11 * time.Minute)
		req.AuthenticatedAt = &at
	}
	auth, err := s.sim.Authorize(ctx, req)
	if err != nil {
		return fmt.Errorf("error authorizing: %w", err)
	}
	p.paymentKey = auth.PaymentKey
	if p.kind == kindDecline {
		if _, err := s.sim.Script(ctx, gatewaysim.Script{
			PaymentKey: auth.PaymentKey, Operation: gatewaysim.OperationConfirm,
			Steps: []gatewaysim.Step{{Kind: gatewaysim.StepError, Code: "REJECT_CARD_COMPANY"}},
		}); err != nil {
			return fmt.Errorf("error scripting a decline: %w", err)
		}
	}
	if err := s.confirmAndCancel(ctx, p, retries); err != nil {
		return err
	}
	s.out.tossStatusWebhook(ctx, p)
	s.out.consoleRefund(ctx, p)
	return nil
}

// The gateways a plan goes through.
const (
	gatewayToss    = "toss"
	gatewayPortOne = "portone"
)

// payPortOne is the customer in PortOne's browser SDK: they pay, their card
// is refused (decline), or they walk away (expire, and a late payer for
// now: READY until the relay's RELAY_OPEN_DEADLINE). The paymentId is the
// one the api bound to the intent, and the paymentKey the checkout
// confirms with.
func (s *system) payPortOne(ctx context.Context, p *plan) error {
	req := gatewaysim.PortOnePayRequest{
		PaymentID: p.paymentKey, OrderID: p.orderID, OrderName: "chaos order", Amount: p.amount,
	}
	switch p.kind {
	case kindDecline:
		req.Status = gatewaysim.PortOneFailed
	case kindExpire, kindLatePay:
		req.Status = gatewaysim.PortOneReady
	}
	paid, err := s.sim.PortOnePay(ctx, req)
	if err != nil {
		return fmt.Errorf("error paying through PortOne: %w", err)
	}
	p.paymentKey = paid.PaymentID
	return nil
}

// confirmAndCancel asks the api to confirm the payment (twice for a
// duplicate plan) and, for a cancel plan, to cancel it at once.
func (s *system) confirmAndCancel(ctx context.Context, p *plan, retries *atomic.Int64) error {
	confirm := map[string]any{"paymentKey": p.paymentKey, "amount": p.amount}
	// A duplicate is the checkout confirming again on its own (a second
	// click), not a retry: it has a key of its own, and the api must see
	// by the paymentKey that it is the same confirm.
	for i := range 1 + b2i(p.duplicate) {
		key := p.key("confirm")
		if i > 0 {
			key = p.key("confirm-again")
		}
		if err := s.post(ctx, "/v1/payments/"+p.id+"/confirm", key, confirm, nil, retries, http.StatusAccepted); err != nil {
			return err
		}
	}
	if p.kind == kindCancel {
		// Usually lands while the confirm is in flight, so it waits for it.
		return s.post(ctx, "/v1/payments/"+p.id+"/cancel", p.key("cancel"),
			map[string]any{"reason": "chaos: customer changed their mind"}, nil, retries, http.StatusAccepted)
	}
	return nil
}

// partialCancels refunds part of each partial plan once it is confirmed.
func (s *system) partialCancels(ctx context.Context, plans []*plan, retries *atomic.Int64, logf func(string, ...any)) error {
	n := 0
	for _, p := range plans {
		if p.kind != kindPartial {
			continue
		}
		n++
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var got struct {
				Status string `json:"status"`
			}
			if err := s.get(ctx, "/v1/payments/"+p.id, &got, retries); err != nil {
				return err
			}
			if got.Status == "confirmed" {
				break
			}
			if got.Status != "confirming" && got.Status != "unknown" || time.Now().After(deadline) {
				// Not confirmable: the check will report it against its plan.
				goto next
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := s.post(ctx, "/v1/payments/"+p.id+"/cancel", p.key("partial-cancel"),
			map[string]any{"reason": "chaos: one item returned", "amount": p.partial}, nil, retries, http.StatusAccepted); err != nil {
			var answer *answerError
			if !errors.As(err, &answer) {
				return err
			}
			p.loadErr = answer.Error()
		}
	next:
	}
	logf("sent %d partial cancels", n)
	return nil
}

// post sends one logical POST to the api under its Idempotency-Key, every
// one of them with a key: each operation (a create, a confirm, each cancel)
// has its own, and every retry of it reuses it, so when an answer is lost
// (the api's connection to Postgres lost its COMMIT acknowledgement, the
// api died, the client timed out) the retry gets the first answer
// replayed instead of doing the operation again.
func (s *system) post(ctx context.Context, path, key string, body, out any, retries *atomic.Int64, want ...int) error {
	if key == "" {
		return fmt.Errorf("POST %s: no Idempotency-Key", path)
	}
	return s.api(ctx, http.MethodPost, path, key, body, out, retries, want...)
}

// get reads from the api, retrying like post.
func (s *system) get(ctx context.Context, path string, out any, retries *atomic.Int64) error {
	return s.api(ctx, http.MethodGet, path, "", nil, out, retries, http.StatusOK)
}

// key is the Idempotency-Key of one of the plan's operations.
func (p *plan) key(op string) string {
	return op + "-" + p.orderID
}

// api calls the api, retrying through the outages the chaos causes: an
// answer that does not come, a 5xx, or the api still answering our own
// first try (409 idempotency_request_in_progress).
func (s *system) api(ctx context.Context, method, path, key string, body, out any, retries *atomic.Int64, want ...int) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var last string
	// Patient enough to outlast a paused relay that holds a lock this
	// request waits for (up to a minute and a bit), and a failover.
	deadline := time.Now().Add(apiPatience)
	for try := 0; ; try++ {
		if try > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s %s: gave up after %d tries in %s: %s", method, path, try, apiPatience, last)
			}
			retries.Add(1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, s.apiURL+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+s.apiKey)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			last = err.Error()
			continue
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusConflict && bytes.Contains(data, []byte("idempotency_request_in_progress")) {
			// The api lost its database for a moment, or our own first try
			// is still being answered.
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, data)
			continue
		}
		if resp.Header.Get("Idempotent-Replayed") == "true" {
			s.apiReplays.Add(1)
		}
		for _, w := range want {
			if resp.StatusCode == w {
				if out != nil {
					return json.Unmarshal(data, out)
				}
				return nil
			}
		}
		return &answerError{method: method, path: path, key: key, status: resp.StatusCode, body: string(data), tries: try + 1}
	}
}

// answerError is an answer of the api that a correct system never gives
// to the load's request (the load only asks what its plan allows, so a 4xx
// means the system lost track of an earlier request): a finding to report
// against the payment, not a reason to stop the load.
type answerError struct {
	method, path, key string
	status            int
	body              string
	tries             int
}

func (e *answerError) Error() string {
	return fmt.Sprintf("%s %s (Idempotency-Key %s, try %d): HTTP %d: %s", e.method, e.path, e.key, e.tries, e.status, e.body)
}

// apiPatience is how long one logical api call is retried.
const apiPatience = 3 * time.Minute

var httpClient = &http.Client{Timeout: 15 * time.Second}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var errStuck = errors.New("outbox did not drain")
