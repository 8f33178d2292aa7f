package portone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

const (
	testSecret  = "portone_test_secret_0123456789"
	testStoreID = "store-4b3d2f8e-0000-4000-8000-000000000001"
	cancelKey   = "cancel-0193d1f0-aaaa-7000-8000-000000000001"
)

// seenRequest is what the fake PortOne received.
type seenRequest struct {
	method, path, query string
	header              http.Header
	body                map[string]any
}

type testBundle struct {
	client *Client
	seen   chan seenRequest
}

func setup(t *testing.T, handler http.HandlerFunc) *testBundle {
	t.Helper()
	return setupMode(t, payment.PortOneConfirmBrowser, handler)
}

// setupMode is setup for a store in the given confirm mode.
func setupMode(t *testing.T, mode payment.PortOneConfirmMode, handler http.HandlerFunc) *testBundle {
	t.Helper()
	b := &testBundle{seen: make(chan seenRequest, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		req := seenRequest{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header.Clone()}
		if len(raw) > 0 {
			require.NoError(t, json.Unmarshal(raw, &req.body))
		}
		b.seen <- req
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Secret: testSecret, StoreID: testStoreID, Timeout: 2 * time.Second, ConfirmMode: mode})
	require.NoError(t, err)
	b.client = c
	return b
}

func (b *testBundle) next(t *testing.T) seenRequest {
	t.Helper()
	select {
	case r := <-b.seen:
		return r
	case <-time.After(2 * time.Second):
		t.Fatal("no request reached the server")
		return seenRequest{}
	}
}

func answerJSON(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// paid is a PortOne PAID payment as GET /payments/{id} answers it, trimmed
// to the fields PortOne always sends plus the ones the client reads.
func paid(id, storeID string, total, cancelled int64, currency string) string {
	return fmt.Sprintf(`{"status":"PAID","id":%q,"transactionId":"0193d1f0-tx","merchantId":"merchant-1","storeId":%q,
		"method":{"type":"PaymentMethodCard"},"channel":{"type":"TEST","pgProvider":"TOSSPAYMENTS"},"version":"V2",
		"requestedAt":"2026-11-21T03:00:00Z","updatedAt":"2026-11-21T03:00:05Z","statusChangedAt":"2026-11-21T03:00:05Z",
		"orderName":"Coffee beans 1kg","amount":{"total":%d,"taxFree":0,"vat":1364,"supply":13636,"discount":0,"paid":%d,"cancelled":%d,"cancelledTaxFree":0},
		"currency":%q,"customer":{},"paidAt":"2026-11-21T03:00:05Z","disputes":[],"cancellations":[]}`,
		id, storeID, total, total, cancelled, currency)
}

func TestNew(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"NoSecret":     {StoreID: testStoreID},
		"NoStore":      {Secret: testSecret},
		"SecretNL":     {Secret: testSecret + "\n", StoreID: testStoreID},
		"BadScheme":    {Secret: testSecret, StoreID: testStoreID, BaseURL: "ftp://api.portone.io"},
		"UserInfo":     {Secret: testSecret, StoreID: testStoreID, BaseURL: "https://u:p@api.portone.io"},
		"NegativeTime": {Secret: testSecret, StoreID: testStoreID, Timeout: -time.Second},
		"BadMode":      {Secret: testSecret, StoreID: testStoreID, ConfirmMode: "Manual"},
	} {
		_, err := New(cfg)
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), testSecret, name)
	}
	c, err := New(Config{Secret: testSecret, StoreID: testStoreID})
	require.NoError(t, err)
	require.Equal(t, DefaultBaseURL, c.baseURL)
	require.NotContains(t, fmt.Sprintf("%v %+v %#v", c, c, Config{Secret: testSecret}), testSecret)
}

