package toss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

// testSecretKey is the sample key from the gateway's documentation, and
// testAuthorization its header exactly as the documentation prints it, so the
// encoding is checked against an independent source.
const (
	testSecretKey     = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"
	testAuthorization = "Basic dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg=="
	testBasicToken    = "dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg=="
)

// seenRequest is what the fake gateway received.
type seenRequest struct {
	Method     string
	RequestURI string
	Header     http.Header
	Body       string
}

type testBundle struct {
	client *Client
	server *httptest.Server
	// hits counts requests that reached the server.
	hits *atomic.Int64
	// seen receives every request the server got.
	seen chan seenRequest
}

// setup starts a fake gateway that records each request and answers with
// handler, and a client pointed at it.
func setup(t *testing.T, handler http.HandlerFunc) *testBundle {
	t.Helper()
	return setupWith(t, Config{}, "", handler)
}

// setupWith is setup with a config (its BaseURL is replaced by the server's
// URL plus basePath) and a clock that advances 25ms per reading, so Latency
// is exact.
func setupWith(t *testing.T, cfg Config, basePath string, handler http.HandlerFunc) *testBundle {
	t.Helper()
	b := &testBundle{hits: new(atomic.Int64), seen: make(chan seenRequest, 16)}
	b.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		b.seen <- seenRequest{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: string(body)}
		handler(w, r)
	}))
	t.Cleanup(b.server.Close)

	cfg.BaseURL = b.server.URL + basePath
	if cfg.SecretKey == "" {
		cfg.SecretKey = testSecretKey
	}
	c, err := New(cfg)
	require.NoError(t, err)
	var tick atomic.Int64
	epoch := time.Date(2024, 2, 13, 12, 0, 0, 0, kst)
	c.now = func() time.Time { return epoch.Add(time.Duration(tick.Add(1)) * 25 * time.Millisecond) }
	b.client = c
	return b
}

// next returns the request the server received.
func (b *testBundle) next(t *testing.T) seenRequest {
	t.Helper()
	select {
	case r := <-b.seen:
		return r
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the server received no request")
		return seenRequest{}
	}
}

// answer replies with a status and a body.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func answerJSON(status int, body string) http.HandlerFunc {
	return answer(status, "application/json;charset=UTF-8", body)
}

// requireNoSecret checks that s leaks the secret key in no form we send it.
func requireNoSecret(t *testing.T, s string) {
	t.Helper()
	require.NotContains(t, s, testSecretKey)
	require.NotContains(t, s, testBasicToken)
	require.NotContains(t, s, strings.TrimRight(testBasicToken, "="))
	require.NotContains(t, s, "zXLkKEypNArWmo50nX3lmeaxYG5R")
}

