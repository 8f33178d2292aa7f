package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// FuzzPortOneWebhook posts whatever a stranger could to the PortOne webhook,
// signed or not: it never answers 5xx; a request whose signature does not
// verify (headers the fuzzer wrote, a body changed after signing, a
// timestamp outside the five-minute window) is 401 and enqueues nothing;
// and whatever verifies is answered 200 or, for a body that is not an
// event, 400. One PortOne payment exists, so verified events naming it
// reach the lookup door too.
func FuzzPortOneWebhook(f *testing.F) {
	pool := dbtest.Pool(f)
	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(f, err)
	st := store.New()
	s := New(Config{Pool: pool, Store: st, Outbox: outbox, PortOneWebhookSecret: portOneTestSecret,
		Gateways: []string{payment.GatewayToss, payment.GatewayPortOne}})
	const known = "pay-order-fuzz-1"
	in := payment.Intent{OrderID: "order-fuzz-1", OrderName: "Tea", Amount: 15000, Gateway: payment.GatewayPortOne, PaymentKey: known}
	require.NoError(f, in.Validate())
	_, _, err = st.InsertPayment(f.Context(), pool, "0193d1f0-0000-7000-8000-000000000001", in)
	require.NoError(f, err)
	wh, err := standardwebhooks.NewWebhook(portOneTestSecret)
	require.NoError(f, err)

	jobs := func(t *testing.T) int {
		var n int
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM river_job").Scan(&n))
		return n
	}

	for _, seed := range []struct {
		body   string
		sign   bool
		skew   int64 // seconds between the signature's timestamp and now
		tamper bool
	}{
		{portOneBody("Transaction.Paid", known), true, 0, false},
		{portOneBody("Transaction.Paid", known), true, -301, false},
		{portOneBody("Transaction.Paid", known), true, 400, false},
		{portOneBody("Transaction.Paid", known), true, 0, true},
		{portOneBody("Transaction.Cancelled", "pay-not-ours"), true, 0, false},
		{portOneBody("BillingKey.Issued", ""), true, 0, false},
		{`{"payment_id":"` + known + `","status":"Paid"}`, true, 0, false},
		{`{"type":"Transaction.Paid","data":{"paymentId":"a/../b"}}`, true, 0, false},
		{`not json`, true, 0, false},
		{`[]`, true, 0, false},
		{portOneBody("Transaction.Paid", known), false, 0, false},
		{``, false, 0, false},
	} {
		f.Add([]byte(seed.body), "msg_2nWq9ZRZlV0ztAd8nG6nnKnP6dF", "", "", seed.sign, seed.skew, seed.tamper)
	}
	f.Add([]byte(portOneBody("Transaction.Paid", known)), "msg_1", "1700000000", "v1,AAAA", false, int64(0), false)
	f.Add([]byte(`{}`), "", "99999999999999999999", "v1a,== v1,"+string(make([]byte, 3)), false, int64(0), false)

	f.Fuzz(func(t *testing.T, body []byte, id, timestamp, signature string, sign bool, skew int64, tamper bool) {
		verifiable := false
		if sign {
			skew = max(min(skew, 3600), -3600)
			at := time.Now().Add(time.Duration(skew) * time.Second)
			sig, err := wh.Sign(id, at, body)
			require.NoError(t, err)
			timestamp, signature = strconv.FormatInt(at.Unix(), 10), sig
			// Within the window, with a margin for the test's own time.
			verifiable = skew > -290 && skew < 290 && !tamper
			if tamper {
				body = append(bytes.Clone(body), ' ')
			}
		}
		req := httptest.NewRequest(http.MethodPost, portOneWebhookPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for name, v := range map[string]string{"webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature} {
			if validHeaderValue(v) {
				req.Header.Set(name, v)
			}
		}
		before := jobs(t)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)

		require.Less(t, rec.Code, 500, "%s", rec.Body.String())
		if rec.Code == http.StatusOK || rec.Code == http.StatusBadRequest {
			require.True(t, sign && !tamper, "answered %d to a request we did not sign: %s", rec.Code, rec.Body.String())
		}
		// A webhook-id the api reads at all: visible ASCII, not too long
		// (" " is none: the first failing input this target found, kept in
		// its corpus).
		if verifiable && id != "" && len(id) <= maxWebhookIDLen && visibleASCII(id) {
			require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, rec.Code, "%s", rec.Body.String())
		}
		if rec.Code != http.StatusOK {
			require.Equal(t, before, jobs(t), "a refused webhook enqueued nothing")
		}
	})
}

// validHeaderValue reports whether v can be sent as an HTTP header value:
// what a client can put on the wire at all.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
