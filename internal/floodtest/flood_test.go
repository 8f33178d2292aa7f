package floodtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/gateway/portone"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/httpapi"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// webhookSecret is the PortOne webhook secret the api verifies with and
// the test (or gatewaysim) signs with.
var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("floodtest-portone-webhook-secret"))

// system is the api and a relay on one database, the relay working against
// gatewaysim, which sends its PortOne webhooks to the api.
type system struct {
	pool     *pgxpool.Pool
	store    *store.Store
	sim      *gatewaysim.Simulator
	api      *httptest.Server
	key      string
	interval time.Duration
	registry *metrics.Registry
}

func start(t *testing.T, interval time.Duration) *system {
	t.Helper()
	pool := dbtest.Pool(t)
	st := store.New()
	s := &system{pool: pool, store: st, interval: interval, registry: metrics.NewRegistry(nil)}

	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	s.api = httptest.NewServer(httpapi.New(httpapi.Config{
		Pool: pool, Store: st, Outbox: outbox, Metrics: metrics.NewHTTP(s.registry),
		Gateways:              []string{payment.GatewayToss, payment.GatewayPortOne},
		PortOneWebhookSecret:  webhookSecret,
		WebhookLookupInterval: interval,
	}).Handler())
	t.Cleanup(s.api.Close)

	s.sim, err = gatewaysim.New(gatewaysim.Options{Config: gatewaysim.Config{
		PortOneWebhookURL: s.api.URL + "/v1/webhooks/portone", PortOneWebhookSecret: webhookSecret,
	}})
	require.NoError(t, err)
	simSrv := httptest.NewServer(s.sim)
	t.Cleanup(simSrv.Close)
	t.Cleanup(s.sim.Close)
	tossGW, err := toss.New(toss.Config{BaseURL: simSrv.URL, SecretKey: gatewaysim.DefaultSecretKey, Timeout: 5 * time.Second})
	require.NoError(t, err)
	po, err := portone.New(portone.Config{BaseURL: simSrv.URL, Secret: gatewaysim.DefaultPortOneSecret,
		StoreID: gatewaysim.DefaultPortOneStoreID, Timeout: 5 * time.Second})
	require.NoError(t, err)

	workers := river.NewWorkers()
	require.NoError(t, relay.AddWorkers(workers, relay.Config{
		Pool: pool, Store: st, Logger: slog.New(slog.DiscardHandler),
		Gateways: map[string]relay.Gateway{payment.GatewayToss: tossGW, payment.GatewayPortOne: po},
		Schedule: relay.Schedule{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		// The flood's lookups are for confirmed payments: a ready intent's
		// sweep would only add lookups of its own.
		ReadySweepAfter:       time.Hour,
		WebhookLookupInterval: interval,
	}))
	worker, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{paymentjob.Queue: {MaxWorkers: 10}},
		Workers:           workers,
		FetchPollInterval: 20 * time.Millisecond,
		FetchCooldown:     10 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.NoError(t, worker.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = worker.Stop(ctx)
	})

	key, err := apikey.Generate()
	require.NoError(t, err)
	hash := apikey.Hash(key)
	_, err = st.InsertAPIKey(t.Context(), pool, uuid.NewString(), "floodtest", apikey.DisplayPrefix(key), hash[:], apikey.ScopeOperator, payment.DefaultOwner)
	require.NoError(t, err)
	s.key = key
	return s
}

// post sends an API request and decodes a 2xx answer into out.
func (s *system) post(t *testing.T, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.api.URL+path, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Less(t, res.StatusCode, 300, path)
	if out != nil {
		require.NoError(t, json.NewDecoder(res.Body).Decode(out))
	}
}

type created struct {
	ID         string `json:"id"`
	PaymentKey string `json:"paymentKey"`
}

// confirmedToss is a Toss payment the relay confirmed, and its order id.
func (s *system) confirmedToss(t *testing.T, n int) (id, orderID, paymentKey string) {
	t.Helper()
	orderID = fmt.Sprintf("order-20261121-%04d", n)
	var p created
	s.post(t, "/v1/payments", fmt.Sprintf(`{"orderId":%q,"amount":15000,"orderName":"Tea"}`, orderID), &p)
	auth, err := s.sim.Authorize(gatewaysim.AuthorizeRequest{OrderID: orderID, Amount: 15000, OrderName: "Tea"})
	require.NoError(t, err)
	s.post(t, "/v1/payments/"+p.ID+"/confirm", fmt.Sprintf(`{"paymentKey":%q,"amount":15000}`, auth.PaymentKey), nil)
	s.waitStatus(t, p.ID, payment.StatusConfirmed)
	return p.ID, orderID, auth.PaymentKey
}

func (s *system) waitStatus(t *testing.T, id string, want payment.Status) {
	t.Helper()
	require.Eventually(t, func() bool {
		p, err := s.store.Payment(context.Background(), s.pool, id)
		require.NoError(t, err)
		return p.Status == want
	}, 30*time.Second, 10*time.Millisecond, "payment %s never reached %s", id, want)
}