func TestNew(t *testing.T) {
	t.Parallel()

	t.Run("Valid", func(t *testing.T) {
		t.Parallel()
		for _, key := range []string{"test_sk_abc", "live_sk_abc", "test_gsk_abc", "live_gsk_abc"} {
			c, err := New(Config{SecretKey: key})
			require.NoError(t, err, key)
			require.Equal(t, DefaultBaseURL, c.baseURL)
			require.Equal(t, defaultTimeout, c.timeout)
			require.Equal(t, defaultUserAgent, c.userAgent)
		}
	})

	t.Run("LiveOverLoopbackHTTP", func(t *testing.T) {
		t.Parallel()
		for _, base := range []string{"http://localhost:8080", "http://127.0.0.1:8080/toss", "http://[::1]:8080"} {
			_, err := New(Config{BaseURL: base, SecretKey: "live_sk_abc"})
			require.NoError(t, err, base)
		}
	})

	t.Run("DefaultTransportKeepsConnections", func(t *testing.T) {
		t.Parallel()
		c, err := New(Config{SecretKey: testSecretKey})
		require.NoError(t, err)
		tr, ok := c.hc.Transport.(*http.Transport)
		require.True(t, ok)
		require.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 100)
	})

	t.Run("BaseURLJoin", func(t *testing.T) {
		t.Parallel()
		for raw, want := range map[string]string{
			"":                              DefaultBaseURL,
			"https://api.tosspayments.com":  "https://api.tosspayments.com",
			"https://api.tosspayments.com/": "https://api.tosspayments.com",
			"http://gatewaysim:8080/toss":   "http://gatewaysim:8080/toss",
			"http://gatewaysim:8080/toss/":  "http://gatewaysim:8080/toss",
		} {
			c, err := New(Config{BaseURL: raw, SecretKey: testSecretKey})
			require.NoError(t, err, raw)
			require.Equal(t, want, c.baseURL, raw)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name string
			cfg  Config
			want string
		}{
			{"EmptyKey", Config{}, "secret key is empty"},
			{"UnknownPrefix", Config{SecretKey: "sk_zXLkKEypNArWmo50nX3lmeaxYG5R"}, "must start with"},
			{"PrefixOnly", Config{SecretKey: "test_sk_"}, "must start with"},
			{"ClientKey", Config{SecretKey: "test_ck_zXLkKEypNArWmo50nX3lmeaxYG5R"}, "client key"},
			{"TrailingNewline", Config{SecretKey: testSecretKey + "\n"}, "whitespace"},
			{"Scheme", Config{SecretKey: testSecretKey, BaseURL: "ftp://api.tosspayments.com"}, "scheme"},
			{"Relative", Config{SecretKey: testSecretKey, BaseURL: "api.tosspayments.com"}, "scheme"},
			{"NoHost", Config{SecretKey: testSecretKey, BaseURL: "https:///v1"}, "no host"},
			{"UserInfo", Config{SecretKey: testSecretKey, BaseURL: "https://u:p@api.tosspayments.com"}, "user information"},
			{"Query", Config{SecretKey: testSecretKey, BaseURL: "https://api.tosspayments.com/?a=b"}, "query"},
			{"NegativeTimeout", Config{SecretKey: testSecretKey, Timeout: -time.Second}, "negative"},
			{"LiveOverHTTP", Config{SecretKey: "live_sk_zXLkKEypNArWmo50nX3lmeaxYG5R", BaseURL: "http://api.tosspayments.com"}, "https"},
		} {
			c, err := New(tt.cfg)
			require.Error(t, err, tt.name)
			require.Nil(t, c, tt.name)
			require.Contains(t, err.Error(), tt.want, tt.name)
			require.NotContains(t, err.Error(), "zXLkKEypNArWmo50nX3lmeaxYG5R", tt.name)
		}
	})
}

func TestSecretKeyNotPrinted(t *testing.T) {
	t.Parallel()

	cfg := Config{SecretKey: testSecretKey, BaseURL: "https://example.test"}
	c, err := New(cfg)
	require.NoError(t, err)

	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		requireNoSecret(t, fmt.Sprintf(format, c))
		requireNoSecret(t, fmt.Sprintf(format, cfg))
		requireNoSecret(t, fmt.Sprintf(format, &cfg))
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	requireNoSecret(t, string(b))
	require.Contains(t, c.String(), "test key")
}

func TestConfirm(t *testing.T) {
	t.Parallel()

	b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
	r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{
		PaymentKey: "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1",
		OrderID:    "a4CWyWY5m89PNh7xJwhk1",
		Amount:     15000,
	}, "confirm-pay_1-0")

	got := b.next(t)
	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "/v1/payments/confirm", got.RequestURI)
	require.Equal(t, testAuthorization, got.Header.Get("Authorization"))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "confirm-pay_1-0", got.Header.Get("Idempotency-Key"))
	require.Equal(t, defaultUserAgent, got.Header.Get("User-Agent"))
	require.JSONEq(t, `{"paymentKey":"5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1","orderId":"a4CWyWY5m89PNh7xJwhk1","amount":15000}`, got.Body)

	require.NoError(t, r.Err)
	require.Equal(t, http.StatusOK, r.HTTPStatus)
	require.Empty(t, r.Code)
	require.NotNil(t, r.Payment)
	require.Equal(t, StatusDone, r.Payment.Status)
	require.Equal(t, int64(15000), r.Payment.TotalAmount)
	require.Equal(t, 25*time.Millisecond, r.Latency)
	require.Equal(t, gateway.ClassSuccess, Classify(r))
}

