package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payment-outbox/payment-outbox/client"
)

// webhookFailRate is the share of deliveries the receiver first answers
// with 503, as a checkout under load would: each must come again.
const webhookFailRate = 0.05

// receiver is the checkout's webhook endpoint: it verifies every delivery's
// Standard Webhooks signature and keeps what arrived, by webhook-id.
type receiver struct {
	srv    *http.Server
	url    string
	secret string

	mu       sync.Mutex
	rng      *rand.Rand
	events   map[string]client.Event
	refused  int // answered 503 on purpose
	badSigns int // did not verify
}

// startReceiver listens on a loopback port.
func startReceiver(seed uint64) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("error listening for webhooks: %w", err)
	}
	r := &receiver{
		url:    "http://" + ln.Addr().String() + "/webhooks",
		rng:    rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
		events: map[string]client.Event{},
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// ServeHTTP verifies and records one delivery.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "unreadable", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, err := client.VerifyWebhook(r.secret, req.Header, body)
	if err != nil {
		r.badSigns++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.rng.Float64() < webhookFailRate {
		r.refused++
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	r.events[ev.ID] = *ev
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}

// registerReceiver registers the receiver for every event, as a checkout
// would, and keeps the secret shown once.
func (s *system) registerReceiver(ctx context.Context, r *receiver) error {
	var created struct {
		Secret string `json:"secret"`
	}
	var retries atomic.Int64
	if err := s.post(ctx, "/v1/webhook-endpoints", "chaos-webhook-endpoint",
		map[string]any{"url": r.url}, &created, &retries, http.StatusCreated); err != nil {
		return fmt.Errorf("error registering the webhook endpoint: %w", err)
	}
	if created.Secret == "" {
		return errors.New("error registering the webhook endpoint: no secret in the answer")
	}
	r.mu.Lock()
	r.secret = created.Secret
	r.mu.Unlock()
	return nil
}

// drainWebhooks waits until every delivery has been received or given up.
func (s *system) drainWebhooks(ctx context.Context, timeout time.Duration, logf func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	for {
		var pending int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&pending)
		if err == nil && pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhooks not drained after %s: %d deliveries pending (last error: %v)", timeout, pending, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkWebhooks holds the deliveries to the outbox's promise: every status
// change of every payment (one delivery row each, written with the change,
// so only for changes that committed) arrived at least once, signed, and
// nothing arrived that no committed change wrote; the last status each
// payment reached is among what its receiver saw.
func (s *system) checkWebhooks(ctx context.Context, r *receiver, st *state, rep *Report) error {
	rows, err := s.pool.Query(ctx, `SELECT event_id, payment_id::text, event_type, status FROM webhook_deliveries`)
	if err != nil {
		return fmt.Errorf("error reading webhook deliveries: %w", err)
	}
	type row struct{ paymentID, eventType, status string }
	written := map[string]row{}
	for rows.Next() {
		var id string
		var w row
		if err := rows.Scan(&id, &w.paymentID, &w.eventType, &w.status); err != nil {
			rows.Close()
			return fmt.Errorf("error reading webhook deliveries: %w", err)
		}
		written[id] = w
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("error reading webhook deliveries: %w", err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	violate := func(format string, args ...any) {
		rep.Violations = append(rep.Violations, "webhooks: "+fmt.Sprintf(format, args...))
	}
	rep.Webhooks.Written, rep.Webhooks.Received = len(written), len(r.events)
	rep.Webhooks.Refused, rep.Webhooks.BadSignatures = r.refused, r.badSigns
	if r.badSigns > 0 {
		violate("%d deliveries did not verify", r.badSigns)
	}
	seen := map[string]map[string]bool{} // payment → statuses received
	for id, ev := range r.events {
		w, ok := written[id]
		if !ok {
			violate("event %s (%s for payment %s) arrived but no committed change wrote it", id, ev.Type, ev.Data.PaymentID)
			continue
		}
		if w.paymentID != ev.Data.PaymentID || w.eventType != ev.Type {
			violate("event %s arrived as %s for %s, written as %s for %s", id, ev.Type, ev.Data.PaymentID, w.eventType, w.paymentID)
		}
		if seen[ev.Data.PaymentID] == nil {
			seen[ev.Data.PaymentID] = map[string]bool{}
		}
		seen[ev.Data.PaymentID][string(ev.Data.Status)] = true
	}
	for id, w := range written {
		if _, ok := r.events[id]; !ok {
			violate("event %s (%s for payment %s) was never received (delivery %s)", id, w.eventType, w.paymentID, w.status)
		}
	}
	for id, p := range st.payments {
		if p.status == "ready" {
			continue // never changed: nothing to tell
		}
		if !seen[id][p.status] {
			violate("payment %s ended %s but no webhook said so", id, p.status)
		}
	}
	return nil
}
