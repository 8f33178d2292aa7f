package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// TestConfirmCancelBadInput sends confirm and cancel the bodies and headers
// a careless or hostile client would: each gets a clear 4xx, and no payment,
// cancel or job changes.
func TestConfirmCancelBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ready := b.createPayment(t, "order-bad-1", 15000)
	confirmed := b.createPayment(t, "order-bad-2", 15000)
	b.confirmPayment(t, confirmed.ID, "pk_bad_2", 15000)
	b.approve(t, confirmed.ID)

	huge := "1" + strings.Repeat("0", 400)
	oversized := strings.Repeat("x", int(DefaultBodyLimit))
	tests := []struct {
		name        string
		path        string
		body        string
		contentType string // "" for application/json, "-" for none
		status      int
		code        string
	}{
		// Transport.
		{"ConfirmNoContentType", "confirm", `{"paymentKey":"pk_x","amount":15000}`, "-", http.StatusUnsupportedMediaType, codeUnsupportedMediaType},
		{"ConfirmTextPlain", "confirm", `{"paymentKey":"pk_x","amount":15000}`, "text/plain", http.StatusUnsupportedMediaType, codeUnsupportedMediaType},
		{"ConfirmForm", "confirm", `paymentKey=pk_x&amount=15000`, "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType, codeUnsupportedMediaType},
		{"CancelLatin1", "cancel", `{"reason":"r"}`, "application/json; charset=latin1", http.StatusUnsupportedMediaType, codeUnsupportedMediaType},
		{"CancelMultipart", "cancel", `{"reason":"r"}`, "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType, codeUnsupportedMediaType},
		{"ConfirmOversized", "confirm", `{"paymentKey":"` + oversized + `","amount":15000}`, "", http.StatusRequestEntityTooLarge, codeBodyTooLarge},
		{"CancelOversized", "cancel", `{"reason":"` + oversized + `"}`, "", http.StatusRequestEntityTooLarge, codeBodyTooLarge},

		// Amounts.
		{"ConfirmHugeAmount", "confirm", `{"paymentKey":"pk_x","amount":` + huge + `}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmInt64Overflow", "confirm", `{"paymentKey":"pk_x","amount":9223372036854775808}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmMaxInt64", "confirm", `{"paymentKey":"pk_x","amount":9223372036854775807}`, "", http.StatusUnprocessableEntity, payment.CodeAmountMismatch},
		{"ConfirmNegative", "confirm", `{"paymentKey":"pk_x","amount":-15000}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmMinInt64", "confirm", `{"paymentKey":"pk_x","amount":-9223372036854775808}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmExponent", "confirm", `{"paymentKey":"pk_x","amount":1.5e4}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"CancelHugeAmount", "cancel", `{"reason":"r","amount":` + huge + `}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"CancelNegative", "cancel", `{"reason":"r","amount":-1}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"CancelMaxInt64", "cancel", `{"reason":"r","amount":9223372036854775807}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"CancelAmountString", "cancel", `{"reason":"r","amount":"500"}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},

		// Strings.
		{"ConfirmUnicodeKey", "confirm", `{"paymentKey":"결제키_1234","amount":15000}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmSQLKeyWithSpace", "confirm", `{"paymentKey":"x' OR '1'='1","amount":15000}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmPercentKey", "confirm", `{"paymentKey":"pk%2F..","amount":15000}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmNULKey", "confirm", `{"paymentKey":"pk\u0000","amount":15000}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"ConfirmInvalidUTF8", "confirm", "{\"paymentKey\":\"pk_\xff\",\"amount\":15000}", "", http.StatusBadRequest, codeInvalidJSON},
		{"CancelNULReason", "cancel", `{"reason":"refund\u0000; DROP TABLE payments"}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"CancelLongUnicodeReason", "cancel", `{"reason":"` + strings.Repeat("환", payment.ReasonMaxLen+1) + `"}`, "", http.StatusBadRequest, payment.CodeInvalidRequest},
		{"CancelDuplicateAmount", "cancel", `{"reason":"r","amount":1,"amount":15000}`, "", http.StatusBadRequest, codeInvalidJSON},
		{"CancelGatewaySpelling", "cancel", `{"cancelReason":"r","cancelAmount":1}`, "", http.StatusBadRequest, codeUnknownField},
		{"ConfirmCaseVariant", "confirm", `{"PaymentKey":"pk_x","amount":15000}`, "", http.StatusBadRequest, codeUnknownField},
	}
	t.Run("Cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				id := ready.ID
				if tt.path == "cancel" {
					id = confirmed.ID
				}
				var headers []string
				switch tt.contentType {
				case "":
					headers = []string{"Content-Type", "application/json"}
				case "-":
				default:
					headers = []string{"Content-Type", tt.contentType}
				}
				if tt.path == "cancel" {
					// A partial cancel needs one; the case is about its body.
					headers = append(headers, "Idempotency-Key", "bad-input-"+tt.name)
				}
				rec := b.do(t, http.MethodPost, "/v1/payments/"+id+"/"+tt.path, tt.body, headers...)
				requireProblem(t, rec, tt.status, tt.code)
			})
		}
	})

	require.Equal(t, payment.StatusReady, b.status(t, ready.ID))
	require.Equal(t, 0, b.countJobs(t, kindConfirm, ready.ID))
	require.Equal(t, payment.StatusConfirmed, b.status(t, confirmed.ID))
	require.Equal(t, 0, b.countCancels(t, confirmed.ID))
	require.Equal(t, 0, b.countJobs(t, kindCancel, confirmed.ID))
	require.Equal(t, 2, b.countPayments(t))
}