func TestConfirmIsAVerifiedLookup(t *testing.T) {
	t.Parallel()
	b := setup(t, answerJSON(200, paid("order-0001", testStoreID, 15000, 0, "KRW")))

	res := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "order-0001", Amount: 15000, Currency: "KRW"}, "confirm-x-1")
	req := b.next(t)
	require.Equal(t, http.MethodGet, req.method)
	require.Equal(t, "/payments/order-0001", req.path)
	require.Equal(t, "storeId="+testStoreID, req.query)
	require.Equal(t, "PortOne "+testSecret, req.header.Get("Authorization"))
	require.Empty(t, req.header.Get("Idempotency-Key"), "PortOne ignores it on GET; nothing to make idempotent")

	require.NoError(t, res.Err)
	require.Equal(t, 200, res.HTTPStatus)
	require.NotNil(t, res.Payment)
	require.Equal(t, "order-0001", res.Payment.PaymentKey)
	require.Equal(t, StatusPaid, res.Payment.Status)
	require.Equal(t, gateway.PhaseCharged, res.Payment.Phase)
	require.Equal(t, int64(15000), res.Payment.TotalAmount)
	require.Equal(t, int64(15000), res.Payment.BalanceAmount)
	require.Equal(t, "KRW", res.Payment.Currency)
	require.Equal(t, "PaymentMethodCard", res.Payment.Method)
	require.True(t, res.Payment.ApprovedAt.Equal(time.Date(2026, 11, 21, 3, 0, 5, 0, time.UTC)))
	require.Equal(t, gateway.ClassSuccess, b.client.Classify(res))
}

func TestConfirmRecordsOfOthers(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"AnotherStore":   paid("order-0001", "store-of-someone-else", 15000, 0, "KRW"),
		"AnotherPayment": paid("order-0002", testStoreID, 15000, 0, "KRW"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(200, body))
			res := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "order-0001", Amount: 15000}, "")
			require.Nil(t, res.Payment, "never booked as ours")
			require.ErrorIs(t, res.Err, errOtherPayment)
			require.Equal(t, gateway.ClassUnclear, b.client.Classify(res))
		})
	}
}

func TestConfirmOtherAmountIsStillAnApproval(t *testing.T) {
	t.Parallel()
	// The relay must see the approval to refund it: the amount check (and
	// its compensating cancel) is the domain's, as for Toss.
	b := setup(t, answerJSON(200, paid("order-0001", testStoreID, 16000, 0, "KRW")))
	res := b.client.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: "order-0001", Amount: 15000, Currency: "KRW"}, "")
	require.NotNil(t, res.Payment)
	require.Equal(t, int64(16000), res.Payment.TotalAmount)
	require.Equal(t, gateway.ClassSuccess, b.client.Classify(res))
}

const (
	confirmKey = "confirm-0193d1f0-bbbb-7000-8000-000000000001-1"
	testToken  = "ptok_0193d1f0-secret-token"
)

// manualConfirm is a manual-mode confirm of order-0001 for 15000 KRW.
var manualConfirm = gateway.ConfirmRequest{PaymentKey: "order-0001", Amount: 15000, Currency: "KRW", PaymentToken: testToken}