// waitDrained waits until no lookup job is left to work, scheduled ones
// included, and the payment's lookup request is answered.
func (s *system) waitDrained(t *testing.T, ids ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM river_job WHERE kind = 'payment_lookup' AND state NOT IN ('completed', 'cancelled', 'discarded')").Scan(&n))
		if n > 0 {
			return false
		}
		require.NoError(t, s.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM payments WHERE id = ANY($1::uuid[]) AND lookup_wanted_at IS NOT NULL", ids).Scan(&n))
		return n == 0
	}, 3*s.interval+30*time.Second, 20*time.Millisecond, "every lookup ran and every request was answered")
}

// figures are what a flood cost one payment.
type figures struct {
	gatewayLookups, jobs, attempts int
}

func (s *system) figures(t *testing.T, id, paymentKey string) figures {
	t.Helper()
	var f figures
	for _, r := range s.sim.Requests(paymentKey) {
		if r.Operation == gatewaysim.OperationLookup {
			f.gatewayLookups++
		}
	}
	ctx := context.Background()
	require.NoError(t, s.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'payment_lookup' AND args->>'paymentId' = $1", id).Scan(&f.jobs))
	require.NoError(t, s.pool.QueryRow(ctx, "SELECT count(*) FROM payment_attempts WHERE payment_id = $1 AND operation = 'lookup'", id).Scan(&f.attempts))
	return f
}

// intervals is how many of the rule's intervals a flood from start to end
// touches, with the one after it, where the flood's last request may wait:
// the most lookups of one payment the rule allows for it.
func (s *system) intervals(start, end time.Time) int {
	return int(end.Truncate(s.interval).Sub(start.Truncate(s.interval))/s.interval) + 2
}

// flood sends n forged Toss webhooks, round robin over orderIDs, from a few
// senders at once, each answered 200, and returns when the last is.
func (s *system) flood(t *testing.T, n int, orderIDs []string) {
	t.Helper()
	const senders = 8
	var wg sync.WaitGroup
	next := make(chan int)
	for range senders {
		wg.Go(func() {
			for i := range next {
				body := fmt.Sprintf(`{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-11-21T12:00:00+09:00","data":{"orderId":%q,"status":"CANCELED"}}`,
					orderIDs[i%len(orderIDs)])
				res, err := http.Post(s.api.URL+"/v1/webhooks/toss", "application/json", bytes.NewBufferString(body))
				if err != nil {
					t.Error(err)
					continue
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("webhook answered %d", res.StatusCode)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestTossWebhookFlood: 10,000 forged Toss webhooks naming one confirmed
// payment's (guessable) order id, then 10,000 spread over a few payments,
// make at most one gateway lookup per payment per interval (today's main
// made one per lookup that finished before the next webhook: 62 for 3,000
// webhooks in 2 s), and leave no request unanswered.
func TestTossWebhookFlood(t *testing.T) {
	const interval = 2 * time.Second
	s := start(t, interval)

	for _, tt := range []struct {
		name     string
		payments int
	}{{"OnePayment", 1}, {"FourPayments", 4}} {
		t.Run(tt.name, func(t *testing.T) {
			type target struct{ id, orderID, paymentKey string }
			var targets []target
			var orderIDs, ids []string
			for i := range tt.payments {
				id, orderID, key := s.confirmedToss(t, 100*tt.payments+i)
				targets = append(targets, target{id, orderID, key})
				orderIDs, ids = append(orderIDs, orderID), append(ids, id)
			}
			before := map[string]figures{}
			for _, tg := range targets {
				before[tg.id] = s.figures(t, tg.id, tg.paymentKey)
			}

			const n = 10_000
			begin := time.Now()
			s.flood(t, n, orderIDs)
			end := time.Now()
			s.waitDrained(t, ids...)
			allowed := s.intervals(begin, end)
			for _, tg := range targets {
				after := s.figures(t, tg.id, tg.paymentKey)
				f := figures{after.gatewayLookups - before[tg.id].gatewayLookups, after.jobs - before[tg.id].jobs, after.attempts - before[tg.id].attempts}
				t.Logf("%d forged webhooks over %d payment(s) in %s (interval %s): payment %s: %d gateway lookups, %d lookup jobs, %d attempt rows (at most %d allowed)",
					n, tt.payments, end.Sub(begin).Round(time.Millisecond), interval, tg.orderID, f.gatewayLookups, f.jobs, f.attempts, allowed)
				require.GreaterOrEqual(t, f.gatewayLookups, 1, "the webhooks are still a reason to ask")
				require.LessOrEqual(t, f.gatewayLookups, allowed, "at most one lookup per payment per interval")
				require.Equal(t, f.gatewayLookups, f.jobs, "one job per lookup")
				require.Equal(t, f.gatewayLookups, f.attempts)
				p, err := s.store.Payment(context.Background(), s.pool, tg.id)
				require.NoError(t, err)
				require.Equal(t, payment.StatusConfirmed, p.Status, "an unsigned webhook's word is never taken")
			}
		})
	}
}

// TestWebhookInAUsedIntervalIsAnswered: a webhook that comes in an interval
// whose lookup already ran is not dropped, only delayed: the lookup at the
// next interval's start reads the change it reported. Here a ready PortOne
// intent is paid right after a lookup saw it ready, and ends confirmed from
// a lookup that ran no earlier than the next interval. (On today's main the
// second lookup runs at once: the rule does not exist.)
func TestWebhookInAUsedIntervalIsAnswered(t *testing.T) {
	const interval = 5 * time.Second
	s := start(t, interval)
	var p created
	s.post(t, "/v1/payments", `{"orderId":"order-20261121-0500","amount":15000,"orderName":"Tea","gateway":"portone","paymentKey":"pay-order-20261121-0500"}`, &p)

	// Start just after an interval begins, so both webhooks fall in it.
	time.Sleep(time.Until(time.Now().Truncate(interval).Add(interval + 100*time.Millisecond)))
	// The customer opens PortOne's payment window: Transaction.Ready.
	_, err := s.sim.PortOnePay(gatewaysim.PortOnePayRequest{PaymentID: p.PaymentKey, OrderID: "order-20261121-0500", Amount: 15000, Status: gatewaysim.PortOneReady})
	require.NoError(t, err)
	// gatewaysim sends no webhook for a window opened; PortOne does.
	require.Equal(t, http.StatusOK, s.portOneWebhook(t, "msg_ready_0500", "Transaction.Ready", p.PaymentKey, time.Now()))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM payment_attempts WHERE payment_id = $1 AND finished_at IS NOT NULL", p.ID).Scan(&n))
		return n == 1
	}, 10*time.Second, 10*time.Millisecond, "Transaction.Ready's lookup ran")
	var first time.Time
	require.NoError(t, s.pool.QueryRow(context.Background(),
		"SELECT requested_at FROM payment_attempts WHERE payment_id = $1", p.ID).Scan(&first))

	// And pays: Transaction.Paid, in the interval whose lookup just ran.
	_, err = s.sim.PortOnePay(gatewaysim.PortOnePayRequest{PaymentID: p.PaymentKey, OrderID: "order-20261121-0500", Amount: 15000})
	require.NoError(t, err)
	s.waitStatus(t, p.ID, payment.StatusConfirmed)
	s.waitDrained(t, p.ID)

	rows, err := s.pool.Query(context.Background(), "SELECT requested_at FROM payment_attempts WHERE payment_id = $1 AND operation = 'lookup' ORDER BY id", p.ID)
	require.NoError(t, err)
	lookups, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	require.NoError(t, err)
	require.Len(t, lookups, 2, "Ready's lookup, and Paid's at the next interval")
	require.False(t, lookups[1].Before(first.Truncate(interval).Add(interval)),
		"Paid's lookup waited for the next interval (first at %s, second at %s)", lookups[0], lookups[1])
}

// TestPortOneReplayedDelivery: a signed PortOne delivery replayed 1,000
// times within its signature window is acted on once: one lookup request,
// one job, one gateway call. (Today's main took every replay: each one that
// came after the last lookup finished enqueued another.)
func TestPortOneReplayedDelivery(t *testing.T) {
	s := start(t, 2*time.Second)
	var p created
	s.post(t, "/v1/payments", `{"orderId":"order-20261121-0600","amount":15000,"orderName":"Tea","gateway":"portone","paymentKey":"pay-order-20261121-0600"}`, &p)

	const id = "msg_2nWq9ZRZlV0ztAd8nG6nnKnP6dF"
	signedAt := time.Now()
	send := func() int { return s.portOneWebhook(t, id, "Transaction.Paid", p.PaymentKey, signedAt) }
	const n = 1000
	for range n {
		require.Equal(t, http.StatusOK, send())
	}
	s.waitDrained(t, p.ID)
	f := s.figures(t, p.ID, p.PaymentKey)
	t.Logf("%d replays of one PortOne delivery: %d gateway lookups, %d lookup jobs, %d attempt rows", n, f.gatewayLookups, f.jobs, f.attempts)
	require.Equal(t, figures{gatewayLookups: 1, jobs: 1, attempts: 1}, f, "acted on once")
	require.Equal(t, float64(n-1), s.webhookCount(t, payment.GatewayPortOne, metrics.WebhookReplayed))
}

// portOneWebhook sends the delivery id of a PortOne event of type typ
// about paymentID, signed at signedAt as PortOne signs, and returns the
// api's status. The same arguments make the same bytes: a replay.
func (s *system) portOneWebhook(t *testing.T, id, typ, paymentID string, signedAt time.Time) int {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"type":%q,"timestamp":"2026-11-21T03:00:05.000Z","data":{"paymentId":%q,"storeId":"store-1","transactionId":"0193d1f0-tx"}}`, typ, paymentID))
	wh, err := standardwebhooks.NewWebhook(webhookSecret)
	require.NoError(t, err)
	sig, err := wh.Sign(id, signedAt, body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.api.URL+"/v1/webhooks/portone", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(signedAt.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// webhookCount reads payment_outbox_gateway_webhooks_total.
func (s *system) webhookCount(t *testing.T, gateway, outcome string) float64 {
	t.Helper()
	families, err := s.registry.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "payment_outbox_gateway_webhooks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["gateway"] == gateway && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