func TestCancel(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name     string
		req      gateway.CancelRequest
		wantBody string
	}{
		{"Full", gateway.CancelRequest{Reason: "고객 변심", RefundableAmount: 15000}, `{"cancelReason":"고객 변심","refundableAmount":15000}`},
		{"Partial", gateway.CancelRequest{Reason: "partial refund", Amount: 300, RefundableAmount: 15000}, `{"cancelReason":"partial refund","cancelAmount":300,"refundableAmount":15000}`},
		{"WholeBalanceByAmount", gateway.CancelRequest{Reason: "rest", Amount: 14700, RefundableAmount: 14700}, `{"cancelReason":"rest","cancelAmount":14700,"refundableAmount":14700}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(http.StatusOK, samplePaymentPartialCanceled))
			r := b.client.Cancel(context.Background(), samplePaymentKey, tt.req, "cancel-c_1")

			got := b.next(t)
			require.Equal(t, http.MethodPost, got.Method)
			require.Equal(t, "/v1/payments/"+samplePaymentKey+"/cancel", got.RequestURI)
			require.Equal(t, testAuthorization, got.Header.Get("Authorization"))
			require.Equal(t, "application/json", got.Header.Get("Content-Type"))
			require.Equal(t, "cancel-c_1", got.Header.Get("Idempotency-Key"))
			// Exact bytes, not JSONEq: a full cancel must not carry
			// cancelAmount at all, and every cancel carries
			// refundableAmount.
			require.Equal(t, tt.wantBody, got.Body)

			require.NoError(t, r.Err)
			require.Equal(t, gateway.ClassSuccess, Classify(r))
			require.Len(t, r.Payment.Cancels, 1)
		})
	}
}

func TestCancelRefundableAmountMismatch(t *testing.T) {
	t.Parallel()

	b := setup(t, answerJSON(http.StatusBadRequest, `{"code":"NOT_MATCHES_REFUNDABLE_AMOUNT","message":"잔액 결과가 일치하지 않습니다."}`))
	r := b.client.Cancel(context.Background(), "pk_1", gateway.CancelRequest{Reason: "r", Amount: 300, RefundableAmount: 15000}, "cancel-c_2")
	require.JSONEq(t, `{"cancelReason":"r","cancelAmount":300,"refundableAmount":15000}`, b.next(t).Body)
	require.NoError(t, r.Err)
	require.Nil(t, r.Payment)
	require.Equal(t, http.StatusBadRequest, r.HTTPStatus)
	require.Equal(t, "NOT_MATCHES_REFUNDABLE_AMOUNT", r.Code)
	require.Equal(t, gateway.ClassUnclear, Classify(r), "the balance moved: a lookup must say whether our cancel already landed")
}

func TestAnswerForAnotherPayment(t *testing.T) {
	t.Parallel()

	confirm := func(paymentKey, orderID string) func(*Client) gateway.Result {
		return func(c *Client) gateway.Result {
			return c.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: paymentKey, OrderID: orderID, Amount: 15000}, "k")
		}
	}
	for _, tt := range []struct {
		name string
		body string
		call func(*Client) gateway.Result
		want string
	}{
		{"ConfirmOtherOrder", samplePaymentDone, confirm(samplePaymentKey, "order_ours"),
			`approval for another order "a4CWyWY5m89PNh7xJwhk1", we asked for "order_ours"`},
		{"ConfirmOtherPaymentKey", samplePaymentDone, confirm("pk_ours", sampleOrderID),
			`answer for paymentKey "` + samplePaymentKey + `", we asked about "pk_ours"`},
		{"CancelOtherPaymentKey", samplePaymentPartialCanceled, func(c *Client) gateway.Result {
			return c.Cancel(context.Background(), "pk_ours", gateway.CancelRequest{Reason: "r", RefundableAmount: 15000}, "k")
		}, `answer for paymentKey "` + samplePaymentKey + `", we asked about "pk_ours"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(http.StatusOK, tt.body))
			r := tt.call(b.client)
			require.ErrorIs(t, r.Err, errOtherPayment)
			require.ErrorContains(t, r.Err, tt.want)
			require.NotErrorIs(t, r.Err, gateway.ErrNotSent)
			require.Nil(t, r.Payment, "another payment's amounts must not be recorded as ours")
			require.Equal(t, http.StatusOK, r.HTTPStatus)
			require.Equal(t, gateway.ClassUnclear, Classify(r), "the relay must look our payment up")
		})
	}

	// Lookups return what the gateway found; the relay compares it.
	t.Run("LookupKeepsThePayment", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
		r := b.client.LookupByOrderID(context.Background(), "order_ours")
		require.NoError(t, r.Err)
		require.Equal(t, sampleOrderID, r.Payment.OrderID)
	})
}

