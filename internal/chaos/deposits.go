package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// The virtual-account plans (docs/design.md section 19), for both
// gateways: the customer is issued an account and pays into it early,
// late (just before its due date), with another amount than the order's,
// or never.
const (
	kindVAEarly kind = "va-early" // → confirmed
	kindVALate  kind = "va-late"  // → confirmed
	// The deposit cannot be kept and its refund needs the customer's
	// account: held in unknown until the harness, playing the operator,
	// names one after a while → canceled, refunded whole.
	kindVAWrong kind = "va-wrong"
	kindVANever kind = "va-never" // → expired, by a lookup after the due date
)

// The chaos run's virtual-account clock: the simulator's due date and the
// relays' deposit sweep (RELAY_DEPOSIT_*) scaled from days and hours down
// to seconds, so a run reaches "late" and "never". The grace stays above a
// second: Toss writes due dates to the second.
const (
	vaDue        = 12 * time.Second
	vaSweepFar   = 2 * time.Second
	vaSweepNear  = 4 * time.Second
	vaSweepClose = 500 * time.Millisecond
	vaGrace      = 2 * time.Second
)

// isVA reports whether the plan pays by virtual account.
func (p *plan) isVA() bool {
	switch p.kind {
	case kindVAEarly, kindVALate, kindVAWrong, kindVANever:
		return true
	}
	return false
}

// planVAs makes VAShare of the plans, at least, virtual-account ones: that
// many of the card plans (never the money PortOne's customers move without
// us, nor a console refund, which would need the customer's account too),
// picked with a source of their own, so every other plan of a seed stays
// as it was.
func planVAs(cfg Config, plans []*plan) {
	want := int(math.Ceil(cfg.VAShare * float64(len(plans))))
	if want == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(cfg.Seed^0x5641, cfg.Seed^0x6465706f736974))
	var cards []*plan
	for _, p := range plans {
		switch p.kind {
		case kindConfirm, kindCancel, kindPartial, kindDecline, kindExpire:
			if !p.console {
				cards = append(cards, p)
			}
		}
	}
	rng.Shuffle(len(cards), func(i, j int) { cards[i], cards[j] = cards[j], cards[i] })
	for _, p := range cards[:min(want, len(cards))] {
		p.partial = 0
		planVA(p, cfg, rng.Float64)
	}
}

// planVA makes p a virtual-account plan of its gateway, by the shares of
// each way its customer pays. A Toss plan's DEPOSIT_CALLBACK may also be
// forged by an attacker who knows the order but not the secret.
func planVA(p *plan, cfg Config, draw func() float64) {
	switch x := draw(); {
	case x < 0.35:
		p.kind = kindVAEarly
	case x < 0.6:
		p.kind = kindVALate
	case x < 0.8:
		p.kind = kindVAWrong
		// Above or below the order's amount, never nothing.
		p.depositAmount = p.amount + 500
		if draw() < 0.5 {
			p.depositAmount = p.amount - 500
		}
	default:
		p.kind = kindVANever
	}
	p.forge = p.gateway == gatewayToss && draw() < cfg.ForgedDepositRate
}

// VACounts counts the virtual-account payments of a run and what their
// customers, the gateway's webhooks and the harness did.
type VACounts struct {
	// Payments counts the plans by kind (va-early, va-late, va-wrong,
	// va-never).
	Payments map[string]int `json:"payments"`
	// Waited counts the payments seen in waiting_for_deposit; Deposits
	// the deposits made; Missed the plans whose deposit could not be made
	// (the account was not issued, or past its due date, in time).
	Waited   int `json:"waited"`
	Deposits int `json:"deposits"`
	Missed   int `json:"missed"`
	// Held counts the wrong-amount payments seen waiting for a refund
	// account (unknown, refund_account_required, on the attention list);
	// AccountsGiven the refund accounts the harness then supplied.
	Held          int `json:"held"`
	AccountsGiven int `json:"accountsGiven"`
	// Forged counts the DEPOSIT_CALLBACKs with a wrong secret the harness
	// sent; ForgedAccepted those the api answered 2xx, as it must (and
	// changes nothing: the plan's end is checked as if none came).
	Forged         int `json:"forged"`
	ForgedAccepted int `json:"forgedAccepted"`
}

// vaPatience is how long the harness waits for a virtual-account payment
// to reach a state: past the due date and grace, with relays killed,
// paused and Postgres failing over meanwhile.
const vaPatience = vaDue + 90*time.Second

