package gatewaysim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	// portOneWebhookTimeout bounds one delivery attempt, so a receiver that
	// hangs costs a few seconds, not a goroutine forever.
	portOneWebhookTimeout = 5 * time.Second
	// portOneWebhookAttempts is how many times a webhook is tried before the
	// simulator gives up. PortOne retries for far longer; a few quick tries
	// are enough to ride out a receiver restarting in a local run or a test.
	portOneWebhookAttempts = 4
	// portOneWebhookBackoff is the wait before the first retry; it doubles
	// after each.
	portOneWebhookBackoff = 100 * time.Millisecond
)

// portOneWebhookTypes is the event PortOne sends when a payment enters a
// status (its V2 webhook "type", 2024-04-25 version).
var portOneWebhookTypes = map[string]string{
	PortOneReady:                "Transaction.Ready",
	PortOnePayPending:           "Transaction.PayPending",
	PortOneVirtualAccountIssued: "Transaction.VirtualAccountIssued",
	PortOnePaid:                 "Transaction.Paid",
	PortOneFailed:               "Transaction.Failed",
	PortOnePartialCancelled:     "Transaction.PartialCancelled",
	PortOneCancelled:            "Transaction.Cancelled",
}

// portOneWebhook is PortOne's V2 webhook body for a payment event. It only
// names the payment: a receiver looks the payment up for its state.
type portOneWebhook struct {
	Type string `json:"type"`
	// Timestamp is when the event happened (RFC 3339); PortOne keeps it
	// across retries.
	Timestamp string             `json:"timestamp"`
	Data      portOneWebhookData `json:"data"`
}

type portOneWebhookData struct {
	PaymentID     string `json:"paymentId"`
	StoreID       string `json:"storeId"`
	TransactionID string `json:"transactionId"`
	// CancellationID is set on the cancel events only.
	CancellationID string `json:"cancellationId,omitempty"`
}

// portOneWebhookFor returns the webhook for p's current status, which the
// caller has just changed. Callers hold p.mu.
func (p *paymentState) portOneWebhookFor(storeID string) *portOneWebhook {
	typ, ok := portOneWebhookTypes[p.status]
	if !ok {
		return nil
	}
	ev := &portOneWebhook{Type: typ, Timestamp: rfc3339(p.statusChangedAt), Data: portOneWebhookData{
		// The same transaction id the lookup answers with (toPortOne).
		PaymentID: p.paymentKey, StoreID: storeID, TransactionID: "tx-" + p.paymentKey,
	}}
	if (p.status == PortOneCancelled || p.status == PortOnePartialCancelled) && len(p.cancels) > 0 {
		ev.Data.CancellationID = p.cancels[len(p.cancels)-1].transactionKey
	}
	return ev
}

// sendPortOneWebhook sends ev to the configured PortOne webhook URL in the
// background and returns at once; nil or no URL configured sends nothing.
// Callers must not hold the payment's lock (the delivery does not need it,
// but reading the config while holding it would order the two locks for no
// reason). The URL and secret are the ones configured now: a config change
// does not redirect a delivery already under way.
func (s *Simulator) sendPortOneWebhook(ev *portOneWebhook) {
	if ev == nil {
		return
	}
	cfg := s.faults.current()
	if cfg.PortOneWebhookURL == "" {
		return
	}
	wh, err := standardwebhooks.NewWebhook(cfg.PortOneWebhookSecret)
	if err != nil {
		// Config.Validate refuses such a secret; this is a wiring mistake.
		s.logger.Error("PortOne webhook not sent: bad secret", slog.String("error", err.Error()))
		return
	}
	body, err := json.Marshal(ev)
	if err != nil {
		s.logger.Error("PortOne webhook not sent", slog.String("error", err.Error()))
		return
	}
	// One id for every attempt, as Standard Webhooks asks, so a receiver can
	// tell a retry from a new event; a duplicate keeps it too.
	id := "msg_" + randomString(alnum, 27)
	s.webhooks.events.Add(1)
	fate := s.faults.drawWebhook()
	if fate.drop {
		s.webhooks.dropped.Add(1)
		return
	}
	if len(fate.delays) > 1 {
		s.webhooks.duplicated.Add(1)
	}
	for _, delay := range fate.delays {
		if delay > 0 {
			s.webhooks.delayed.Add(1)
		}
		go func() {
			s.sleep(delay)
			s.deliverPortOneWebhook(cfg.PortOneWebhookURL, wh, id, ev, body)
		}()
	}
}