func TestLookup(t *testing.T) {
	t.Parallel()

	t.Run("ByPaymentKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
		r := b.client.Lookup(context.Background(), "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1")

		got := b.next(t)
		require.Equal(t, http.MethodGet, got.Method)
		require.Equal(t, "/v1/payments/5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1", got.RequestURI)
		require.Equal(t, testAuthorization, got.Header.Get("Authorization"))
		require.Empty(t, got.Header.Get("Idempotency-Key"))
		require.Empty(t, got.Header.Get("Content-Type"))
		require.Empty(t, got.Body)
		require.NoError(t, r.Err)
		require.Equal(t, "a4CWyWY5m89PNh7xJwhk1", r.Payment.OrderID)
	})

	t.Run("ByOrderID", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
		r := b.client.LookupByOrderID(context.Background(), "a4CWyWY5m89PNh7xJwhk1")

		got := b.next(t)
		require.Equal(t, http.MethodGet, got.Method)
		require.Equal(t, "/v1/payments/orders/a4CWyWY5m89PNh7xJwhk1", got.RequestURI)
		require.Equal(t, testAuthorization, got.Header.Get("Authorization"))
		require.Empty(t, got.Header.Get("Idempotency-Key"))
		require.NoError(t, r.Err)
		require.Equal(t, gateway.ClassSuccess, Classify(r))
	})
}

func TestPathEscaping(t *testing.T) {
	t.Parallel()

	const key = "a/b?c#d e%f;g"
	const escaped = "a%2Fb%3Fc%23d%20e%25f%3Bg"

	for _, tt := range []struct {
		name string
		call func(*Client) gateway.Result
		want string
	}{
		{"Lookup", func(c *Client) gateway.Result { return c.Lookup(context.Background(), key) }, "/v1/payments/" + escaped},
		{"LookupByOrderID", func(c *Client) gateway.Result { return c.LookupByOrderID(context.Background(), key) }, "/v1/payments/orders/" + escaped},
		{"Cancel", func(c *Client) gateway.Result {
			return c.Cancel(context.Background(), key, gateway.CancelRequest{Reason: "r", RefundableAmount: 1}, "k")
		}, "/v1/payments/" + escaped + "/cancel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The answer names the same odd key, so that the cancel's
			// check that the answer is about our payment passes.
			b := setup(t, answerJSON(http.StatusOK, `{"paymentKey":"a/b?c#d e%f;g","status":"CANCELED","totalAmount":100,"balanceAmount":0}`))
			r := tt.call(b.client)
			require.NoError(t, r.Err)
			require.Equal(t, tt.want, b.next(t).RequestURI)
		})
	}
}

func TestBaseURLWithPrefix(t *testing.T) {
	t.Parallel()

	for _, prefix := range []string{"/toss", "/toss/"} {
		b := setupWith(t, Config{}, prefix, answerJSON(http.StatusOK, samplePaymentDone))
		r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: samplePaymentKey, OrderID: sampleOrderID, Amount: 15000}, "k")
		require.NoError(t, r.Err)
		require.Equal(t, "/toss/v1/payments/confirm", b.next(t).RequestURI, prefix)

		r = b.client.LookupByOrderID(context.Background(), "order_1")
		require.NoError(t, r.Err)
		require.Equal(t, "/toss/v1/payments/orders/order_1", b.next(t).RequestURI, prefix)
	}
}