// vaView is what the harness reads of a payment from the api.
type vaView struct {
	Status         string `json:"status"`
	VirtualAccount *struct {
		DueDate *time.Time `json:"dueDate"`
	} `json:"virtualAccount"`
	Failure *struct {
		Code string `json:"code"`
	} `json:"failure"`
}

// pushVA walks a virtual-account plan through the api: the customer picks
// a virtual account (Toss's widget, PortOne's SDK, played by gatewaysim)
// and the checkout confirms; the customer's deposit, or none, comes later
// (outside.virtualAccount).
func (s *system) pushVA(ctx context.Context, p *plan, retries *atomic.Int64) error {
	if p.gateway == gatewayPortOne {
		paid, err := s.sim.PortOnePay(ctx, gatewaysim.PortOnePayRequest{
			PaymentID: p.paymentKey, OrderID: p.orderID, OrderName: "chaos order", Amount: p.amount,
			Status: gatewaysim.PortOneVirtualAccountIssued,
		})
		if err != nil {
			return fmt.Errorf("error issuing a PortOne virtual account: %w", err)
		}
		p.paymentKey = paid.PaymentID
	} else {
		auth, err := s.sim.Authorize(ctx, gatewaysim.AuthorizeRequest{OrderID: p.orderID, Amount: p.amount, OrderName: "chaos order",
			Method: gatewaysim.MethodVirtualAccount})
		if err != nil {
			return fmt.Errorf("error authorizing: %w", err)
		}
		p.paymentKey = auth.PaymentKey
	}
	if err := s.confirmAndCancel(ctx, p, retries); err != nil {
		return err
	}
	s.out.virtualAccount(ctx, p)
	return nil
}

// virtualAccount plays the customer of a virtual-account plan, and the
// operator of a wrong-amount one, once the account is issued: a deposit
// at once, near the due date, of another amount, or none; then it waits
// for the payment to leave waiting_for_deposit, so the drain after it
// finds every plan ended (a never-paid one expires after its due date).
func (o *outside) virtualAccount(ctx context.Context, p *plan) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		if err := o.playVA(ctx, p); err != nil {
			o.logf("virtual account of order %s: %v", p.orderID, err)
		}
	}()
}

func (o *outside) playVA(ctx context.Context, p *plan) error {
	var retries atomic.Int64
	deadline := time.Now().Add(vaPatience)
	view, err := o.waitVA(ctx, p, deadline, &retries, func(v vaView) bool { return v.Status != "confirming" && v.Status != "unknown" })
	if err != nil {
		// No account to pay into within the customer's patience (the
		// relays paused and killed through a long run hold confirms for
		// minutes): the customer gave up and never paid, so the payment
		// must end as a never-paid one does, expired after its due date.
		// (The 10,000-payment run found 17 plans the check held to a
		// deposit that was never made.)
		o.missed(p)
		return err
	}
	if view.Status == "expired" {
		// The account lapsed before we saw it (a relay frozen past its due
		// date, say): the customer came too late, and never paid.
		o.missed(p)
		return nil
	}
	if view.Status != "waiting_for_deposit" || view.VirtualAccount == nil || view.VirtualAccount.DueDate == nil {
		return fmt.Errorf("the payment is %s, not waiting for its deposit", view.Status)
	}
	o.count(func(c *UnaskedCounts) { c.VA.Waited++ })
	due := *view.VirtualAccount.DueDate
	if p.forge {
		o.forgeDeposit(ctx, p)
	}
	switch p.kind {
	case kindVAEarly, kindVAWrong:
		if !sleepCtx(ctx, o.jitter(time.Second)) {
			return ctx.Err()
		}
	case kindVALate:
		// The due date is written to the second: a deposit 1.5s before
		// the written one is inside the account's life.
		if !sleepCtx(ctx, time.Until(due.Add(-1500*time.Millisecond))) {
			return ctx.Err()
		}
	}
	if p.kind != kindVANever {
		_, err := o.s.sim.Deposit(ctx, gatewaysim.DepositRequest{PaymentKey: p.paymentKey, Amount: p.depositAmount})
		var simErr *gatewaysim.Error
		switch {
		case errors.As(err, &simErr) && simErr.Status == http.StatusConflict:
			// Past its due date by the time the customer got there:
			// never paid, and it must end so.
			o.missed(p)
		case err != nil:
			return fmt.Errorf("error depositing: %w", err)
		default:
			o.count(func(c *UnaskedCounts) { c.VA.Deposits++ })
		}
	}
	if p.kind == kindVAWrong {
		if err := o.giveRefundAccount(ctx, p, deadline, &retries); err != nil {
			return err
		}
	}
	if _, err := o.waitVA(ctx, p, deadline, &retries, func(v vaView) bool { return v.Status != "waiting_for_deposit" }); err != nil {
		return err
	}
	return nil
}

