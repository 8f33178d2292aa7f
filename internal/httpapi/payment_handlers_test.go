package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
)

const (
	kindConfirm = "payment_confirm"
	kindCancel  = "payment_cancel"
)

func TestCreatePayment(t *testing.T) {
	t.Parallel()

	t.Run("CreatedThenRepeatedThenConflict", func(t *testing.T) {
		t.Parallel()
		b := setup(t)

		body := `{"orderId":"order-0001","amount":15000,"orderName":"Blue shirt"}`
		rec := b.postJSON(t, "/v1/payments", body)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		created := decode[paymentResponse](t, rec)
		_, err := uuid.Parse(created.ID)
		require.NoError(t, err)
		require.Equal(t, "/v1/payments/"+created.ID, rec.Header().Get("Location"))
		require.Equal(t, "order-0001", created.OrderID)
		require.Equal(t, "Blue shirt", created.OrderName)
		require.EqualValues(t, 15000, created.Amount)
		require.Equal(t, "KRW", created.Currency)
		require.Equal(t, "ready", created.Status)
		require.Empty(t, created.PaymentKey)
		require.Nil(t, created.Failure)
		require.Nil(t, created.ApprovedAt)

		// The same intent again (currency spelled out this time: it is the
		// default) is a repeat, not a second payment.
		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-0001","amount":15000,"orderName":"Blue shirt","currency":"KRW"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, created.ID, decode[paymentResponse](t, rec).ID)

		for name, other := range map[string]string{
			"Amount":    `{"orderId":"order-0001","amount":15001,"orderName":"Blue shirt"}`,
			"OrderName": `{"orderId":"order-0001","amount":15000,"orderName":"Red shirt"}`,
		} {
			t.Run(name, func(t *testing.T) {
				rec := b.postJSON(t, "/v1/payments", other)
				requireProblem(t, rec, http.StatusConflict, payment.CodeOrderConflict)
			})
		}
		require.Equal(t, 1, b.countPayments(t))
	})

	t.Run("Gateway", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
			c.DefaultGateway = payment.GatewayPortOne
		})

		// None named: the deployment's default, recorded on the row.
		rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-gw-1","amount":15000,"orderName":"Tea"}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		require.Equal(t, payment.GatewayPortOne, decode[paymentResponse](t, rec).Gateway)
		stored, err := b.store.PaymentByOrderID(t.Context(), b.pool, "order-gw-1")
		require.NoError(t, err)
		require.Equal(t, payment.GatewayPortOne, stored.Gateway)

		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-gw-2","amount":15000,"orderName":"Tea","gateway":"toss"}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		require.Equal(t, payment.GatewayToss, decode[paymentResponse](t, rec).Gateway)

		// The same order through another gateway is another intent.
		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-gw-2","amount":15000,"orderName":"Tea","gateway":"portone"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeOrderConflict)

		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-gw-3","amount":15000,"orderName":"Tea","gateway":"paypal"}`)
		requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)

		// Known, but not enabled on this deployment: no relay would serve it.
		tossOnly := b.with(func(c *Config) { c.Gateways, c.DefaultGateway = nil, payment.GatewayToss })
		rec = tossOnly.postJSON(t, "/v1/payments", `{"orderId":"order-gw-4","amount":15000,"orderName":"Tea","gateway":"portone"}`)
		requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
		require.Contains(t, rec.Body.String(), "not enabled")
		require.Equal(t, 2, b.countPayments(t))
	})

	t.Run("PortOnePaymentKeyBoundAtCreate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
		})

		// None given: the api makes one and answers with it.
		rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-bind-1","amount":15000,"orderName":"Tea","gateway":"portone"}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		made := decode[paymentResponse](t, rec)
		require.Equal(t, payment.DefaultPaymentKey(made.ID), made.PaymentKey)
		// A repeat that leaves the key to the api is the same intent.
		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-bind-1","amount":15000,"orderName":"Tea","gateway":"portone"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, made.PaymentKey, decode[paymentResponse](t, rec).PaymentKey)

		// Given: stored as given.
		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-bind-2","amount":15000,"orderName":"Tea","gateway":"portone","paymentKey":"pay-order-bind-2"}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		given := decode[paymentResponse](t, rec)
		require.Equal(t, "pay-order-bind-2", given.PaymentKey)

		// A confirm naming another PortOne payment (another unclaimed PAID
		// payment of the store and amount) is refused, and nothing moves.
		rec = b.postJSON(t, "/v1/payments/"+given.ID+"/confirm", `{"paymentKey":"pay-someone-else","amount":15000}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodePaymentKeyConflict)
		require.Zero(t, b.countJobs(t, kindConfirm, given.ID))
		rec = b.postJSON(t, "/v1/payments/"+given.ID+"/confirm", `{"paymentKey":"pay-order-bind-2","amount":15000}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())

		// The same id for another order, the same order with another id, and
		// a key for Toss: refused, nothing written.
		before := b.countPayments(t)
		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-bind-3","amount":15000,"orderName":"Tea","gateway":"portone","paymentKey":"pay-order-bind-2"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodePaymentKeyConflict)
		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-bind-1","amount":15000,"orderName":"Tea","gateway":"portone","paymentKey":"pay-other"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeOrderConflict)
		rec = b.postJSON(t, "/v1/payments", `{"orderId":"order-bind-4","amount":15000,"orderName":"Tea","gateway":"toss","paymentKey":"pk_1"}`)
		requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
		require.Equal(t, before, b.countPayments(t))
	})

	t.Run("RepeatAfterConfirmShowsCurrentState", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-0002", 5000)
		b.confirmPayment(t, p.ID, "pk_repeat_2", 5000)

		rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-0002","amount":5000,"orderName":"Blue shirt"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		got := decode[paymentResponse](t, rec)
		require.Equal(t, p.ID, got.ID)
		require.Equal(t, "confirming", got.Status)
	})

	t.Run("ConcurrentRepeats", func(t *testing.T) {
		t.Parallel()
		b := setup(t)

		const n = 8
		codes := make(chan int, n)
		ids := make(chan string, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-race-1","amount":700,"orderName":"Gloves"}`)
				codes <- rec.Code
				var p paymentResponse
				if json.Unmarshal(rec.Body.Bytes(), &p) == nil {
					ids <- p.ID
				}
			})
		}
		wg.Wait()
		close(codes)
		close(ids)

		created := 0
		for c := range codes {
			require.Contains(t, []int{http.StatusCreated, http.StatusOK}, c)
			if c == http.StatusCreated {
				created++
			}
		}
		require.Equal(t, 1, created)
		var first string
		for id := range ids {
			if first == "" {
				first = id
			}
			require.Equal(t, first, id)
		}
		require.Equal(t, 1, b.countPayments(t))
	})

	t.Run("CharsetUTF8Accepted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rec := b.do(t, http.MethodPost, "/v1/payments", `{"orderId":"order-0003","amount":1,"orderName":"한글 상품명"}`,
			"Content-Type", "application/json; charset=UTF-8")
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		require.Equal(t, "한글 상품명", decode[paymentResponse](t, rec).OrderName)
	})
}