func TestConfigPassThrough(t *testing.T) {
	t.Parallel()

	var viaCustom atomic.Int64
	custom := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		viaCustom.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	b := setupWith(t, Config{
		SecretKey:  "live_gsk_widgetkey",
		UserAgent:  "shop/2.0",
		HTTPClient: custom,
	}, "", answerJSON(http.StatusOK, samplePaymentDone))

	r := b.client.Lookup(context.Background(), "pk")
	require.NoError(t, r.Err)
	got := b.next(t)
	require.Equal(t, "shop/2.0", got.Header.Get("User-Agent"))
	require.Equal(t, "Basic bGl2ZV9nc2tfd2lkZ2V0a2V5Og==", got.Header.Get("Authorization"))
	require.Equal(t, int64(1), viaCustom.Load())
	require.Nil(t, custom.CheckRedirect, "the caller's client must not be modified")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestIdempotencyKeyPassedThrough(t *testing.T) {
	t.Parallel()

	b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
	keys := []string{
		"7c4a0f43-8bc2-4f4e-9a1b-5c2d7e1f0a9b",
		"confirm-pay_01HQ3-1",
		strings.Repeat("k", maxIdempotencyKeyLen),
	}
	for _, key := range keys {
		r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: samplePaymentKey, OrderID: sampleOrderID, Amount: 15000}, key)
		require.NoError(t, r.Err)
		require.Equal(t, key, b.next(t).Header.Get("Idempotency-Key"))
	}
}

func TestRefusesToSend(t *testing.T) {
	t.Parallel()

	confirm := gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}
	cancel := gateway.CancelRequest{Reason: "r", RefundableAmount: 100}
	for _, tt := range []struct {
		name string
		call func(*Client) gateway.Result
		want string
	}{
		{"ConfirmNoKey", func(c *Client) gateway.Result { return c.Confirm(context.Background(), confirm, "") }, "idempotency key is empty"},
		{"CancelNoKey", func(c *Client) gateway.Result { return c.Cancel(context.Background(), "pk", cancel, "") }, "idempotency key is empty"},
		{"KeyTooLong", func(c *Client) gateway.Result {
			return c.Confirm(context.Background(), confirm, strings.Repeat("k", maxIdempotencyKeyLen+1))
		}, "more than 300"},
		{"KeyWithNewline", func(c *Client) gateway.Result { return c.Confirm(context.Background(), confirm, "k\r\nX-Evil: 1") }, "visible ASCII"},
		{"KeyNonASCII", func(c *Client) gateway.Result { return c.Confirm(context.Background(), confirm, "키") }, "visible ASCII"},
		{"ConfirmNoPaymentKey", func(c *Client) gateway.Result {
			return c.Confirm(context.Background(), gateway.ConfirmRequest{OrderID: "order_1", Amount: 1}, "k")
		}, "paymentKey is empty"},
		{"ConfirmNoOrderID", func(c *Client) gateway.Result {
			return c.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", Amount: 1}, "k")
		}, "orderId is empty"},
		{"ConfirmZeroAmount", func(c *Client) gateway.Result {
			return c.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1"}, "k")
		}, "not positive"},
		{"CancelNoPaymentKey", func(c *Client) gateway.Result { return c.Cancel(context.Background(), "", cancel, "k") }, "paymentKey is empty"},
		{"CancelDotDot", func(c *Client) gateway.Result { return c.Cancel(context.Background(), "..", cancel, "k") }, "path segment"},
		{"CancelNoReason", func(c *Client) gateway.Result {
			return c.Cancel(context.Background(), "pk", gateway.CancelRequest{Amount: 1, RefundableAmount: 100}, "k")
		}, "reason is empty"},
		{"CancelNegativeAmount", func(c *Client) gateway.Result {
			return c.Cancel(context.Background(), "pk", gateway.CancelRequest{Reason: "r", Amount: -1, RefundableAmount: 100}, "k")
		}, "negative"},
		{"LookupNoPaymentKey", func(c *Client) gateway.Result { return c.Lookup(context.Background(), "") }, "paymentKey is empty"},
		{"LookupDot", func(c *Client) gateway.Result { return c.Lookup(context.Background(), ".") }, "path segment"},
		{"LookupNoOrderID", func(c *Client) gateway.Result { return c.LookupByOrderID(context.Background(), "") }, "orderId is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
			r := tt.call(b.client)
			require.ErrorIs(t, r.Err, gateway.ErrNotSent)
			require.ErrorContains(t, r.Err, tt.want)
			require.Zero(t, r.HTTPStatus)
			require.Nil(t, r.Payment)
			require.Equal(t, gateway.ClassMisconfigured, Classify(r))
			require.Zero(t, b.hits.Load(), "nothing may reach the gateway")
		})
	}
}

