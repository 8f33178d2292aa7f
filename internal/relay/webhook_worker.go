package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// WebhookSchedule spaces the attempts of a webhook delivery: 5s doubling to
// 6h (±20%), so that with paymentjob.WebhookMaxAttempts a receiver that is
// down gets about three days to come back, like the Standard Webhooks
// senders' own schedules.
var WebhookSchedule = Schedule{Initial: 5 * time.Second, Max: 6 * time.Hour}

// WebhookConfig is how the relay sends webhooks.
type WebhookConfig struct {
	// Timeout bounds one delivery request; DefaultWebhookTimeout when zero.
	Timeout time.Duration
	// AllowPrivate lets deliveries go to loopback, private and link-local
	// addresses: for development and tests only (see webhook.Dialer).
	AllowPrivate bool
	// Schedule spaces the attempts; WebhookSchedule when zero.
	Schedule Schedule
	// Client sends the requests; when nil, one made from the fields above.
	// A test may give its own; it must not follow redirects.
	Client *http.Client
}

// DefaultWebhookTimeout bounds one delivery request: a receiver should
// answer at once and do its work afterwards.
const DefaultWebhookTimeout = 10 * time.Second

// maxWebhookErrorLen bounds the error text kept on a delivery row.
const maxWebhookErrorLen = 300

// WebhookWorker sends one webhook delivery, signed per Standard Webhooks.
// The delivery row and its job were written with the payment change it
// reports, so the worker only reads, sends and records: a relay killed
// mid-send leaves the job to be rescued and sent again (at least once; the
// webhook-id lets the receiver drop the duplicate).
type WebhookWorker struct {
	river.WorkerDefaults[paymentjob.WebhookArgs]
	r        *relay
	client   *http.Client
	timeout  time.Duration
	schedule Schedule
	// allowPrivate: see WebhookConfig.AllowPrivate; without it only https
	// endpoints are sent to.
	allowPrivate bool
}

func newWebhookWorker(r *relay, cfg WebhookConfig) *WebhookWorker {
	w := &WebhookWorker{r: r, client: cfg.Client, timeout: cfg.Timeout, schedule: cfg.Schedule, allowPrivate: cfg.AllowPrivate}
	if w.timeout <= 0 {
		w.timeout = DefaultWebhookTimeout
	}
	if w.schedule.Initial <= 0 || w.schedule.Max <= 0 {
		w.schedule = WebhookSchedule
	}
	if w.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = webhook.Dialer(cfg.AllowPrivate).DialContext
		// A proxy would dial for us, past the address check.
		tr.Proxy = nil
		w.client = &http.Client{
			Transport: tr,
			Timeout:   w.timeout,
			// A redirect is an answer, not 2xx: following it would let a
			// public URL send us to a private one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return w
}

// NextRetry spaces the attempts by the webhook schedule.
func (w *WebhookWorker) NextRetry(job *river.Job[paymentjob.WebhookArgs]) time.Time {
	return w.r.now().Add(w.schedule.Delay(job.Attempt))
}

// Timeout leaves the request its own timeout and the two writes around it.
func (w *WebhookWorker) Timeout(*river.Job[paymentjob.WebhookArgs]) time.Duration {
	return w.timeout + 2*outcomeTimeout
}

// Work sends the delivery and records the answer.
func (w *WebhookWorker) Work(ctx context.Context, job *river.Job[paymentjob.WebhookArgs]) error {
	r := w.r
	d, err := r.store.WebhookDelivery(ctx, r.pool, job.Args.DeliveryID)
	if err != nil {
		if payment.ErrorOf(err).Kind == payment.KindNotFound {
			return river.JobCancel(err)
		}
		return err
	}
	ctx = r.withJob(ctx, job.JobRow, d.PaymentID,
		slog.String("delivery_id", d.ID), slog.String("event_id", d.EventID), slog.String("event_type", d.EventType))
	if d.Status != webhook.DeliveryPending {
		return nil // sent by an earlier run whose completion was lost
	}
	e, err := r.store.WebhookEndpoint(ctx, r.pool, payment.Everyone(), d.EndpointID)
	if err != nil {
		return err
	}
	notSent := ""
	switch {
	case e.DisabledAt != nil:
		notSent = "endpoint disabled; not sent"
	case !w.allowPrivate && !strings.HasPrefix(strings.ToLower(e.URL), "https://"):
		// The api registers https only outside development, but an endpoint
		// registered before that rule may still be plain http: a payment's
		// data is never sent in the clear (docs/design.md, section 21).
		notSent = "endpoint URL is not https; not sent (plain http only in development)"
	}
	if notSent != "" {
		return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, _ *payflow.Flow) error {
			if _, err := r.store.RecordWebhookAttempt(ctx, tx, d.ID, webhook.DeliveryFailed, 0, notSent); err != nil {
				return err
			}
			return completeTx(ctx, tx, job)
		})
	}

	status, sendErr := w.send(ctx, e, d)
	if sendErr == nil {
		return r.inTx(ctx, func(ctx context.Context, tx pgx.Tx, _ *payflow.Flow) error {
			_, err := r.store.RecordWebhookAttempt(ctx, tx, d.ID, webhook.DeliverySucceeded, status, "")
			if errors.Is(err, store.ErrDeliverySettled) {
				// Another run of this job settled it while this one was
				// frozen: the receiver has it (twice, same webhook-id).
				return completeTx(ctx, tx, job)
			}
			if err != nil {
				return err
			}
			r.onCommit(ctx, func() {
				r.logger(ctx).DebugContext(ctx, "webhook delivered", slog.Int("http_status", status))
			})
			return completeTx(ctx, tx, job)
		})
	}
	next := webhook.DeliveryPending
	if job.Attempt >= job.MaxAttempts {
		next = webhook.DeliveryFailed
	}
	msg := sendErr.Error()
	if len(msg) > maxWebhookErrorLen {
		msg = msg[:maxWebhookErrorLen]
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	if _, err := r.store.RecordWebhookAttempt(wctx, r.pool, d.ID, next, status, msg); err != nil {
		if errors.Is(err, store.ErrDeliverySettled) {
			// A later run of this job settled it while this one was frozen;
			// this run's failure is no longer news.
			return nil
		}
		return errors.Join(sendErr, err)
	}
	level := slog.LevelWarn
	if next == webhook.DeliveryFailed {
		level = slog.LevelError
	}
	r.logger(ctx).Log(ctx, level, "webhook delivery failed",
		slog.Int("http_status", status), slog.String("error", msg), slog.Bool("giving_up", next == webhook.DeliveryFailed))
	return sendErr
}

// send makes one request; a nil error means a 2xx answer. status is the
// answer's, 0 when there was none.
func (w *WebhookWorker) send(ctx context.Context, e webhook.Endpoint, d webhook.Delivery) (status int, err error) {
	now := w.r.now()
	sig, err := webhook.Sign(e.SigningSecrets(now), d.EventID, now, d.Payload)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, fmt.Errorf("error making webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "payment-outbox-webhooks/1")
	req.Header.Set(webhook.HeaderID, d.EventID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("error sending webhook: %w", err)
	}
	defer resp.Body.Close()
	// Read a little so the connection can be reused; the answer's body
	// means nothing to us.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook endpoint answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
