package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/payment-outbox/payment-outbox/client"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// What a checkout's test needs beyond the URLs: the client, waiting, the
// gateway simulator's control API and a webhook receiver.

// Simulator drives the gateway simulator's control API: Authorize plays the
// customer in the checkout widget, SetConfig injects faults (error rates,
// latency, lost responses, downtime), Script forces answers for one
// paymentKey, Ledger and LedgerEntry show what the gateway charged and
// refunded, Reset forgets everything.
type Simulator = gatewaysim.Client

// The simulator's control types, for Simulator's methods.
type (
	SimAuthorizeRequest = gatewaysim.AuthorizeRequest
	SimAuthorization    = gatewaysim.Authorization
	SimConfig           = gatewaysim.Config
	SimDuration         = gatewaysim.Duration
	SimScript           = gatewaysim.Script
	SimStep             = gatewaysim.Step
	SimLedger           = gatewaysim.Ledger
	SimLedgerEntry      = gatewaysim.LedgerEntry
	SimRefund           = gatewaysim.Refund
)

// Client returns a client of the system's api with its API key.
func (s *System) Client(opts ...client.Option) *client.Client {
	return client.New(s.APIURL, s.APIKey, opts...)
}

// Sim returns a driver of the system's gateway simulator.
func (s *System) Sim() *Simulator {
	return gatewaysim.NewClient(s.GatewaySimURL, nil)
}

// Authorize plays the customer passing the gateway's checkout widget for an
// order and returns the paymentKey the widget hands the checkout.
func (s *System) Authorize(ctx context.Context, orderID string, amount int64) (string, error) {
	auth, err := s.Sim().Authorize(ctx, SimAuthorizeRequest{OrderID: orderID, Amount: amount, OrderName: "outboxtest"})
	if err != nil {
		return "", fmt.Errorf("error authorizing %s at the simulator: %w", orderID, err)
	}
	return auth.PaymentKey, nil
}

// WaitPayment waits up to timeout for a payment to leave confirming or
// canceling and returns it (client.Client.WaitPayment).
func (s *System) WaitPayment(ctx context.Context, id string, timeout time.Duration) (*client.Payment, error) {
	return s.Client().WaitPayment(ctx, id, timeout)
}

// webhookHost is the name under which the relays reach the Docker host,
// where NewWebhookReceiver listens.
const webhookHost = "host.docker.internal"

// WebhookReceiver is a webhook endpoint of the test's own, registered with
// the system: each delivery whose signature verifies (client.VerifyWebhook)
// is answered 204 and handed to Next; any other is answered 401.
type WebhookReceiver struct {
	// Endpoint is the registered endpoint, its secret included.
	Endpoint *client.WebhookEndpoint

	srv    *http.Server
	events chan *client.Event
	secret string

	mu       sync.Mutex
	rejected int
}

// NewWebhookReceiver starts a receiver on the Docker host and registers it
// for events (none: every event type). Close it when done.
func (s *System) NewWebhookReceiver(ctx context.Context, events ...string) (*WebhookReceiver, error) {
	// Every address: the relays come from a Docker network, through the
	// host's gateway address.
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, fmt.Errorf("error listening for webhooks: %w", err)
	}
	r := &WebhookReceiver{events: make(chan *client.Event, 1000)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ep, err := s.Client().CreateWebhookEndpoint(ctx, client.CreateWebhookEndpointRequest{
		URL: "http://" + net.JoinHostPort(webhookHost, port) + "/webhooks", Events: events,
	})
	if err != nil {
		_ = r.srv.Close()
		return nil, err
	}
	r.mu.Lock()
	r.Endpoint, r.secret = ep, ep.Secret
	r.mu.Unlock()
	return r, nil
}

func (r *WebhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	ev, err := client.VerifyWebhook(secret, req.Header, body)
	if err != nil {
		r.mu.Lock()
		r.rejected++
		r.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	select {
	case r.events <- ev:
		w.WriteHeader(http.StatusNoContent)
	default:
		// Full: let the relay retry later rather than lose it.
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

// Next returns the next verified event, in the order they arrived.
func (r *WebhookReceiver) Next(ctx context.Context) (*client.Event, error) {
	select {
	case ev := <-r.events:
		return ev, nil
	case <-ctx.Done():
		return nil, errors.Join(errors.New("no webhook arrived"), ctx.Err())
	}
}

// Rejected counts the deliveries whose signature did not verify.
func (r *WebhookReceiver) Rejected() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected
}

// Close stops the receiver (its endpoint stays registered; deliveries to it
// then fail and are retried).
func (r *WebhookReceiver) Close() error {
	return r.srv.Close()
}
