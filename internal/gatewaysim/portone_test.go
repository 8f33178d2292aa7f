package gatewaysim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// portOneCall sends one PortOne API call to the simulator.
func portOneCall(t *testing.T, srv *httptest.Server, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "PortOne "+DefaultPortOneSecret)
	if key != "" {
		req.Header.Set("Idempotency-Key", `"`+key+`"`)
	}
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}

func newPortOneSim(t *testing.T) (*Simulator, *httptest.Server) {
	t.Helper()
	sim, err := New(Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	return sim, srv
}

func TestPortOnePayLookupCancel(t *testing.T) {
	t.Parallel()
	sim, srv := newPortOneSim(t)
	_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0001", OrderID: "order-0001", Amount: 15000})
	require.NoError(t, err)

	status, p := portOneCall(t, srv, http.MethodGet, "/payments/pay-order-0001?storeId="+DefaultPortOneStoreID, "", "")
	require.Equal(t, 200, status)
	require.Equal(t, "PAID", p["status"])
	require.Equal(t, DefaultPortOneStoreID, p["storeId"])
	require.Equal(t, float64(15000), p["amount"].(map[string]any)["total"])
	require.Equal(t, float64(0), p["amount"].(map[string]any)["cancelled"])

	const key = "cancel-portone-sim-0001"
	cancel := `{"reason":"one bag returned","amount":5000,"currentCancellableAmount":15000}`
	status, c := portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0001/cancel", key, cancel)
	require.Equal(t, 200, status, c)
	require.Equal(t, "SUCCEEDED", c["cancellation"].(map[string]any)["status"])
	require.Equal(t, float64(5000), c["cancellation"].(map[string]any)["totalAmount"])

	// The same key replays; the balance check stops any other key.
	status, again := portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0001/cancel", key, cancel)
	require.Equal(t, 200, status)
	require.Equal(t, c, again)
	status, e := portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0001/cancel", "cancel-portone-sim-0002", cancel)
	require.Equal(t, 409, status)
	require.Equal(t, PortOneCancellableAmountConsistencyBroken, e["type"])

	entry, ok := sim.LedgerEntry("pay-order-0001")
	require.True(t, ok)
	require.Equal(t, GatewayPortOne, entry.Gateway)
	require.Equal(t, PortOnePartialCancelled, entry.Status)
	require.Equal(t, 1, entry.Approvals)
	require.Equal(t, int64(10000), entry.BalanceAmount)
	require.Len(t, entry.Refunds, 1)
	require.Equal(t, key, entry.Refunds[0].IdempotencyKey, "booked under the unquoted key")

	status, p = portOneCall(t, srv, http.MethodGet, "/payments/pay-order-0001", "", "")
	require.Equal(t, 200, status)
	require.Equal(t, "PARTIAL_CANCELLED", p["status"])
	require.Equal(t, float64(5000), p["amount"].(map[string]any)["cancelled"])
}

func TestPortOneFrontDoor(t *testing.T) {
	t.Parallel()
	sim, srv := newPortOneSim(t)
	_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0002", OrderID: "order-0002", Amount: 15000, Status: PortOneReady})
	require.NoError(t, err)
	auth, err := sim.Authorize(AuthorizeRequest{OrderID: "order-0003", Amount: 1000})
	require.NoError(t, err)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/payments/pay-order-0002", nil)
	req.Header.Set("Authorization", "PortOne wrong")
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 401, res.StatusCode)

	status, e := portOneCall(t, srv, http.MethodGet, "/payments/"+auth.PaymentKey, "", "")
	require.Equal(t, 404, status, "a Toss payment is not PortOne's")
	require.Equal(t, PortOnePaymentNotFound, e["type"])

	status, e = portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0002/cancel", "cancel-portone-sim-0003", `{"reason":"r","currentCancellableAmount":15000}`)
	require.Equal(t, 409, status)
	require.Equal(t, PortOnePaymentNotPaid, e["type"])

	status, e = portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0002/cancel", "short", `{"reason":"r"}`)
	require.Equal(t, 400, status)
	require.Equal(t, PortOneInvalidRequest, e["type"])

	// The customer finishes later: the payment moves on.
	_, err = sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0002", OrderID: "order-0002", Amount: 15000})
	require.NoError(t, err)
	status, p := portOneCall(t, srv, http.MethodGet, "/payments/pay-order-0002", "", "")
	require.Equal(t, 200, status)
	require.Equal(t, "PAID", p["status"])
}

func TestPortOneFaultsAndHolds(t *testing.T) {
	t.Parallel()
	sim, srv := newPortOneSim(t)
	_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0004", OrderID: "order-0004", Amount: 15000})
	require.NoError(t, err)

	require.NoError(t, sim.SetConfig(Config{ErrorRates: map[string]float64{CodeProviderError: 1}}))
	status, e := portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0004/cancel", "cancel-portone-sim-0004", `{"reason":"r","currentCancellableAmount":15000}`)
	require.Equal(t, 502, status)
	require.Equal(t, PortOnePgProvider, e["type"])

	// Held: a retry under the key is told the first is still running, and
	// the hold ends in exactly one refund.
	require.NoError(t, sim.SetConfig(Config{HoldRate: 1, HoldFor: Duration(300 * time.Millisecond)}))
	done := make(chan int, 1)
	go func() {
		status, _ := portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0004/cancel", "cancel-portone-sim-0005", `{"reason":"r","currentCancellableAmount":15000}`)
		done <- status
	}()
	require.Eventually(t, func() bool { return sim.holding.Load() == 1 }, time.Second, 5*time.Millisecond)
	status, e = portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0004/cancel", "cancel-portone-sim-0005", `{"reason":"r","currentCancellableAmount":15000}`)
	require.Equal(t, 409, status)
	require.Equal(t, PortOneIdempotencyOutstandingRequest, e["type"])
	require.Equal(t, 200, <-done)
	entry, _ := sim.LedgerEntry("pay-order-0004")
	require.Len(t, entry.Refunds, 1)
	require.Equal(t, PortOneCancelled, entry.Status)
}