// TestCreatePaymentRejects holds every input rule: each bad body gets a 400
// (or 413/415) with its code, and nothing is written.
func TestCreatePaymentRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)

	const good = `"orderName":"Blue shirt"`
	tests := []struct {
		name        string
		body        string
		contentType string
		status      int
		code        string
		detail      string // a substring of the detail, when it matters
	}{
		// Not a JSON object.
		{name: "Empty", body: ``, code: codeInvalidJSON, detail: "empty"},
		{name: "Whitespace", body: "  \n", code: codeInvalidJSON, detail: "empty"},
		{name: "Array", body: `[]`, code: codeInvalidJSON, detail: "JSON object"},
		{name: "String", body: `"order"`, code: codeInvalidJSON, detail: "JSON object"},
		{name: "Null", body: `null`, code: codeInvalidJSON, detail: "JSON object"},
		{name: "Number", body: `15000`, code: codeInvalidJSON, detail: "JSON object"},
		{name: "Truncated", body: `{"orderId":"order-1234","amount":15`, code: codeInvalidJSON},
		{name: "Malformed", body: `{"orderId" "order-1234"}`, code: codeInvalidJSON},
		{name: "TrailingComma", body: `{"orderId":"order-1234","amount":1,` + good + `,}`, code: codeInvalidJSON},
		{name: "TrailingGarbage", body: `{"orderId":"order-1234","amount":1,` + good + `} garbage`, code: codeInvalidJSON, detail: "after the JSON object"},
		{name: "SecondObject", body: `{"orderId":"order-1234","amount":1,` + good + `}{}`, code: codeInvalidJSON, detail: "after the JSON object"},
		{name: "InvalidUTF8", body: "{\"orderId\":\"order-1234\",\"amount\":1,\"orderName\":\"\xff\xfe\"}", code: codeInvalidJSON, detail: "UTF-8"},
		{name: "DuplicateMember", body: `{"orderId":"order-1234","amount":1,"amount":100,` + good + `}`, code: codeInvalidJSON, detail: "more than once"},

		// Members that are not in the contract.
		{name: "UnknownField", body: `{"orderId":"order-1234","amount":1,` + good + `,"discount":500}`, code: codeUnknownField, detail: `"discount"`},
		{name: "CaseVariant", body: `{"orderId":"order-1234","AMOUNT":1,` + good + `}`, code: codeUnknownField, detail: `"AMOUNT"`},
		{name: "NestedUnknown", body: `{"orderId":"order-1234","amount":1,` + good + `,"meta":{"a":1}}`, code: codeUnknownField},

		// Amounts.
		{name: "AmountMissing", body: `{"orderId":"order-1234",` + good + `}`, code: payment.CodeInvalidRequest, detail: "amount is required"},
		{name: "AmountNull", body: `{"orderId":"order-1234","amount":null,` + good + `}`, code: payment.CodeInvalidRequest, detail: "not null"},
		{name: "AmountFloat", body: `{"orderId":"order-1234","amount":1.5,` + good + `}`, code: payment.CodeInvalidRequest, detail: "fraction"},
		{name: "AmountWholeFloat", body: `{"orderId":"order-1234","amount":100.0,` + good + `}`, code: payment.CodeInvalidRequest, detail: "fraction"},
		{name: "AmountExponent", body: `{"orderId":"order-1234","amount":1e3,` + good + `}`, code: payment.CodeInvalidRequest, detail: "exponent"},
		{name: "AmountString", body: `{"orderId":"order-1234","amount":"100",` + good + `}`, code: payment.CodeInvalidRequest, detail: "not a string"},
		{name: "AmountBool", body: `{"orderId":"order-1234","amount":true,` + good + `}`, code: payment.CodeInvalidRequest, detail: "JSON integer"},
		{name: "AmountObject", body: `{"orderId":"order-1234","amount":{"value":1},` + good + `}`, code: payment.CodeInvalidRequest, detail: "JSON integer"},
		{name: "AmountNegative", body: `{"orderId":"order-1234","amount":-100,` + good + `}`, code: payment.CodeInvalidRequest, detail: "positive"},
		{name: "AmountZero", body: `{"orderId":"order-1234","amount":0,` + good + `}`, code: payment.CodeInvalidRequest, detail: "positive"},
		{name: "AmountNegativeZero", body: `{"orderId":"order-1234","amount":-0,` + good + `}`, code: payment.CodeInvalidRequest, detail: "positive"},
		{name: "AmountTooLarge", body: `{"orderId":"order-1234","amount":9223372036854775808,` + good + `}`, code: payment.CodeInvalidRequest, detail: "too large"},
		{name: "AmountHuge", body: `{"orderId":"order-1234","amount":1` + strings.Repeat("0", 400) + `,` + good + `}`, code: payment.CodeInvalidRequest, detail: "too large"},

		// Order ids.
		{name: "OrderIDMissing", body: `{"amount":1,` + good + `}`, code: payment.CodeInvalidRequest, detail: "orderId is required"},
		{name: "OrderIDShort", body: `{"orderId":"abc12","amount":1,` + good + `}`, code: payment.CodeInvalidRequest, detail: "orderId"},
		{name: "OrderIDLong", body: `{"orderId":"` + strings.Repeat("a", 65) + `","amount":1,` + good + `}`, code: payment.CodeInvalidRequest, detail: "orderId"},
		{name: "OrderIDUnicode", body: `{"orderId":"주문-123456","amount":1,` + good + `}`, code: payment.CodeInvalidRequest, detail: "orderId"},
		{name: "OrderIDSQL", body: `{"orderId":"x'; drop table payments;--","amount":1,` + good + `}`, code: payment.CodeInvalidRequest, detail: "orderId"},
		{name: "OrderIDSpace", body: `{"orderId":"order 1234","amount":1,` + good + `}`, code: payment.CodeInvalidRequest, detail: "orderId"},
		{name: "OrderIDNumber", body: `{"orderId":12345678,"amount":1,` + good + `}`, code: payment.CodeInvalidRequest, detail: "orderId must be a string"},

		// Order names and currencies.
		{name: "OrderNameMissing", body: `{"orderId":"order-1234","amount":1}`, code: payment.CodeInvalidRequest, detail: "orderName is required"},
		{name: "OrderNameBlank", body: `{"orderId":"order-1234","amount":1,"orderName":"   "}`, code: payment.CodeInvalidRequest, detail: "orderName is required"},
		{name: "OrderNameLong", body: `{"orderId":"order-1234","amount":1,"orderName":"` + strings.Repeat("가", 101) + `"}`, code: payment.CodeInvalidRequest, detail: "orderName"},
		{name: "OrderNameNUL", body: `{"orderId":"order-1234","amount":1,"orderName":"a\u0000b"}`, code: payment.CodeInvalidRequest, detail: "control characters"},
		{name: "OrderNameNewline", body: `{"orderId":"order-1234","amount":1,"orderName":"a\nb"}`, code: payment.CodeInvalidRequest, detail: "control characters"},
		{name: "Currency", body: `{"orderId":"order-1234","amount":1,` + good + `,"currency":"USD"}`, code: payment.CodeInvalidRequest, detail: "currency"},

		// Transport.
		{name: "NoContentType", body: `{"orderId":"order-1234","amount":1,` + good + `}`, contentType: "-", status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType},
		{name: "TextPlain", body: `{"orderId":"order-1234","amount":1,` + good + `}`, contentType: "text/plain", status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType},
		{name: "FormEncoded", body: `orderId=order-1234&amount=1`, contentType: "application/x-www-form-urlencoded", status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType},
		{name: "OtherCharset", body: `{"orderId":"order-1234","amount":1,` + good + `}`, contentType: "application/json; charset=latin1", status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType},
		{name: "TooLarge", body: `{"orderId":"order-1234","amount":1,"orderName":"` + strings.Repeat("x", int(DefaultBodyLimit)) + `"}`, status: http.StatusRequestEntityTooLarge, code: codeBodyTooLarge},
	}
	// A group, so the count below runs once every parallel case is done.
	t.Run("Cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var headers []string
				switch tt.contentType {
				case "":
					headers = []string{"Content-Type", "application/json"}
				case "-":
				default:
					headers = []string{"Content-Type", tt.contentType}
				}
				status := tt.status
				if status == 0 {
					status = http.StatusBadRequest
				}
				rec := b.do(t, http.MethodPost, "/v1/payments", tt.body, headers...)
				p := requireProblem(t, rec, status, tt.code)
				require.Contains(t, p.Detail, tt.detail)
				require.Equal(t, "/v1/payments", p.Instance)
			})
		}

		t.Run("TooLargeWithoutContentLength", func(t *testing.T) {
			t.Parallel()
			// A streamed body declares no length; the limit must hold while
			// reading too.
			body := `{"orderId":"order-1234","amount":1,"orderName":"` + strings.Repeat("x", int(DefaultBodyLimit)) + `"}`
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/payments", struct{ *strings.Reader }{strings.NewReader(body)})
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+b.apiKey)
			req.ContentLength = -1 // unknown, as for a chunked body
			rec := httptest.NewRecorder()
			b.handler.ServeHTTP(rec, req)
			requireProblem(t, rec, http.StatusRequestEntityTooLarge, codeBodyTooLarge)
		})
	})

	// Nothing written, and the payments table is still there to count.
	require.Equal(t, 0, b.countPayments(t))
}

