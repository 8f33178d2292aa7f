package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

const portOneWebhookPath = "/v1/webhooks/portone"

// portOneTestSecret is a webhook secret as PortOne's console issues it:
// whsec_ and base64.
var portOneTestSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("portone-webhook-secret-for-tests"))

// portOneBody is a 2024-04-25 webhook body.
func portOneBody(typ, paymentID string) string {
	return `{"type":"` + typ + `","timestamp":"2026-11-21T03:00:05.000Z","data":{"paymentId":"` + paymentID +
		`","storeId":"store-1","transactionId":"0193d1f0-tx"}}`
}

// postPortOne posts a webhook signed with secret at signedAt, as PortOne
// does, as a delivery of its own (a webhook-id not sent before); an empty
// secret sends no signature at all.
func (b *testBundle) postPortOne(t *testing.T, secret string, signedAt time.Time, body string) int {
	t.Helper()
	return b.postPortOneDelivery(t, "msg_"+strings.ReplaceAll(uuid.NewString(), "-", ""), secret, signedAt, body)
}

// postPortOneDelivery is postPortOne for the delivery named id: PortOne
// sends a retry of a delivery under the same webhook-id.
func (b *testBundle) postPortOneDelivery(t *testing.T, id, secret string, signedAt time.Time, body string) int {
	t.Helper()
	headers := []string{"Content-Type", "application/json"}
	if secret != "" {
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		sig, err := wh.Sign(id, signedAt, []byte(body))
		require.NoError(t, err)
		headers = append(headers, "webhook-id", id, "webhook-timestamp", strconv.FormatInt(signedAt.Unix(), 10), "webhook-signature", sig)
	}
	return b.as("", "").do(t, http.MethodPost, portOneWebhookPath, body, headers...).Code
}

func TestPortOneWebhook(t *testing.T) {
	t.Parallel()

	b := setup(t, func(c *Config) {
		c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
		c.PortOneWebhookSecret = portOneTestSecret
	})
	rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-po-wh-1","amount":15000,"orderName":"Tea","gateway":"portone","paymentKey":"pay-order-po-wh-1"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	p := decode[paymentResponse](t, rec)
	b.confirmPayment(t, p.ID, "pay-order-po-wh-1", 15000)
	// A Toss payment whose key a forged PortOne event could name.
	toss := b.createPayment(t, "order-po-wh-2", 15000)
	b.confirmPayment(t, toss.ID, "pay-order-po-wh-2", 15000)
	before := b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Body.String()
	now := time.Now()

	t.Run("Refused", func(t *testing.T) {
		other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("someone else's secret"))
		for name, code := range map[string]int{
			"Unsigned":     b.postPortOne(t, "", now, portOneBody("Transaction.Paid", "pay-order-po-wh-1")),
			"OtherSecret":  b.postPortOne(t, other, now, portOneBody("Transaction.Paid", "pay-order-po-wh-1")),
			"Stale":        b.postPortOne(t, portOneTestSecret, now.Add(-10*time.Minute), portOneBody("Transaction.Paid", "pay-order-po-wh-1")),
			"NoSecretHere": b.with(func(c *Config) { c.PortOneWebhookSecret = "" }).postPortOne(t, portOneTestSecret, now, portOneBody("Transaction.Paid", "pay-order-po-wh-1")),
		} {
			require.Equal(t, http.StatusUnauthorized, code, name)
		}
		require.Zero(t, b.countJobs(t, kindLookup, p.ID), "nothing enqueued for what does not verify")
	})

	t.Run("VerifiedEnqueuesOneLookup", func(t *testing.T) {
		for _, typ := range []string{"Transaction.Paid", "Transaction.Cancelled", "Transaction.Paid"} {
			require.Equal(t, http.StatusOK, b.postPortOne(t, portOneTestSecret, now, portOneBody(typ, "pay-order-po-wh-1")))
		}
		// The 2024-01-01 body names the payment too.
		require.Equal(t, http.StatusOK, b.postPortOne(t, portOneTestSecret, now, `{"payment_id":"pay-order-po-wh-1","tx_id":"t","status":"Paid"}`))
		require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID), "one lookup at a time per payment")
		// Only a reason to ask: the payment is as it was.
		require.Equal(t, before, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Body.String())
	})

	t.Run("IgnoredButAnswered", func(t *testing.T) {
		for name, body := range map[string]string{
			"BillingKeyEvent": `{"type":"BillingKey.Issued","timestamp":"2026-11-21T03:00:05Z","data":{"storeId":"store-1","billingKey":"bk"}}`,
			"UnknownPayment":  portOneBody("Transaction.Paid", "pay-never-heard-of"),
			"TossPaymentsKey": portOneBody("Transaction.Paid", "pay-order-po-wh-2"),
		} {
			require.Equal(t, http.StatusOK, b.postPortOne(t, portOneTestSecret, now, body), name)
		}
		require.Zero(t, b.countJobs(t, kindLookup, toss.ID), "a PortOne event never enqueues work for a Toss payment")
	})
}