func TestManualConfirm(t *testing.T) {
	t.Parallel()

	t.Run("Approved", func(t *testing.T) {
		t.Parallel()
		b := setupMode(t, payment.PortOneConfirmManual, answerJSON(200, `{"pgTxId":"pg-tx-1","paidAt":"2026-11-21T03:00:05Z"}`))
		res := b.client.Confirm(context.Background(), manualConfirm, confirmKey)
		req := b.next(t)
		require.Equal(t, http.MethodPost, req.method)
		require.Equal(t, "/payments/order-0001/confirm", req.path)
		require.Equal(t, "PortOne "+testSecret, req.header.Get("Authorization"))
		require.Equal(t, `"`+confirmKey+`"`, req.header.Get("Idempotency-Key"), "the payment's confirm key, an RFC 8941 string")
		require.Equal(t, map[string]any{
			"storeId": testStoreID, "paymentToken": testToken, "totalAmount": float64(15000), "currency": "KRW",
		}, req.body)

		require.NoError(t, res.Err)
		require.Equal(t, gateway.ClassSuccess, b.client.Classify(res))
		require.Equal(t, "order-0001", res.Payment.PaymentKey)
		require.Equal(t, StatusPaid, res.Payment.Status)
		require.Equal(t, gateway.PhaseCharged, res.Payment.Phase)
		require.Equal(t, int64(15000), res.Payment.TotalAmount, "what PortOne checked totalAmount against")
		require.Equal(t, int64(15000), res.Payment.BalanceAmount)
		require.Equal(t, "KRW", res.Payment.Currency)
		require.True(t, res.Payment.ApprovedAt.Equal(time.Date(2026, 11, 21, 3, 0, 5, 0, time.UTC)))
	})

	// A 200 that is not a summary of a payment made is not booked: a
	// lookup decides.
	for name, body := range map[string]string{
		"NoPaidAt":  `{"pgTxId":"pg-tx-1"}`,
		"BadPaidAt": `{"pgTxId":"pg-tx-1","paidAt":"soon"}`,
		"NoPgTxID":  `{"paidAt":"2026-11-21T03:00:05Z"}`,
		"NotJSON":   `ok`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupMode(t, payment.PortOneConfirmManual, answerJSON(200, body))
			res := b.client.Confirm(context.Background(), manualConfirm, confirmKey)
			require.Nil(t, res.Payment)
			require.Error(t, res.Err)
			require.Equal(t, gateway.ClassUnclear, b.client.Classify(res))
		})
	}

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			status int
			body   string
			code   string
			class  gateway.Class
		}{
			{409, `{"type":"ALREADY_PAID","message":"결제가 이미 완료되었습니다."}`, CodeAlreadyPaid, gateway.ClassUnclear},
			{409, `{"type":"INFORMATION_MISMATCH","message":"m"}`, CodeInformationMismatch, gateway.ClassRefused},
			{400, `{"type":"INVALID_PAYMENT_TOKEN","message":"m"}`, CodeInvalidPaymentToken, gateway.ClassRefused},
			{400, `{"type":"INVALID_REQUEST","message":"m"}`, CodeInvalidRequest, gateway.ClassRefused},
			{404, `{"type":"PAYMENT_NOT_FOUND","message":"m"}`, CodePaymentNotFound, gateway.ClassRefused},
			{502, `{"type":"PG_PROVIDER","message":"m","pgCode":"E01","pgMessage":"busy"}`, CodePgProvider, gateway.ClassTransient},
			{409, `{"type":"IDEMPOTENCY_OUTSTANDING_REQUEST","message":"m"}`, CodeIdempotencyOutstandingRequest, gateway.ClassTransient},
			{401, `{"type":"UNAUTHORIZED","message":"m"}`, CodeUnauthorized, gateway.ClassMisconfigured},
			{403, `{"type":"FORBIDDEN","message":"m"}`, CodeForbidden, gateway.ClassMisconfigured},
		} {
			t.Run(tt.code, func(t *testing.T) {
				t.Parallel()
				b := setupMode(t, payment.PortOneConfirmManual, answerJSON(tt.status, tt.body))
				res := b.client.Confirm(context.Background(), manualConfirm, confirmKey)
				require.Equal(t, tt.status, res.HTTPStatus)
				require.Equal(t, tt.code, res.Code)
				require.Nil(t, res.Payment)
				require.Equal(t, tt.class, b.client.Classify(res))
			})
		}
	})

	t.Run("TokenNeverInErrors", func(t *testing.T) {
		t.Parallel()
		b := setupMode(t, payment.PortOneConfirmManual, func(w http.ResponseWriter, r *http.Request) {
			raw, _ := json.Marshal(map[string]any{"echo": r.URL.Path})
			w.WriteHeader(502)
			_, _ = w.Write(raw)
		})
		res := b.client.Confirm(context.Background(), manualConfirm, confirmKey)
		require.Error(t, res.Err)
		require.NotContains(t, fmt.Sprintf("%v %+v", res, manualConfirm), testToken)
	})

	t.Run("WithoutTokenIsTheLookup", func(t *testing.T) {
		t.Parallel()
		// A confirm requested before the deployment switched to manual.
		b := setupMode(t, payment.PortOneConfirmManual, answerJSON(200, paid("order-0001", testStoreID, 15000, 0, "KRW")))
		req := manualConfirm
		req.PaymentToken = ""
		res := b.client.Confirm(context.Background(), req, confirmKey)
		require.Equal(t, http.MethodGet, b.next(t).method)
		require.Equal(t, gateway.ClassSuccess, b.client.Classify(res))
	})

	t.Run("BrowserModeNeverSendsTheToken", func(t *testing.T) {
		t.Parallel()
		// A store not set to manual confirm charges in the browser; a
		// token from before a switch back is not ours to spend.
		b := setup(t, answerJSON(200, paid("order-0001", testStoreID, 15000, 0, "KRW")))
		b.client.Confirm(context.Background(), manualConfirm, confirmKey)
		req := b.next(t)
		require.Equal(t, http.MethodGet, req.method)
		require.Nil(t, req.body)
	})

	t.Run("RefusesToSend", func(t *testing.T) {
		t.Parallel()
		b := setupMode(t, payment.PortOneConfirmManual, func(http.ResponseWriter, *http.Request) { t.Error("nothing may be sent") })
		noCurrency := manualConfirm
		noCurrency.Currency = ""
		for name, res := range map[string]gateway.Result{
			"NoKey":      b.client.Confirm(context.Background(), manualConfirm, ""),
			"ShortKey":   b.client.Confirm(context.Background(), manualConfirm, "confirm-1"),
			"NoCurrency": b.client.Confirm(context.Background(), noCurrency, confirmKey),
		} {
			require.ErrorIs(t, res.Err, gateway.ErrNotSent, name)
			require.Equal(t, gateway.ClassMisconfigured, b.client.Classify(res), name)
		}
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()

	t.Run("Partial", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(200, `{"cancellation":{"status":"SUCCEEDED","id":"cancellation-1","pgCancellationId":"pg-1",
			"totalAmount":5000,"taxFreeAmount":0,"vatAmount":455,"reason":"one bag returned","cancelledAt":"2026-11-21T03:10:00Z","requestedAt":"2026-11-21T03:10:00Z"}}`))
		res := b.client.Cancel(context.Background(), "order-0001",
			gateway.CancelRequest{Reason: "one bag returned", Amount: 5000, RefundableAmount: 15000}, cancelKey)
		req := b.next(t)
		require.Equal(t, http.MethodPost, req.method)
		require.Equal(t, "/payments/order-0001/cancel", req.path)
		require.Equal(t, "PortOne "+testSecret, req.header.Get("Authorization"))
		require.Equal(t, `"`+cancelKey+`"`, req.header.Get("Idempotency-Key"), "an RFC 8941 string")
		require.Equal(t, map[string]any{
			"storeId": testStoreID, "amount": float64(5000), "reason": "one bag returned", "currentCancellableAmount": float64(15000),
		}, req.body)

		require.NoError(t, res.Err)
		require.Equal(t, StatusPartialCancelled, res.Payment.Status)
		require.Equal(t, int64(10000), res.Payment.BalanceAmount)
		require.Equal(t, "cancellation-1", res.Payment.Cancels[0].TransactionKey)
		require.Equal(t, gateway.ClassSuccess, b.client.Classify(res))
	})

	t.Run("Full", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answerJSON(200, `{"cancellation":{"status":"SUCCEEDED","id":"cancellation-2","totalAmount":15000,"taxFreeAmount":0,"vatAmount":0,"reason":"r","requestedAt":"2026-11-21T03:10:00Z"}}`))
		res := b.client.Cancel(context.Background(), "order-0001", gateway.CancelRequest{Reason: "r", RefundableAmount: 15000}, cancelKey)
		req := b.next(t)
		_, hasAmount := req.body["amount"]
		require.False(t, hasAmount, "absent: the whole cancellable amount")
		require.Equal(t, float64(15000), req.body["currentCancellableAmount"])
		require.Equal(t, StatusCancelled, res.Payment.Status)
		require.Zero(t, res.Payment.BalanceAmount)
	})

	// A cancellation that is not (yet) a refund, or not the one we asked
	// for, is not booked: a lookup decides.
	for name, body := range map[string]string{
		"Requested":   `{"cancellation":{"status":"REQUESTED","id":"c","totalAmount":5000,"taxFreeAmount":0,"vatAmount":0,"reason":"r","requestedAt":"2026-11-21T03:10:00Z"}}`,
		"Failed":      `{"cancellation":{"status":"FAILED","id":"c","totalAmount":5000,"taxFreeAmount":0,"vatAmount":0,"reason":"r","requestedAt":"2026-11-21T03:10:00Z"}}`,
		"OtherAmount": `{"cancellation":{"status":"SUCCEEDED","id":"c","totalAmount":4000,"taxFreeAmount":0,"vatAmount":0,"reason":"r","requestedAt":"2026-11-21T03:10:00Z"}}`,
		"NoBody":      `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(200, body))
			res := b.client.Cancel(context.Background(), "order-0001", gateway.CancelRequest{Reason: "r", Amount: 5000, RefundableAmount: 15000}, cancelKey)
			require.Nil(t, res.Payment)
			require.Error(t, res.Err)
			require.Equal(t, gateway.ClassUnclear, b.client.Classify(res))
		})
	}
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status int
		body   string
		code   string
		class  gateway.Class
	}{
		{409, `{"type":"CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN","message":"취소 가능 잔액 검증에 실패했습니다."}`, CodeCancellableAmountConsistencyBroken, gateway.ClassUnclear},
		{409, `{"type":"PAYMENT_ALREADY_CANCELLED","message":"m"}`, CodePaymentAlreadyCancelled, gateway.ClassUnclear},
		{409, `{"type":"IDEMPOTENCY_OUTSTANDING_REQUEST","message":"m"}`, CodeIdempotencyOutstandingRequest, gateway.ClassTransient},
		{502, `{"type":"PG_PROVIDER","message":"PG사에서 오류를 전달했습니다.","pgCode":"E01","pgMessage":"busy"}`, CodePgProvider, gateway.ClassTransient},
		{404, `{"type":"PAYMENT_NOT_FOUND","message":"m"}`, CodePaymentNotFound, gateway.ClassRefused},
		{401, `{"type":"UNAUTHORIZED","message":"m"}`, CodeUnauthorized, gateway.ClassMisconfigured},
		{403, `{"type":"FORBIDDEN","message":"m"}`, CodeForbidden, gateway.ClassMisconfigured},
		{409, `{"type":"SOMETHING_NEW","message":"m"}`, "SOMETHING_NEW", gateway.ClassRefused},
		{503, `<html>upstream down</html>`, "", gateway.ClassTransient},
	} {
		t.Run(fmt.Sprintf("%d%s", tt.status, tt.code), func(t *testing.T) {
			t.Parallel()
			b := setup(t, answerJSON(tt.status, tt.body))
			res := b.client.Cancel(context.Background(), "order-0001", gateway.CancelRequest{Reason: "r", RefundableAmount: 15000}, cancelKey)
			require.Equal(t, tt.status, res.HTTPStatus)
			require.Equal(t, tt.code, res.Code)
			require.Nil(t, res.Payment)
			require.Equal(t, tt.class, b.client.Classify(res))
			if tt.code == CodePgProvider {
				require.Contains(t, res.Message, "E01")
			}
			if tt.code == "" {
				require.Error(t, res.Err)
			}
		})
	}
}

func TestRefusesToSend(t *testing.T) {
	t.Parallel()
	b := setup(t, func(http.ResponseWriter, *http.Request) { t.Error("nothing may be sent") })
	ctx := context.Background()
	for name, res := range map[string]gateway.Result{
		"ShortKey":  b.client.Cancel(ctx, "order-0001", gateway.CancelRequest{Reason: "r", RefundableAmount: 15000}, "cancel-1"),
		"QuotedKey": b.client.Cancel(ctx, "order-0001", gateway.CancelRequest{Reason: "r", RefundableAmount: 15000}, `cancel-"0123456789"`),
		"NoReason":  b.client.Cancel(ctx, "order-0001", gateway.CancelRequest{RefundableAmount: 15000}, cancelKey),
		"DotDot":    b.client.Lookup(ctx, ".."),
		"NoAmount":  b.client.Confirm(ctx, gateway.ConfirmRequest{PaymentKey: "order-0001"}, ""),
	} {
		require.ErrorIs(t, res.Err, gateway.ErrNotSent, name)
		require.Equal(t, gateway.ClassMisconfigured, b.client.Classify(res), name)
	}
	// Refused for the payment's amounts: a refusal, never misconfigured.
	for name, res := range map[string]gateway.Result{
		"NoRefundable":   b.client.Cancel(ctx, "order-0001", gateway.CancelRequest{Reason: "r"}, cancelKey),
		"OverRefundable": b.client.Cancel(ctx, "order-0001", gateway.CancelRequest{Reason: "r", Amount: 20000, RefundableAmount: 15000}, cancelKey),
	} {
		require.ErrorIs(t, res.Err, gateway.ErrAmountsRefused, name)
		require.NotErrorIs(t, res.Err, gateway.ErrNotSent, name)
		require.Equal(t, gateway.ClassRefused, b.client.Classify(res), name)
	}
	require.Equal(t, KeyRetention, b.client.KeyRetention())
}

func TestPaymentIDEscaped(t *testing.T) {
	t.Parallel()
	b := setup(t, answerJSON(404, `{"type":"PAYMENT_NOT_FOUND"}`))
	b.client.Lookup(context.Background(), "a/b?c")
	require.Equal(t, "/payments/a%2Fb%3Fc", b.next(t).path)
}

func TestSecretNotInErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		_, _ = io.WriteString(w, "proxy saw: "+r.Header.Get("Authorization"))
	})
	res := b.client.Lookup(context.Background(), "order-0001")
	require.Error(t, res.Err)
	require.NotContains(t, res.Err.Error(), testSecret)
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Secret: testSecret, StoreID: testStoreID})
	require.NoError(t, err)
	res := c.Lookup(context.Background(), "order-0001")
	require.Zero(t, res.HTTPStatus)
	require.Error(t, res.Err)
	require.False(t, errors.Is(res.Err, gateway.ErrNotSent))
	require.Equal(t, gateway.ClassTransient, c.Classify(res))
}

func TestParsePayment(t *testing.T) {
	t.Parallel()

	t.Run("PartialCancelled", func(t *testing.T) {
		t.Parallel()
		body := strings.Replace(paid("order-0001", testStoreID, 15000, 5000, "KRW"), `"status":"PAID"`, `"status":"PARTIAL_CANCELLED"`, 1)
		body = strings.Replace(body, `"cancellations":[]`, `"cancellations":[
			{"status":"SUCCEEDED","id":"c1","totalAmount":5000,"taxFreeAmount":0,"vatAmount":0,"reason":"r","cancelledAt":"2026-11-21T03:10:00Z","requestedAt":"2026-11-21T03:10:00Z"},
			{"status":"FAILED","id":"c2","totalAmount":1000,"taxFreeAmount":0,"vatAmount":0,"reason":"r","requestedAt":"2026-11-21T03:11:00Z"}]`, 1)
		p, err := parsePayment([]byte(body))
		require.NoError(t, err)
		require.Equal(t, gateway.PhaseCharged, p.Phase)
		require.Equal(t, int64(10000), p.BalanceAmount)
		require.Len(t, p.Cancels, 1, "a failed cancellation moved no money")
		require.Equal(t, "c1", p.Cancels[0].TransactionKey)
	})

	t.Run("Failed", func(t *testing.T) {
		t.Parallel()
		p, err := parsePayment([]byte(`{"status":"FAILED","id":"order-0001","storeId":"s","amount":{"total":15000,"taxFree":0,"discount":0,"paid":0,"cancelled":0,"cancelledTaxFree":0},
			"failure":{"reason":"카드 한도 초과","pgCode":"LIMIT"}}`))
		require.NoError(t, err)
		require.Equal(t, gateway.PhaseFailed, p.Phase)
		require.Contains(t, p.FailureReason, "LIMIT")
		require.Equal(t, gateway.ClassRefused, answers.Classify(gateway.Result{HTTPStatus: 200, Payment: &p.Payment}))
	})

	t.Run("ChargedNeedsAmounts", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{
			`{"status":"PAID","id":"p","storeId":"s"}`,
			`{"status":"PAID","id":"p","storeId":"s","amount":{"total":100}}`,
			`{"status":"CANCELLED","id":"p","storeId":"s","amount":{"cancelled":100}}`,
			`{"status":"PAID","id":"p","storeId":"s","amount":{"total":100,"cancelled":200}}`,
		} {
			_, err := parsePayment([]byte(body))
			require.Error(t, err, body)
		}
	})

	t.Run("NotPaidNeedsNoAmounts", func(t *testing.T) {
		t.Parallel()
		for status, phase := range map[string]gateway.Phase{
			StatusReady: gateway.PhaseOpen, StatusPayPending: gateway.PhaseWaiting, StatusPending: gateway.PhaseWaiting,
			StatusVirtualAccountIssued: gateway.PhaseWaiting,
		} {
			p, err := parsePayment([]byte(`{"status":"` + status + `","id":"p","storeId":"s"}`))
			require.NoError(t, err, status)
			require.Equal(t, phase, p.Phase, status)
			require.Equal(t, gateway.ClassPending, answers.Classify(gateway.Result{HTTPStatus: 200, Payment: &p.Payment}), status)
		}
	})

	t.Run("Unusable", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{``, `[]`, `{}`, `{"status":"PAID","id":"p"}`, `{"status":7,"id":"p","storeId":"s"}`} {
			_, err := parsePayment([]byte(body))
			require.Error(t, err, body)
		}
	})
}

// TestClassifyCoverage holds every row of the table to a test above or here,
// so a row added without one fails.
func TestClassifyCoverage(t *testing.T) {
	t.Parallel()
	code := func(status int, c string) gateway.Result { return gateway.Result{HTTPStatus: status, Code: c} }
	rec := func(status string) gateway.Result {
		return gateway.Result{HTTPStatus: 200, Payment: &gateway.Payment{PaymentKey: "p", Status: status}}
	}
	tests := []struct {
		r    gateway.Result
		want gateway.Class
	}{
		{rec(StatusPaid), gateway.ClassSuccess},
		{rec(StatusPartialCancelled), gateway.ClassSuccess},
		{rec(StatusCancelled), gateway.ClassSuccess},
		{rec(StatusFailed), gateway.ClassRefused},
		{rec(StatusReady), gateway.ClassPending},
		{rec(StatusPayPending), gateway.ClassPending},
		{rec(StatusPending), gateway.ClassPending},
		{rec(StatusVirtualAccountIssued), gateway.ClassPending},
		{rec("SOMETHING_NEW"), gateway.ClassUnclear},
		{code(502, CodePgProvider), gateway.ClassTransient},
		{code(409, CodeIdempotencyOutstandingRequest), gateway.ClassTransient},
		{code(409, CodeCancellableAmountConsistencyBroken), gateway.ClassUnclear},
		{code(409, CodePaymentAlreadyCancelled), gateway.ClassUnclear},
		{code(400, CodeInvalidRequest), gateway.ClassRefused},
		{code(404, CodePaymentNotFound), gateway.ClassRefused},
		{code(409, CodePaymentNotPaid), gateway.ClassRefused},
		{code(409, CodeCancelAmountExceedsCancellableAmount), gateway.ClassRefused},
		{code(409, CodeSumOfPartsExceedsCancelAmount), gateway.ClassRefused},
		{code(409, CodeCancelTaxFreeAmountExceedsCancellableTaxFree), gateway.ClassRefused},
		{code(409, CodeCancelTaxAmountExceedsCancellableTaxAmount), gateway.ClassRefused},
		{code(400, CodeNegativePromotionAdjustedCancelAmount), gateway.ClassRefused},
		{code(400, CodePromotionDiscountRetainOptionShouldNotBeChange), gateway.ClassRefused},
		{code(401, CodeUnauthorized), gateway.ClassMisconfigured},
		{code(403, CodeForbidden), gateway.ClassMisconfigured},
		{code(409, CodeAlreadyPaid), gateway.ClassUnclear},
		{code(409, CodeInformationMismatch), gateway.ClassRefused},
		{code(400, CodeInvalidPaymentToken), gateway.ClassRefused},
		// Unknown types fall to the shared status rows.
		{code(500, "SOMETHING_NEW"), gateway.ClassTransient},
		{code(401, "SOMETHING_NEW"), gateway.ClassMisconfigured},
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		require.Equal(t, tt.want, answers.Classify(tt.r), "%+v", tt.r)
		tested[tt.r.Code] = true
		if tt.r.Payment != nil {
			tested[tt.r.Payment.Status] = true
		}
	}
	for c := range answers.Codes {
		require.True(t, tested[c], "code %s has no test", c)
	}
	for s := range answers.PaymentStatuses {
		require.True(t, tested[s], "payment status %s has no test", s)
	}
	for c := range answers.StillRunning {
		_, known := answers.Codes[c]
		require.True(t, known, "still-running code %s is not in the table", c)
	}
}

// TestRedirectReported: a redirect is not followed, and its Location
// (without the secret) is in the error, as for Toss: the two clients'
// copies had drifted, and only Toss's said where the redirect pointed.
func TestRedirectReported(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.test/payments?k="+testSecret, http.StatusFound)
	})
	res := b.client.Lookup(context.Background(), "pay-1")
	require.Equal(t, http.StatusFound, res.HTTPStatus)
	require.ErrorContains(t, res.Err, `redirect to "https://elsewhere.test/payments?k=[redacted]"`)
	require.NotContains(t, res.Err.Error(), testSecret)
	require.Equal(t, gateway.ClassMisconfigured, b.client.Classify(res))
}