// TestRefusesToSendForAmounts: a cancel the payment's amounts do not allow
// (nothing left to refund, more than the balance) is never sent either, and
// is a refusal, not misconfiguration: nothing of ours needs fixing.
func TestRefusesToSendForAmounts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		req  gateway.CancelRequest
		want string
	}{
		{"NoRefundableAmount", gateway.CancelRequest{Reason: "r", Amount: 1}, "refundable amount 0 is not positive"},
		{"NegativeRefundableAmount", gateway.CancelRequest{Reason: "r", RefundableAmount: -5}, "refundable amount -5 is not positive"},
		{"MoreThanRefundable", gateway.CancelRequest{Reason: "r", Amount: 101, RefundableAmount: 100}, "cancel amount 101 exceeds the refundable amount 100"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
			r := b.client.Cancel(context.Background(), "pk", tt.req, "k")
			require.ErrorIs(t, r.Err, gateway.ErrAmountsRefused)
			require.NotErrorIs(t, r.Err, gateway.ErrNotSent)
			require.ErrorContains(t, r.Err, tt.want)
			require.Equal(t, gateway.ClassRefused, Classify(r))
			require.Zero(t, b.hits.Load(), "nothing may reach the gateway")
		})
	}
}

func TestKeyRetention(t *testing.T) {
	t.Parallel()
	c, err := New(Config{SecretKey: "test_sk_x"})
	require.NoError(t, err)
	require.Equal(t, 15*24*time.Hour, c.KeyRetention())
	c, err = New(Config{SecretKey: "test_sk_x", KeyRetention: time.Second})
	require.NoError(t, err)
	require.Equal(t, time.Second, c.KeyRetention())
	_, err = New(Config{SecretKey: "test_sk_x", KeyRetention: -time.Second})
	require.Error(t, err)
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()

	proxyPage := `<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>`
	for _, tt := range []struct {
		name        string
		handler     http.HandlerFunc
		wantStatus  int
		wantCode    string
		wantMessage string
		wantErr     string // "" when Err must be nil
		wantClass   gateway.Class
	}{
		{
			name:        "Refusal",
			handler:     answerJSON(http.StatusForbidden, `{"code":"REJECT_CARD_COMPANY","message":"결제 승인이 거절되었습니다"}`),
			wantStatus:  http.StatusForbidden,
			wantCode:    "REJECT_CARD_COMPANY",
			wantMessage: "결제 승인이 거절되었습니다",
			wantClass:   gateway.ClassRefused,
		},
		{
			name:        "SessionExpired",
			handler:     answerJSON(http.StatusNotFound, `{"code":"NOT_FOUND_PAYMENT_SESSION","message":"결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다."}`),
			wantStatus:  http.StatusNotFound,
			wantCode:    "NOT_FOUND_PAYMENT_SESSION",
			wantMessage: "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.",
			wantClass:   gateway.ClassSessionExpired,
		},
		{
			name:        "IdempotentProcessing",
			handler:     answerJSON(http.StatusConflict, `{"code":"IDEMPOTENT_REQUEST_PROCESSING","message":"이전 요청이 처리 중입니다."}`),
			wantStatus:  http.StatusConflict,
			wantCode:    "IDEMPOTENT_REQUEST_PROCESSING",
			wantMessage: "이전 요청이 처리 중입니다.",
			wantClass:   gateway.ClassTransient,
		},
		{
			name:        "ExtraFieldsInErrorBody",
			handler:     answerJSON(http.StatusInternalServerError, `{"code":"UNKNOWN_PAYMENT_ERROR","message":"m","data":{"x":1}}`),
			wantStatus:  http.StatusInternalServerError,
			wantCode:    "UNKNOWN_PAYMENT_ERROR",
			wantMessage: "m",
			wantClass:   gateway.ClassUnclear,
		},
		{
			name:       "ProxyHTML502",
			handler:    answer(http.StatusBadGateway, "text/html", proxyPage),
			wantStatus: http.StatusBadGateway,
			wantErr:    "HTTP 502 without an error code",
			wantClass:  gateway.ClassTransient,
		},
		{
			name:       "Empty503",
			handler:    answer(http.StatusServiceUnavailable, "", ""),
			wantStatus: http.StatusServiceUnavailable,
			wantErr:    "HTTP 503 without an error code",
			wantClass:  gateway.ClassTransient,
		},
		{
			name:       "JSONWithoutCode",
			handler:    answerJSON(http.StatusBadRequest, `{"error":"bad"}`),
			wantStatus: http.StatusBadRequest,
			wantErr:    "HTTP 400 without an error code",
			wantClass:  gateway.ClassRefused,
		},
		{
			name:       "Bare401",
			handler:    answer(http.StatusUnauthorized, "", ""),
			wantStatus: http.StatusUnauthorized,
			wantErr:    "HTTP 401 without an error code",
			wantClass:  gateway.ClassMisconfigured,
		},
		{
			name:       "Bare429",
			handler:    answer(http.StatusTooManyRequests, "text/plain", "slow down"),
			wantStatus: http.StatusTooManyRequests,
			wantErr:    "slow down",
			wantClass:  gateway.ClassTransient,
		},
		{
			name:       "LargeErrorBody",
			handler:    answer(http.StatusInternalServerError, "text/plain", strings.Repeat("x", maxBodyBytes+10)),
			wantStatus: http.StatusInternalServerError,
			wantErr:    "exceeds",
			wantClass:  gateway.ClassTransient,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.handler)
			r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}, "k")
			require.Equal(t, tt.wantStatus, r.HTTPStatus)
			require.Nil(t, r.Payment)
			require.Equal(t, tt.wantCode, r.Code)
			require.Equal(t, tt.wantMessage, r.Message)
			if tt.wantErr == "" {
				require.NoError(t, r.Err)
			} else {
				require.ErrorContains(t, r.Err, tt.wantErr)
				require.NotErrorIs(t, r.Err, gateway.ErrNotSent)
			}
			require.Equal(t, tt.wantClass, Classify(r))
		})
	}
}