// giveRefundAccount is the operator of a wrong-amount deposit: once the
// payment waits for the customer's refund account (unknown,
// refund_account_required) and is on the attention list, and after a
// while (a person gets to it), the account is supplied. A payment that
// never waits for it is the check's to report.
func (o *outside) giveRefundAccount(ctx context.Context, p *plan, deadline time.Time, retries *atomic.Int64) error {
	held := func(v vaView) bool {
		return v.Status == "unknown" && v.Failure != nil && v.Failure.Code == "refund_account_required"
	}
	view, err := o.waitVA(ctx, p, deadline, retries, func(v vaView) bool { return held(v) || v.Status == "canceled" || v.Status == "canceling" })
	if err != nil {
		return err
	}
	if !held(view) {
		p.vaErr = fmt.Sprintf("a deposit of %d for an order of %d went to %s without waiting for a refund account", p.depositAmount, p.amount, view.Status)
		return nil
	}
	listed, err := o.s.attentionList(ctx)
	if err != nil {
		return err
	}
	if !listed[p.id] {
		p.vaErr = "waiting for a refund account, and not on the attention list"
	}
	o.count(func(c *UnaskedCounts) { c.VA.Held++ })
	if !sleepCtx(ctx, 500*time.Millisecond+o.jitter(2*time.Second)) {
		return ctx.Err()
	}
	acct := map[string]string{"bank": "88", "accountNumber": "11012345678", "holderName": "김토스"}
	if p.gateway == gatewayPortOne {
		acct["bank"] = "KOOKMIN"
	}
	err = o.s.post(ctx, "/v1/ops/payments/"+p.id+"/refund-account", p.key("refund-account"),
		map[string]any{"reason": "chaos: the customer gave their account by phone", "refundReceiveAccount": acct}, nil, retries, http.StatusAccepted)
	var answer *answerError
	if errors.As(err, &answer) && answer.status == http.StatusConflict && answer.tries > 1 {
		// An earlier try committed and its answer was lost: the payment
		// no longer waits for an account, which is what a retry is told.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("error giving the refund account: %w", err)
	}
	o.count(func(c *UnaskedCounts) { c.VA.AccountsGiven++ })
	return nil
}

// waitVA reads the payment from the api until done says so or deadline.
func (o *outside) waitVA(ctx context.Context, p *plan, deadline time.Time, retries *atomic.Int64, done func(vaView) bool) (vaView, error) {
	for {
		var v vaView
		if err := o.s.get(ctx, "/v1/payments/"+p.id, &v, retries); err != nil {
			return v, err
		}
		if done(v) {
			return v, nil
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("still %s after %s; the check reports it", v.Status, vaPatience)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return v, ctx.Err()
		}
	}
}

// forgeDeposit is an attacker posting Toss's DEPOSIT_CALLBACK for the
// plan's order with a made-up secret (the real one is only in the confirm
// answer): the api must answer it as any webhook it does not act on and
// change nothing, which the plan's end shows.
func (o *outside) forgeDeposit(ctx context.Context, p *plan) {
	body, _ := json.Marshal(map[string]any{
		"createdAt":      time.Now().In(time.FixedZone("KST", 9*3600)).Format("2006-01-02T15:04:05.000000"),
		"secret":         "ps_forged0000000000000000000000",
		"status":         "DONE",
		"transactionKey": "forged-" + p.orderID,
		"orderId":        p.orderID,
	})
	o.count(func(c *UnaskedCounts) { c.VA.Forged++ })
	// Delivered as a webhook is (tried again through an api restart or a
	// failover): refused with a 4xx would tell the attacker something.
	if o.postTossWebhook(ctx, body) {
		o.count(func(c *UnaskedCounts) { c.VA.ForgedAccepted++ })
	}
}

// missed turns a plan whose customer could not pay in time into a
// never-paid one. Only its goroutine touches the plan until the check.
func (o *outside) missed(p *plan) {
	p.kind = kindVANever
	o.count(func(c *UnaskedCounts) { c.VA.Missed++ })
}

// jitter is a random wait in [0, d).
func (o *outside) jitter(d time.Duration) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Duration(o.rng.Int64N(int64(d)))
}