func TestConfirmPayment(t *testing.T) {
	t.Parallel()

	t.Run("ConfirmingWithOneJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-c-0001", 15000)

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_0001","amount":15000}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		got := decode[paymentResponse](t, rec)
		require.Equal(t, p.ID, got.ID)
		require.Equal(t, "confirming", got.Status)
		require.Equal(t, "pk_test_0001", got.PaymentKey)
		require.Equal(t, payment.StatusConfirming, b.status(t, p.ID))
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))

		var args paymentjob.ConfirmArgs
		var queue string
		var maxAttempts int
		require.NoError(t, b.pool.QueryRow(t.Context(),
			"SELECT args, queue, max_attempts FROM river_job WHERE kind = $1", kindConfirm).Scan(&args, &queue, &maxAttempts))
		require.Equal(t, paymentjob.ConfirmArgs{PaymentID: p.ID}, args)
		require.Equal(t, paymentjob.Queue, queue)
		require.Equal(t, paymentjob.MaxAttempts, maxAttempts)

		// The same confirm again: same answer, no second job.
		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_0001","amount":15000}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.Equal(t, "confirming", decode[paymentResponse](t, rec).Status)
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))

		// Another key for the same payment is a conflict.
		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_other","amount":15000}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodePaymentKeyConflict)
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))
	})

	// Racing repeats of one confirm (a checkout retrying on a timeout) are
	// serialised by the row lock: one job, however many requests.
	t.Run("ConcurrentRepeats", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-c-race", 15000)

		const n = 8
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				codes <- b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_race","amount":15000}`).Code
			})
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			require.Equal(t, http.StatusAccepted, c)
		}
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("AmountMismatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-c-0002", 15000)

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_0002","amount":1500}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, payment.CodeAmountMismatch)
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("PaymentKeyUsedByAnotherPayment", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p1 := b.createPayment(t, "order-c-0003", 100)
		p2 := b.createPayment(t, "order-c-0004", 100)
		b.confirmPayment(t, p1.ID, "pk_shared", 100)

		rec := b.postJSON(t, "/v1/payments/"+p2.ID+"/confirm", `{"paymentKey":"pk_shared","amount":100}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodePaymentKeyConflict)
		require.Equal(t, payment.StatusReady, b.status(t, p2.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p2.ID))
	})

	t.Run("Rejects", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-c-0005", 15000)

		for name, body := range map[string]string{
			"NoPaymentKey":    `{"amount":15000}`,
			"EmptyPaymentKey": `{"paymentKey":"","amount":15000}`,
			"SlashInKey":      `{"paymentKey":"pk/../admin","amount":15000}`,
			"SpaceInKey":      `{"paymentKey":"pk 1","amount":15000}`,
			"LongKey":         `{"paymentKey":"` + strings.Repeat("k", payment.PaymentKeyMax+1) + `","amount":15000}`,
			"NoAmount":        `{"paymentKey":"pk_test_0005"}`,
			"ZeroAmount":      `{"paymentKey":"pk_test_0005","amount":0}`,
			"NegativeAmount":  `{"paymentKey":"pk_test_0005","amount":-15000}`,
			"FloatAmount":     `{"paymentKey":"pk_test_0005","amount":15000.5}`,
			"StringAmount":    `{"paymentKey":"pk_test_0005","amount":"15000"}`,
		} {
			t.Run(name, func(t *testing.T) {
				rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", body)
				requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
			})
		}
		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_0005","amount":15000,"orderId":"order-c-0005"}`)
		requireProblem(t, rec, http.StatusBadRequest, codeUnknownField)

		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, id := range []string{uuid.NewString(), "not-a-uuid", "1%27%20OR%201=1"} {
			rec := b.postJSON(t, "/v1/payments/"+id+"/confirm", `{"paymentKey":"pk_test_x","amount":100}`)
			requireProblem(t, rec, http.StatusNotFound, payment.CodeNotFound)
		}
	})

	// The point of the outbox: the row and its job commit together or not at
	// all.
	t.Run("OutboxFailureRollsBack", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(cfg *Config) { cfg.Outbox = failingOutbox{} })
		p := b.createPayment(t, "order-c-0006", 15000)

		rec := b.do(t, http.MethodPost, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_0006","amount":15000}`,
			"Content-Type", "application/json", "X-Request-Id", "atomic-1")
		pr := requireProblem(t, rec, http.StatusInternalServerError, payment.CodeInternal)
		require.NotContains(t, rec.Body.String(), "secret-internal-detail")
		require.NotContains(t, pr.Detail, "outbox")

		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
		stored, err := b.store.Payment(t.Context(), b.pool, p.ID)
		require.NoError(t, err)
		require.Empty(t, stored.PaymentKey)

		// The cause is in the log, with the request id, not in the answer.
		var found bool
		for _, l := range b.logs.lines(t) {
			msg, _ := l["error"].(string)
			if l["request_id"] == "atomic-1" && l["level"] == "ERROR" && strings.Contains(msg, "secret-internal-detail") {
				found = true
			}
		}
		require.True(t, found, "internal error not logged")
	})

	t.Run("TimeoutRollsBack", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(cfg *Config) {
			cfg.Outbox = blockingOutbox{}
			cfg.RequestTimeout = 300 * time.Millisecond
		})
		p := b.createPayment(t, "order-c-0008", 15000)

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_0008","amount":15000}`)
		requireProblem(t, rec, http.StatusServiceUnavailable, codeTimeout)
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("PanicRollsBack", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(cfg *Config) { cfg.Outbox = panickingOutbox{} })
		p := b.createPayment(t, "order-c-0007", 15000)

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_test_0007","amount":15000}`)
		requireProblem(t, rec, http.StatusInternalServerError, payment.CodeInternal)
		require.NotContains(t, rec.Body.String(), "secret-internal-detail")
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
	})
}