func TestUnusableSuccessIsUnclear(t *testing.T) {
	t.Parallel()

	for name, body := range map[string]string{
		"HTML":             `<html>OK</html>`,
		"Empty":            ``,
		"EmptyObject":      `{}`,
		"NoStatus":         `{"paymentKey":"pk","orderId":"order_1","totalAmount":100}`,
		"FractionalAmount": `{"paymentKey":"pk","status":"DONE","totalAmount":100.5}`,
		"AmountAsString":   `{"paymentKey":"pk","status":"DONE","totalAmount":"100"}`,
		"Truncated":        samplePaymentDone[:len(samplePaymentDone)/2],
		"DoneTotalNull":    `{"paymentKey":"pk","orderId":"order_1","status":"DONE","totalAmount":null,"balanceAmount":100}`,
		"DoneNoBalance":    `{"paymentKey":"pk","orderId":"order_1","status":"DONE","totalAmount":100}`,
		"CanceledNoAmount": `{"paymentKey":"pk","orderId":"order_1","status":"CANCELED"}`,
		"ErrorShape":       `{"code":"COMMON_ERROR","message":"m"}`,
		"TooLarge":         `{"paymentKey":"pk","status":"DONE","x":"` + strings.Repeat("x", maxBodyBytes) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(http.StatusOK, body))
			r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}, "k")
			require.Error(t, r.Err)
			require.Equal(t, http.StatusOK, r.HTTPStatus)
			require.Nil(t, r.Payment)
			require.Empty(t, r.Code)
			require.Equal(t, gateway.ClassUnclear, Classify(r), "the gateway may have done the work")
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	b := setupWith(t, Config{Timeout: 50 * time.Millisecond}, "", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	// Registered after setupWith so that it runs before the server's Close,
	// which waits for the handler.
	t.Cleanup(func() { close(release) })

	r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}, "k")
	require.ErrorIs(t, r.Err, context.DeadlineExceeded)
	require.Zero(t, r.HTTPStatus)
	require.Nil(t, r.Payment)
	require.Equal(t, gateway.ClassTransient, Classify(r))
}