// TestPortOneWebhookFromGatewaysim wires the simulator's PortOne webhooks to
// this handler, as `make run` does: what the simulator signs and sends must
// verify here and enqueue the lookup.
func TestPortOneWebhookFromGatewaysim(t *testing.T) {
	t.Parallel()

	b := setup(t, func(c *Config) {
		c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
		c.PortOneWebhookSecret = portOneTestSecret
	})
	api := httptest.NewServer(b.handler)
	t.Cleanup(api.Close)
	sim, err := gatewaysim.New(gatewaysim.Options{Config: gatewaysim.Config{
		PortOneWebhookURL: api.URL + portOneWebhookPath, PortOneWebhookSecret: portOneTestSecret,
	}})
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	gateway := httptest.NewServer(sim)
	t.Cleanup(gateway.Close)

	rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-po-sim-1","amount":15000,"orderName":"Tea","gateway":"portone","paymentKey":"pay-order-po-sim-1"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	p := decode[paymentResponse](t, rec)
	b.confirmPayment(t, p.ID, "pay-order-po-sim-1", 15000)
	// The confirm itself enqueues the relay's work; only the webhook's
	// lookup is counted.
	require.Zero(t, b.countJobs(t, kindLookup, p.ID))

	// Paid: the simulator's Transaction.Paid enqueues a lookup.
	_, err = sim.PortOnePay(gatewaysim.PortOnePayRequest{PaymentID: "pay-order-po-sim-1", OrderID: "order-po-sim-1", Amount: 15000})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.countJobs(t, kindLookup, p.ID) == 1 }, 5*time.Second, 20*time.Millisecond,
		"the simulator's Transaction.Paid enqueues a lookup")

	// Cancelled: verified and taken too, folded into the lookup that waits.
	req, err := http.NewRequest(http.MethodPost, gateway.URL+"/payments/pay-order-po-sim-1/cancel",
		strings.NewReader(`{"reason":"customer changed their mind"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "PortOne "+gatewaysim.DefaultPortOneSecret)
	req.Header.Set("Idempotency-Key", `"cancel-po-sim-0000001"`)
	res, err := gateway.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	taken := func() (events []string, outcomes []any) {
		for _, l := range b.logs.lines(t) {
			if l["msg"] == "PortOne webhook: lookup enqueued" || l["webhook_outcome"] == metrics.WebhookLookupWaiting {
				events = append(events, l["event_type"].(string))
				outcomes = append(outcomes, l["webhook_outcome"])
			}
		}
		return events, outcomes
	}
	require.Eventually(t, func() bool { events, _ := taken(); return len(events) == 2 }, 5*time.Second, 20*time.Millisecond)
	events, outcomes := taken()
	require.Equal(t, []string{"Transaction.Paid", "Transaction.Cancelled"}, events)
	require.Equal(t, []any{nil, metrics.WebhookLookupWaiting}, outcomes, "the second webhook finds the first's lookup waiting")
	require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID))
	for _, l := range b.logs.lines(t) {
		require.NotEqual(t, "PortOne webhook refused: its signature does not verify", l["msg"])
	}
}

func TestCheckPortOneWebhookSecret(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckPortOneWebhookSecret(portOneTestSecret))
	require.Error(t, CheckPortOneWebhookSecret("whsec_not base64!"))
}