func TestCancelPayment(t *testing.T) {
	t.Parallel()

	t.Run("FromReady", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-x-0001", 15000)

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"customer changed\ntheir mind"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		got := decode[paymentResponse](t, rec)
		require.Equal(t, "canceled", got.Status)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, "void", got.Cancels[0].Status)
		require.NotNil(t, got.Cancels[0].CompletedAt)
		require.Equal(t, 0, b.countJobs(t, kindCancel, p.ID))

		// A canceled payment cannot be canceled or confirmed again.
		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"again"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeInvalidState)
		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_late","amount":15000}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeInvalidState)
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("PartialFromReady", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-x-0002", 15000)

		rec := b.postKeyed(t, "partial-1", "/v1/payments/"+p.ID+"/cancel", `{"reason":"partial","amount":100}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, payment.CodeInvalidState)
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countCancels(t, p.ID))
	})

	t.Run("WhileConfirming", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-x-0003", 15000)
		b.confirmPayment(t, p.ID, "pk_x_0003", 15000)

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"too slow"}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		got := decode[paymentResponse](t, rec)
		require.Equal(t, "confirming", got.Status)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, "waiting", got.Cancels[0].Status)
		require.Equal(t, "customer", got.Cancels[0].Kind)
		require.Nil(t, got.Cancels[0].Amount)
		// The confirm worker enqueues it once the confirm resolves.
		require.Equal(t, 0, b.countJobs(t, kindCancel, p.ID))

		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"again"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeCancelInProgress)
		require.Equal(t, 1, b.countCancels(t, p.ID))
	})

	t.Run("FromConfirmed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-x-0004", 15000)
		b.confirmPayment(t, p.ID, "pk_x_0004", 15000)
		b.approve(t, p.ID)

		// More than the balance, then a second cancel while one is pending.
		rec := b.postKeyed(t, "too-much", "/v1/payments/"+p.ID+"/cancel", `{"reason":"too much","amount":15001}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, payment.CodeCancelExceeds)
		require.Equal(t, 0, b.countCancels(t, p.ID))

		rec = b.postKeyed(t, "partial-refund", "/v1/payments/"+p.ID+"/cancel", `{"reason":"partial refund","amount":5000}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		got := decode[paymentResponse](t, rec)
		require.Equal(t, "canceling", got.Status)
		require.Len(t, got.Cancels, 1)
		c := got.Cancels[0]
		require.Equal(t, "pending", c.Status)
		require.NotNil(t, c.Amount)
		require.EqualValues(t, 5000, *c.Amount)
		require.Equal(t, payment.CancelIdempotencyKey(c.ID), c.IdempotencyKey)
		require.Equal(t, 1, b.countJobs(t, kindCancel, p.ID))

		var args paymentjob.CancelArgs
		require.NoError(t, b.pool.QueryRow(t.Context(),
			"SELECT args FROM river_job WHERE kind = $1", kindCancel).Scan(&args))
		require.Equal(t, paymentjob.CancelArgs{PaymentID: p.ID, CancelID: c.ID}, args)

		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"and the rest"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeCancelInProgress)
		require.Equal(t, 1, b.countJobs(t, kindCancel, p.ID))
		require.Equal(t, 1, b.countCancels(t, p.ID))
	})

	t.Run("OutboxFailureRollsBack", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-x-0005", 15000)
		b.confirmPayment(t, p.ID, "pk_x_0005", 15000)
		b.approve(t, p.ID)

		failing := b.with(func(cfg *Config) { cfg.Outbox = failingOutbox{} })
		rec := failing.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"refund"}`)
		requireProblem(t, rec, http.StatusInternalServerError, payment.CodeInternal)
		require.Equal(t, payment.StatusConfirmed, b.status(t, p.ID))
		require.Equal(t, 0, b.countCancels(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindCancel, p.ID))
	})

	t.Run("Rejects", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-x-0006", 15000)

		for name, body := range map[string]string{
			"NoReason":       `{}`,
			"BlankReason":    `{"reason":"  "}`,
			"LongReason":     `{"reason":"` + strings.Repeat("r", payment.ReasonMaxLen+1) + `"}`,
			"ZeroAmount":     `{"reason":"r","amount":0}`,
			"NegativeAmount": `{"reason":"r","amount":-1}`,
			"FloatAmount":    `{"reason":"r","amount":1.5}`,
			"NULInReason":    `{"reason":"r\u0000"}`,
			"BellInReason":   `{"reason":"r\u0007"}`,
		} {
			t.Run(name, func(t *testing.T) {
				rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", body)
				requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
			})
		}
		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"cancelReason":"gateway spelling"}`)
		requireProblem(t, rec, http.StatusBadRequest, codeUnknownField)
		rec = b.postJSON(t, "/v1/payments/"+uuid.NewString()+"/cancel", `{"reason":"r"}`)
		requireProblem(t, rec, http.StatusNotFound, payment.CodeNotFound)

		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countCancels(t, p.ID))
	})
}

func TestGetPayment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-g-0001", 15000)
	b.confirmPayment(t, p.ID, "pk_g_0001", 15000)

	// An attempt as the relay records it: started, then finished.
	requested := b.now.Add(time.Second)
	finished := requested.Add(1234567 * time.Microsecond)
	attemptID, err := b.store.StartAttempt(t.Context(), b.pool, payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationConfirm,
		IdempotencyKey: payment.ConfirmIdempotencyKey(p.ID, 1), JobID: 1, JobAttempt: 1, RequestedAt: requested,
	})
	require.NoError(t, err)
	require.NoError(t, b.store.FinishAttempt(t.Context(), b.pool, payment.Attempt{
		ID: attemptID, FinishedAt: &finished, Latency: finished.Sub(requested), HTTPStatus: 200,
		GatewayCode: "", Classification: "success",
	}))
	// And one still in flight.
	_, err = b.store.StartAttempt(t.Context(), b.pool, payment.Attempt{
		PaymentID: p.ID, Operation: payment.OperationLookup, RequestedAt: finished,
	})
	require.NoError(t, err)
	b.approve(t, p.ID)

	rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"refund"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())

	check := func(t *testing.T, got paymentResponse) {
		t.Helper()
		require.Equal(t, p.ID, got.ID)
		require.Equal(t, "canceling", got.Status)
		require.Equal(t, "pk_g_0001", got.PaymentKey)
		require.EqualValues(t, 15000, got.ApprovedAmount)
		require.EqualValues(t, 15000, got.BalanceAmount)
		require.Equal(t, "카드", got.Method)
		require.NotNil(t, got.ApprovedAt)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, "pending", got.Cancels[0].Status)

		require.Len(t, got.Attempts, 2)
		a := got.Attempts[0]
		require.Equal(t, "confirm", a.Operation)
		require.Equal(t, payment.ConfirmIdempotencyKey(p.ID, 1), a.IdempotencyKey)
		require.NotNil(t, a.HTTPStatus)
		require.Equal(t, 200, *a.HTTPStatus)
		require.Equal(t, "success", a.Classification)
		require.NotNil(t, a.LatencyMs)
		require.InDelta(t, 1234.567, *a.LatencyMs, 0.0001)
		require.True(t, requested.Equal(a.RequestedAt))
		require.NotNil(t, a.FinishedAt)

		inFlight := got.Attempts[1]
		require.Equal(t, "lookup", inFlight.Operation)
		require.Nil(t, inFlight.HTTPStatus)
		require.Nil(t, inFlight.LatencyMs)
		require.Nil(t, inFlight.FinishedAt)
	}

	t.Run("ByID", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		check(t, decode[paymentResponse](t, rec))
	})

	t.Run("ByOrderID", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/payments?orderId=order-g-0001", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		check(t, decode[paymentResponse](t, rec))
	})

	t.Run("WireShape", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/payments/"+p.ID, "")
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
		for _, k := range []string{
			"id", "orderId", "orderName", "amount", "currency", "status", "paymentKey", "approvedAmount",
			"balanceAmount", "canceledAmount", "method", "approvedAt", "createdAt", "updatedAt", "cancels", "attempts",
		} {
			require.Contains(t, m, k)
		}
		require.NotContains(t, m, "failure")
		attempt := m["attempts"].([]any)[0].(map[string]any)
		for _, k := range []string{
			"operation", "idempotencyKey", "httpStatus", "gatewayCode", "gatewayMessage", "classification",
			"latencyMs", "requestedAt", "finishedAt", "error",
		} {
			require.Contains(t, attempt, k)
		}
		require.True(t, strings.HasSuffix(m["createdAt"].(string), "Z"), "times are UTC")
	})

	t.Run("Rejects", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			path   string
			status int
			code   string
		}{
			{"/v1/payments", http.StatusBadRequest, payment.CodeInvalidRequest},
			{"/v1/payments?orderId=", http.StatusBadRequest, payment.CodeInvalidRequest},
			{"/v1/payments?orderId=abc", http.StatusBadRequest, payment.CodeInvalidRequest},
			{"/v1/payments?orderId=x%27%3B%20drop%20table%20payments%3B--", http.StatusBadRequest, payment.CodeInvalidRequest},
			{"/v1/payments?orderId=order-g-0001&orderId=order-g-0002", http.StatusBadRequest, payment.CodeInvalidRequest},
			{"/v1/payments?orderId=order-g-9999", http.StatusNotFound, payment.CodeNotFound},
			{"/v1/payments/" + uuid.NewString(), http.StatusNotFound, payment.CodeNotFound},
			{"/v1/payments/not-a-uuid", http.StatusNotFound, payment.CodeNotFound},
		} {
			rec := b.do(t, http.MethodGet, tt.path, "")
			requireProblem(t, rec, tt.status, tt.code)
		}
	})
}

func TestToPaymentResponseFailure(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("KST", 9*3600))
	got := toPaymentResponse(payment.Payment{
		ID: "p", Status: payment.StatusFailed, FailureCode: "REJECT_CARD_COMPANY", FailureMessage: "declined",
		CreatedAt: now, UpdatedAt: now,
	})
	require.Equal(t, &failureResponse{Code: "REJECT_CARD_COMPANY", Message: "declined"}, got.Failure)
	require.Equal(t, time.UTC, got.CreatedAt.Location())
	require.NotNil(t, got.Cancels)
	require.NotNil(t, got.Attempts)
}

func TestListAttention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	// Payments in every kind of state, last touched at known times.
	at := func(id string, status payment.Status, age time.Duration) {
		t.Helper()
		_, err := b.pool.Exec(ctx, "UPDATE payments SET status = $2, updated_at = $3 WHERE id = $1::uuid",
			id, string(status), b.now.Add(-age))
		require.NoError(t, err)
	}
	mk := func(orderID string, confirm bool) string {
		t.Helper()
		p := b.createPayment(t, orderID, 1000)
		if confirm {
			b.confirmPayment(t, p.ID, "pk_"+orderID, 1000)
		}
		return p.ID
	}
	confirming, unknown, canceling := mk("order-att-1", true), mk("order-att-2", true), mk("order-att-3", true)
	confirmed, ready := mk("order-att-4", true), mk("order-att-5", false)
	at(confirming, payment.StatusConfirming, 10*time.Minute)
	at(unknown, payment.StatusUnknown, 5*time.Minute)
	at(canceling, payment.StatusCanceling, 30*time.Second)
	at(confirmed, payment.StatusConfirmed, time.Hour)
	at(ready, payment.StatusReady, time.Hour)

	list := func(t *testing.T, query string) []string {
		t.Helper()
		rec := b.do(t, http.MethodGet, "/v1/payments/attention"+query, "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var ids []string
		for _, p := range decode[paymentListResponse](t, rec).Payments {
			ids = append(ids, p.ID)
		}
		return ids
	}
	for query, want := range map[string][]string{
		"":                {confirming, unknown},
		"?olderThan=0s":   {confirming, unknown, canceling},
		"?olderThan=6m":   {confirming},
		"?olderThan=2h":   nil,
		"?status=unknown": {unknown},
		"?status=canceling,confirming&olderThan=0": {confirming, canceling},
		"?status=unknown,%20unknown":               {unknown},
		"?limit=1":                                 {confirming},
		"?limit=1000&olderThan=1ms":                {confirming, unknown, canceling},
	} {
		t.Run("Query"+query, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, want, list(t, query))
		})
	}

	t.Run("WireShape", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/payments/attention?status=unknown", "")
		var m map[string][]map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
		require.Len(t, m["payments"], 1)
		got := m["payments"][0]
		for _, k := range []string{"id", "orderId", "amount", "status", "paymentKey", "confirmRequestedAt", "updatedAt"} {
			require.Contains(t, got, k)
		}
		require.NotContains(t, got, "attempts", "a list does not pretend to show history")
		require.Equal(t, "unknown", got["status"])
		// Nothing to list is an empty list, not null.
		rec = b.do(t, http.MethodGet, "/v1/payments/attention?olderThan=2h", "")
		require.JSONEq(t, `{"payments":[]}`, rec.Body.String())
	})

	t.Run("Rejects", func(t *testing.T) {
		t.Parallel()
		for _, query := range []string{
			"?status=ready", "?status=confirmed", "?status=unknown,failed", "?status=UNKNOWN", "?status=unknown&status=confirming",
			"?status=unknown,", "?olderThan=-1m", "?olderThan=5", "?olderThan=soon", "?olderThan=1m&olderThan=2m",
			"?limit=0", "?limit=1001", "?limit=-1", "?limit=ten", "?limit=1&limit=2", "?limit=1%27%3B--",
		} {
			rec := b.do(t, http.MethodGet, "/v1/payments/attention"+query, "")
			requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
		}
	})
}

// TestCancelHoles holds the cancel to the rules that keep it from being lost
// or run twice: each case was a way money went wrong.
func TestCancelHoles(t *testing.T) {
	t.Parallel()

	// force moves a payment the way the relay would, in its own transaction.
	force := func(t *testing.T, b *testBundle, id string, fn func(p *payment.Payment, tx pgx.Tx) error) {
		t.Helper()
		ctx := t.Context()
		require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			p, err := b.store.PaymentForUpdate(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := fn(&p, tx); err != nil {
				return err
			}
			return b.store.SavePayment(ctx, tx, &p)
		}))
	}

	t.Run("PartialWithoutIdempotencyKeyIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-h-0001", 15000)
		b.confirmPayment(t, p.ID, "pk_h_0001", 15000)
		b.approve(t, p.ID)

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"one bag back","amount":5000}`)
		requireProblem(t, rec, http.StatusBadRequest, codeIdempotencyKeyRequired)
		require.Equal(t, payment.StatusConfirmed, b.status(t, p.ID))
		require.Equal(t, 0, b.countCancels(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindCancel, p.ID))

		// A full cancel stays safe without one: its retry finds it.
		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"all back"}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		rec = b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"all back"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeCancelInProgress)
		require.Equal(t, 1, b.countCancels(t, p.ID))
	})

	t.Run("NullAmountIsNotAFullRefund", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-h-0002", 15000)
		b.confirmPayment(t, p.ID, "pk_h_0002", 15000)
		b.approve(t, p.ID)

		rec := b.postKeyed(t, "null-amount", "/v1/payments/"+p.ID+"/cancel", `{"reason":"r","amount":null}`)
		pr := requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
		require.Contains(t, pr.Detail, "not null")
		require.Equal(t, payment.StatusConfirmed, b.status(t, p.ID))
		require.Equal(t, 0, b.countCancels(t, p.ID))
	})

	t.Run("OnApprovedUnknownIsRefusedNotParked", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-h-0003", 15000)
		b.confirmPayment(t, p.ID, "pk_h_0003", 15000)
		b.approve(t, p.ID)
		// A cancel the relay gave up on: payment and cancel unknown.
		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"first"}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		first := decode[paymentResponse](t, rec).Cancels[0].ID
		force(t, b, p.ID, func(p *payment.Payment, tx pgx.Tx) error {
			c, err := b.store.CancelForUpdate(t.Context(), tx, first)
			if err != nil {
				return err
			}
			p.GiveUpCancel(&c, "no_answer", "retry budget spent")
			return b.store.SaveCancel(t.Context(), tx, &c)
		})

		// Before: stored "waiting" with no job, answered 202, run never.
		rec = b.postKeyed(t, "second", "/v1/payments/"+p.ID+"/cancel", `{"reason":"second","amount":1000}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodePaymentUnknown)
		require.Equal(t, 1, b.countCancels(t, p.ID))
		require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	})

	t.Run("OnUnapprovedUnknownWaitsForALookup", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-h-0004", 15000)
		b.confirmPayment(t, p.ID, "pk_h_0004", 15000)
		force(t, b, p.ID, func(p *payment.Payment, _ pgx.Tx) error {
			p.GiveUpConfirm("no_answer", "retry budget spent")
			return nil
		})

		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"changed my mind"}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		got := decode[paymentResponse](t, rec)
		require.Equal(t, "waiting", got.Cancels[0].Status)
		// Never parked: the lookup that settles the payment, and with it the
		// cancel, is in the outbox with it.
		require.Equal(t, 1, b.countJobs(t, kindLookup, p.ID))
	})
}