func TestTimeoutWhileReadingSuccessIsUnclear(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	// Long enough that the headers arrive on a loaded machine, short
	// enough to keep the test quick.
	b := setupWith(t, Config{Timeout: time.Second}, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"paymentKey":"pk",`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })

	r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}, "k")
	require.Error(t, r.Err)
	require.Equal(t, http.StatusOK, r.HTTPStatus)
	require.Equal(t, gateway.ClassUnclear, Classify(r))
}

func TestCallerCancellation(t *testing.T) {
	t.Parallel()

	b := setup(t, answerJSON(http.StatusOK, samplePaymentDone))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := b.client.Lookup(ctx, "pk")
	require.ErrorIs(t, r.Err, context.Canceled)
	require.Zero(t, r.HTTPStatus)
	require.Equal(t, gateway.ClassTransient, Classify(r))
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()

	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	c, err := New(Config{BaseURL: url, SecretKey: testSecretKey})
	require.NoError(t, err)
	r := c.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}, "k")
	require.Error(t, r.Err)
	require.Zero(t, r.HTTPStatus)
	require.Equal(t, gateway.ClassTransient, Classify(r))
	requireNoSecret(t, r.Err.Error())
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()

	var followed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
	}))
	t.Cleanup(target.Close)

	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/v1/payments/confirm", http.StatusTemporaryRedirect)
	})
	r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}, "k")
	require.Equal(t, http.StatusTemporaryRedirect, r.HTTPStatus)
	require.ErrorContains(t, r.Err, "redirect to")
	require.Equal(t, gateway.ClassMisconfigured, Classify(r))
	require.Zero(t, followed.Load(), "the Authorization header must not be sent elsewhere")
}

func TestSecretKeyNotInErrors(t *testing.T) {
	t.Parallel()

	// A misbehaving proxy that echoes the request, credentials included.
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "Authorization: %s\nraw: %s\nnopad: %s\n",
			r.Header.Get("Authorization"), testSecretKey, strings.TrimRight(testBasicToken, "="))
	}
	b := setup(t, echo)
	r := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "pk", OrderID: "order_1", Amount: 100}, "k")
	require.Error(t, r.Err)
	require.Contains(t, r.Err.Error(), "[redacted]")
	requireNoSecret(t, r.Err.Error())
	requireNoSecret(t, fmt.Sprintf("%+v", r))

	b = setup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.test/?k="+testSecretKey, http.StatusFound)
	})
	r = b.client.Lookup(context.Background(), "pk")
	require.Error(t, r.Err)
	requireNoSecret(t, r.Err.Error())
}

func TestErrorsUnwrap(t *testing.T) {
	t.Parallel()

	// The relay tells causes apart with errors.Is; make sure wrapping keeps
	// the chain intact for the not-sent sentinel (the body limit's is in
	// internal/gateway/httpcall, TestReadBody).
	r := gateway.Result{Err: fmt.Errorf("outer: %w", notSent("confirm", errors.New("x")).Err)}
	require.ErrorIs(t, r.Err, gateway.ErrNotSent)
}
