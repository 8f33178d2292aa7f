package gatewaysim

import (
	"encoding/json"
	"fmt"
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

func TestPortOneManualConfirm(t *testing.T) {
	t.Parallel()
	sim, srv := newPortOneSim(t)
	const id = "pay-order-0006"
	auth, err := sim.PortOnePay(PortOnePayRequest{PaymentID: id, OrderID: "order-0006", Amount: 15000, Manual: true})
	require.NoError(t, err)
	require.Equal(t, PortOneReady, auth.Status, "authenticated, not charged")
	require.NotEmpty(t, auth.PaymentToken)
	entry, _ := sim.LedgerEntry(id)
	require.Zero(t, entry.Approvals)

	confirm := func(key, body string) (int, map[string]any) {
		return portOneCall(t, srv, http.MethodPost, "/payments/"+id+"/confirm", key, body)
	}
	body := func(token string, amount int64, currency string) string {
		return fmt.Sprintf(`{"storeId":%q,"paymentToken":%q,"totalAmount":%d,"currency":%q}`, DefaultPortOneStoreID, token, amount, currency)
	}

	// The documented refusals charge nothing.
	for _, tt := range []struct {
		name, body string
		status     int
		typ        string
	}{
		{"WrongToken", body("ptok_someone_else", 15000, "KRW"), 400, PortOneInvalidPaymentToken},
		{"NoToken", `{"totalAmount":15000}`, 400, PortOneInvalidRequest},
		{"WrongAmount", body(auth.PaymentToken, 16000, "KRW"), 409, PortOneInformationMismatch},
		{"WrongCurrency", body(auth.PaymentToken, 15000, "USD"), 409, PortOneInformationMismatch},
		{"OtherStore", `{"storeId":"store-other","paymentToken":"` + auth.PaymentToken + `"}`, 403, PortOneForbidden},
	} {
		status, e := confirm("confirm-portone-sim-"+tt.name, tt.body)
		require.Equal(t, tt.status, status, tt.name)
		require.Equal(t, tt.typ, e["type"], tt.name)
	}
	entry, _ = sim.LedgerEntry(id)
	require.Zero(t, entry.Approvals)

	const key = "confirm-portone-sim-0006-1"
	status, ok := confirm(key, body(auth.PaymentToken, 15000, "KRW"))
	require.Equal(t, 200, status, ok)
	require.NotEmpty(t, ok["pgTxId"])
	require.NotEmpty(t, ok["paidAt"])
	status, p := portOneCall(t, srv, http.MethodGet, "/payments/"+id, "", "")
	require.Equal(t, 200, status)
	require.Equal(t, PortOnePaid, p["status"])
	require.Equal(t, float64(15000), p["amount"].(map[string]any)["total"])

	// The same key replays the answer; another key is told it is paid.
	status, again := confirm(key, body(auth.PaymentToken, 15000, "KRW"))
	require.Equal(t, 200, status)
	require.Equal(t, ok, again)
	status, e := confirm("confirm-portone-sim-0006-2", body(auth.PaymentToken, 15000, "KRW"))
	require.Equal(t, 409, status)
	require.Equal(t, PortOneAlreadyPaid, e["type"])
	entry, _ = sim.LedgerEntry(id)
	require.Equal(t, 1, entry.Approvals)
	require.Equal(t, PortOnePaid, entry.Status)
	require.Equal(t, int64(15000), entry.BalanceAmount)
}

func TestPortOneManualConfirmOnlyWithItsToken(t *testing.T) {
	t.Parallel()
	sim, srv := newPortOneSim(t)
	// Walked away in the default flow: no token was ever handed out.
	_, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0007", OrderID: "order-0007", Amount: 15000, Status: PortOneReady})
	require.NoError(t, err)
	status, e := portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0007/confirm", "confirm-portone-sim-0007-1", `{"paymentToken":"ptok_guess"}`)
	require.Equal(t, 400, status)
	require.Equal(t, PortOneInvalidPaymentToken, e["type"])

	// Authenticating again replaces the token.
	first, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0007", OrderID: "order-0007", Amount: 15000, Manual: true})
	require.NoError(t, err)
	second, err := sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0007", OrderID: "order-0007", Amount: 15000, Manual: true})
	require.NoError(t, err)
	require.NotEqual(t, first.PaymentToken, second.PaymentToken)
	status, e = portOneCall(t, srv, http.MethodPost, "/payments/pay-order-0007/confirm", "confirm-portone-sim-0007-2", `{"paymentToken":"`+first.PaymentToken+`"}`)
	require.Equal(t, 400, status)
	require.Equal(t, PortOneInvalidPaymentToken, e["type"])

	_, err = sim.PortOnePay(PortOnePayRequest{PaymentID: "pay-order-0007", OrderID: "order-0007", Amount: 15000, Manual: true, Status: PortOnePaid})
	require.Error(t, err, "a manual customer only authenticates")
	entry, _ := sim.LedgerEntry("pay-order-0007")
	require.Zero(t, entry.Approvals)
}

func TestPortOneManualConfirmFaults(t *testing.T) {
	t.Parallel()
	sim, srv := newPortOneSim(t)
	const id = "pay-order-0008"
	auth, err := sim.PortOnePay(PortOnePayRequest{PaymentID: id, OrderID: "order-0008", Amount: 15000, Manual: true})
	require.NoError(t, err)
	body := `{"paymentToken":"` + auth.PaymentToken + `","totalAmount":15000,"currency":"KRW"}`

	// The front door's faults apply: an injected provider error charges
	// nothing.
	require.NoError(t, sim.SetConfig(Config{ErrorRates: map[string]float64{CodeProviderError: 1}}))
	status, e := portOneCall(t, srv, http.MethodPost, "/payments/"+id+"/confirm", "confirm-portone-sim-0008-0", body)
	require.Equal(t, 502, status)
	require.Equal(t, PortOnePgProvider, e["type"])
	require.NoError(t, sim.SetConfig(Config{}))

	// Charged, then the answer is lost: the retry under the same key
	// replays the charge instead of making another.
	const key = "confirm-portone-sim-0008-1"
	_, err = sim.Script(Script{PaymentKey: id, Operation: OperationConfirm, Steps: []Step{{Kind: StepLost}}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/payments/"+id+"/confirm", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "PortOne "+DefaultPortOneSecret)
	req.Header.Set("Idempotency-Key", `"`+key+`"`)
	// Else net/http resends a keyed request on the dropped connection.
	req.GetBody = nil
	if res, err := srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the answer should have been lost, got HTTP %d", res.StatusCode)
	}
	status, ok := portOneCall(t, srv, http.MethodPost, "/payments/"+id+"/confirm", key, body)
	require.Equal(t, 200, status, ok)
	entry, _ := sim.LedgerEntry(id)
	require.Equal(t, 1, entry.Approvals)
}