// WebhookStats counts what became of the PortOne webhooks since the last
// Reset, the webhook faults' doing included: the body of GET
// /sim/v1/webhooks.
type WebhookStats struct {
	Events     int64 `json:"events"`     // webhooks owed: one per status change
	Dropped    int64 `json:"dropped"`    // never sent (PortOneWebhookDropRate)
	Duplicated int64 `json:"duplicated"` // sent twice (PortOneWebhookDuplicateRate)
	Delayed    int64 `json:"delayed"`    // deliveries held back before their first attempt
	Delivered  int64 `json:"delivered"`  // deliveries the receiver answered 2xx
	GivenUp    int64 `json:"givenUp"`    // deliveries that never got a 2xx
}

// webhookCounters are the live counts behind WebhookStats.
type webhookCounters struct {
	events, dropped, duplicated, delayed, delivered, givenUp atomic.Int64
}

func (c *webhookCounters) stats() WebhookStats {
	return WebhookStats{
		Events: c.events.Load(), Dropped: c.dropped.Load(), Duplicated: c.duplicated.Load(),
		Delayed: c.delayed.Load(), Delivered: c.delivered.Load(), GivenUp: c.givenUp.Load(),
	}
}

func (c *webhookCounters) reset() {
	for _, n := range []*atomic.Int64{&c.events, &c.dropped, &c.duplicated, &c.delayed, &c.delivered, &c.givenUp} {
		n.Store(0)
	}
}

// WebhookStats returns what became of the PortOne webhooks since the last
// Reset.
func (s *Simulator) WebhookStats() WebhookStats {
	return s.webhooks.stats()
}

// deliverPortOneWebhook tries the delivery until the receiver answers 2xx,
// portOneWebhookAttempts attempts pass, or the Simulator is closed.
func (s *Simulator) deliverPortOneWebhook(url string, wh *standardwebhooks.Webhook, id string, ev *portOneWebhook, body []byte) {
	log := s.logger.With(slog.String("webhook_id", id), slog.String("event_type", ev.Type),
		slog.String("payment_key", ev.Data.PaymentID))
	backoff := portOneWebhookBackoff
	for attempt := 1; ; attempt++ {
		err := postPortOneWebhook(url, wh, id, body)
		if err == nil {
			s.webhooks.delivered.Add(1)
			log.Debug("PortOne webhook delivered", slog.Int("attempt", attempt))
			return
		}
		if attempt == portOneWebhookAttempts {
			s.webhooks.givenUp.Add(1)
			log.Warn("PortOne webhook given up", slog.Int("attempts", attempt), slog.String("error", err.Error()))
			return
		}
		log.Info("PortOne webhook failed; retrying", slog.Int("attempt", attempt), slog.String("error", err.Error()))
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-s.closed:
			// Shutting down: a retry would only race the process exit.
			timer.Stop()
			s.webhooks.givenUp.Add(1)
			log.Warn("PortOne webhook given up: simulator closed", slog.Int("attempts", attempt))
			return
		}
		backoff *= 2
	}
}

// postPortOneWebhook makes one signed delivery attempt.
func postPortOneWebhook(url string, wh *standardwebhooks.Webhook, id string, body []byte) error {
	// Signed with the real clock, not the Simulator's (which a test may
	// set anywhere): the receiver checks the timestamp against its own.
	now := time.Now()
	sig, err := wh.Sign(id, now, body)
	if err != nil {
		return fmt.Errorf("error signing: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), portOneWebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Drained so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