// TestSQLLookingStringsAreData shows that text which looks like SQL, where
// our rules allow its characters at all, is stored and returned verbatim.
func TestSQLLookingStringsAreData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const name = `Robert'); DROP TABLE payments;--`
	rec := b.postJSON(t, "/v1/payments", `{"orderId":"order-sql-1","amount":100,"orderName":"`+name+`"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	p := decode[paymentResponse](t, rec)
	require.Equal(t, name, p.OrderName)

	const key = `pk';DELETE_FROM_payments;--`
	rec = b.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"`+key+`","amount":100}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Equal(t, key, decode[paymentResponse](t, rec).PaymentKey)

	const reason = `'; UPDATE payments SET amount = 0; --`
	rec = b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"`+reason+`"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Equal(t, reason, decode[paymentResponse](t, rec).Cancels[0].Reason)

	got := decode[paymentResponse](t, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, ""))
	require.EqualValues(t, 100, got.Amount)
	require.Equal(t, 1, b.countPayments(t))
}

// TestConcurrentSubmissions races N identical requests of each kind, with
// and without an Idempotency-Key: each gets the first answer, an idempotent
// repeat of it or a clear 409, and exactly one row and one job result.
func TestConcurrentSubmissions(t *testing.T) {
	t.Parallel()
	const n = 10

	// race sends n copies of a request at once and returns the answers.
	race := func(b *testBundle, path, body string, headers ...string) []*httptest.ResponseRecorder {
		recs := make([]*httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				recs[i] = b.do(t, http.MethodPost, path, body, append([]string{"Content-Type", "application/json"}, headers...)...)
			})
		}
		wg.Wait()
		return recs
	}
	// codes tallies answers as "status" or "status replayed" or the
	// problem code.
	codes := func(t *testing.T, recs []*httptest.ResponseRecorder) map[string]int {
		out := map[string]int{}
		for _, rec := range recs {
			k := fmt.Sprint(rec.Code)
			if rec.Header().Get("Idempotent-Replayed") == "true" {
				k += " replayed"
			} else if rec.Code >= 400 {
				k += " " + requireProblem(t, rec, rec.Code, decode[problem](t, rec).Code).Code
			}
			out[k]++
		}
		return out
	}

	for _, keyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("Keyed=%t", keyed), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var headers []string
			if keyed {
				headers = []string{"Idempotency-Key", "same-request"}
			}
			suffix := fmt.Sprintf("%t", keyed)

			recs := race(b, "/v1/payments", `{"orderId":"order-race-`+suffix+`","amount":15000,"orderName":"x"}`,
				headersFor(headers, "create")...)
			got := codes(t, recs)
			require.Equal(t, 1, got["201"], got)
			require.Equal(t, 1, b.countPayments(t))
			var p paymentResponse
			for _, rec := range recs {
				if rec.Code == http.StatusCreated {
					p = decode[paymentResponse](t, rec)
				}
			}

			got = codes(t, race(b, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"pk_race_`+suffix+`","amount":15000}`,
				headersFor(headers, "confirm")...))
			require.Equal(t, n, got["202"]+got["202 replayed"]+got["409 "+codeIdempotencyInProgress], got)
			require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))

			b.approve(t, p.ID)
			// A partial cancel needs a key, so the unkeyed race is of full
			// cancels: the one call that is safe to retry without one.
			cancelBody := `{"reason":"refund"}`
			if keyed {
				cancelBody = `{"reason":"refund","amount":5000}`
			}
			got = codes(t, race(b, "/v1/payments/"+p.ID+"/cancel", cancelBody, headersFor(headers, "cancel")...))
			require.Equal(t, 1, got["202"], got)
			if keyed {
				require.Equal(t, n, got["202"]+got["202 replayed"]+got["409 "+codeIdempotencyInProgress], got)
			} else {
				// Without a key the second cancel is a second request, refused
				// while the first is in progress.
				require.Equal(t, n-1, got["409 "+payment.CodeCancelInProgress], got)
			}
			require.Equal(t, 1, b.countCancels(t, p.ID))
			require.Equal(t, 1, b.countJobs(t, kindCancel, p.ID))
		})
	}
}

// headersFor scopes an Idempotency-Key header pair to one operation, so the
// create, confirm and cancel of one test do not share a key.
func headersFor(headers []string, op string) []string {
	if len(headers) == 0 {
		return nil
	}
	return []string{headers[0], headers[1] + "-" + op}
}
