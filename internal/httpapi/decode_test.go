package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

func TestParseAmount(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		raw   string
		value int64
		set   bool
		ok    bool
	}{
		{raw: `15000`, value: 15000, set: true, ok: true},
		{raw: `-1`, value: -1, set: true, ok: true}, // the domain refuses it, with its own message
		{raw: `0`, value: 0, set: true, ok: true},
		{raw: `9223372036854775807`, value: 9223372036854775807, set: true, ok: true},
		{raw: `null`}, // not "absent": on a cancel that would mean "everything"
		{raw: `9223372036854775808`},
		{raw: `-9223372036854775809`},
		{raw: `1.5`},
		{raw: `1.0`},
		{raw: `1e3`},
		{raw: `1E3`},
		{raw: `"100"`},
		{raw: `true`},
		{raw: `[]`},
		{raw: `{}`},
		{raw: ``},
	} {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			value, set, err := parseAmount([]byte(tt.raw))
			if !tt.ok {
				var ae *amountError
				require.ErrorAs(t, err, &ae)
				require.Contains(t, ae.msg, "amount")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.value, value)
			require.Equal(t, tt.set, set)
		})
	}
}

func TestCheckContentType(t *testing.T) {
	t.Parallel()

	for header, ok := range map[string]bool{
		"application/json":                 true,
		"application/json; charset=utf-8":  true,
		"Application/JSON; charset=UTF-8":  true,
		"":                                 false,
		"text/json":                        false,
		"application/json-patch+json":      false,
		"application/problem+json":         false,
		"application/json; charset=utf-16": false,
		"application/json; charset":        false,
		"multipart/form-data; boundary=x":  false,
	} {
		err := checkContentType(header)
		if ok {
			require.NoError(t, err, header)
			continue
		}
		var pe *problemError
		require.ErrorAs(t, err, &pe, header)
		require.Equal(t, http.StatusUnsupportedMediaType, pe.status)
		require.Equal(t, codeUnsupportedMediaType, pe.code)
	}
}

func TestStatusOf(t *testing.T) {
	t.Parallel()

	require.Equal(t, http.StatusBadRequest, statusOf(payment.KindInvalid))
	require.Equal(t, http.StatusNotFound, statusOf(payment.KindNotFound))
	require.Equal(t, http.StatusConflict, statusOf(payment.KindConflict))
	require.Equal(t, http.StatusUnprocessableEntity, statusOf(payment.KindUnprocessable))
	require.Equal(t, http.StatusInternalServerError, statusOf(payment.KindInternal))
	require.Equal(t, http.StatusInternalServerError, statusOf("something new"))
}

func TestToProblemHidesInternalErrors(t *testing.T) {
	t.Parallel()

	p, ok := toProblem(errors.New("dial tcp 10.0.0.7:5432: connection refused"), "/v1/payments")
	require.False(t, ok)
	require.Equal(t, http.StatusInternalServerError, p.Status)
	require.Equal(t, payment.CodeInternal, p.Code)
	require.NotContains(t, p.Detail, "10.0.0.7")

	// A domain error that says it is internal is treated the same way.
	p, ok = toProblem(payment.Errorf(payment.KindInternal, "db_down", "host 10.0.0.7 is down"), "/x")
	require.False(t, ok)
	require.Equal(t, payment.CodeInternal, p.Code)
	require.NotContains(t, p.Detail, "10.0.0.7")
}

// FuzzDecodeCreate holds the create body decoder to its promises whatever
// arrives: it never panics, it fails only with a 400 problem carrying one of
// the input codes, and what it accepts is exactly one JSON object with known
// members whose amount, when present, was written as a JSON integer.
func FuzzDecodeCreate(f *testing.F) {
	for _, seed := range []string{
		`{"orderId":"order-0001","amount":15000,"orderName":"Blue shirt"}`,
		`{"orderId":"order-0001","amount":15000,"orderName":"Blue shirt","currency":"KRW"}`,
		`{"orderId":"order-0001","amount":1.5,"orderName":"Blue shirt"}`,
		`{"orderId":"order-0001","amount":"15000","orderName":"Blue shirt"}`,
		`{"orderId":"order-0001","amount":1e3,"orderName":"Blue shirt"}`,
		`{"orderId":"order-0001","amount":-0,"orderName":"x"}`,
		`{"orderId":"order-0001","amount":99999999999999999999,"orderName":"x"}`,
		`{"orderId":"order-0001","amount":9007199254740992,"orderName":"x"}`,
		`{"orderId":"order-0001","amount":1,"orderName":"evil\u202Etxt.exe"}`,
		`{"orderId":"order-0001","amount":1,"orderName":"zero\u200Bwidth"}`,
		`{"orderId":"order-0001","amount":1,"amount":2,"orderName":"x"}`,
		`{"orderId":"order-0001","AMOUNT":1,"orderName":"x"}`,
		`{"orderId":"x'; drop table payments;--","amount":1,"orderName":"x"}`,
		`{"orderId":"주문-123456","amount":1,"orderName":"상품"}`,
		`{"orderId":"order-0001","amount":1,"orderName":"x"} trailing`,
		`{"orderId":"order-0001","amount":1,"orderName":"x"}{}`,
		`{"orderId":null,"amount":null,"orderName":null,"currency":null}`,
		`{"orderId":1,"amount":1,"orderName":[]}`,
		`{"extra":{"nested":[1,2,{"deep":true}]}}`,
		`[]`, `null`, `""`, `0`, ``, `{`, `}`, `{}`, "\xff", "{\"orderName\":\"\xed\xa0\x80\"}",
	} {
		f.Add([]byte(seed))
	}
	allowed := jsonFieldNames(&createPaymentRequest{})

	f.Fuzz(func(t *testing.T, body []byte) {
		var req createPaymentRequest
		err := decodeJSON(body, &req)
		if err != nil {
			var pe *problemError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, http.StatusBadRequest, pe.status)
			require.Contains(t, []string{codeInvalidJSON, codeUnknownField, payment.CodeInvalidRequest}, pe.code)
			require.NotEmpty(t, pe.detail)
			return
		}

		require.True(t, json.Valid(body), "accepted invalid JSON %q", body)
		var members map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &members), "accepted a non-object %q", body)
		for name := range members {
			require.True(t, allowed[name], "accepted unknown member %q", name)
		}
		if req.Amount.set {
			raw := bytes.TrimSpace(members["amount"])
			require.NotContains(t, string(raw), ".")
			require.NotContains(t, string(raw), "e")
			require.NotContains(t, string(raw), "E")
			v, err := strconv.ParseInt(string(raw), 10, 64)
			require.NoError(t, err)
			require.Equal(t, v, req.Amount.value)
		}

		// Whatever the domain thinks of the values, it says so as a 400.
		in, err := req.toIntent(payment.GatewayToss, payment.MaxAmount)
		if err != nil {
			require.Equal(t, payment.KindInvalid, payment.ErrorOf(err).Kind)
			return
		}
		require.LessOrEqual(t, in.Amount, payment.MaxAmount)
		require.False(t, strings.ContainsFunc(in.OrderName, func(r rune) bool { return unicode.Is(unicode.Cf, r) }),
			"accepted an orderName with a format character: %q", in.OrderName)
	})
}

// requireDecodeContract checks what every request decoder promises, given
// its result err for body: a refusal is a 400 problem with an input code;
// an acceptance is exactly one JSON object with only allowed members. It
// returns the accepted members, or nil after a refusal.
func requireDecodeContract(t *testing.T, body []byte, err error, allowed map[string]bool) map[string]json.RawMessage {
	t.Helper()
	if err != nil {
		var pe *problemError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, http.StatusBadRequest, pe.status)
		require.Contains(t, []string{codeInvalidJSON, codeUnknownField, payment.CodeInvalidRequest}, pe.code)
		require.NotEmpty(t, pe.detail)
		return nil
	}
	require.True(t, json.Valid(body), "accepted invalid JSON %q", body)
	var members map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &members), "accepted a non-object %q", body)
	require.NotNil(t, members, "accepted a non-object %q", body)
	for name := range members {
		require.True(t, allowed[name], "accepted unknown member %q", name)
	}
	return members
}

// requireIntegerAmount checks that an accepted amount was written as a JSON
// integer with exactly the decoded value.
func requireIntegerAmount(t *testing.T, members map[string]json.RawMessage, a amount) {
	t.Helper()
	if !a.set {
		return
	}
	raw := string(bytes.TrimSpace(members["amount"]))
	require.NotContains(t, raw, ".")
	require.NotContains(t, raw, "e")
	require.NotContains(t, raw, "E")
	v, err := strconv.ParseInt(raw, 10, 64)
	require.NoError(t, err)
	require.Equal(t, v, a.value)
}

// FuzzDecodeConfirm holds the confirm body decoder and its validation to
// the contract of FuzzDecodeCreate; whatever passes validation has a usable
// paymentKey and a positive amount.
func FuzzDecodeConfirm(f *testing.F) {
	for _, seed := range []string{
		`{"paymentKey":"tgen_20261121abcdEFGH","amount":15000}`,
		`{"paymentKey":"pk","amount":15000,"amount":1}`,
		`{"paymentKey":"pk","Amount":1}`,
		`{"paymentKey":"pk/../x","amount":1}`,
		`{"paymentKey":"pk","amount":-9223372036854775808}`,
		`{"paymentKey":"pk","amount":1e2}`,
		`{"paymentKey":null,"amount":null}`,
		`{"paymentKey":"\u0000","amount":1}`,
		`{}`, `[]`, `null`, ``, "\xff",
	} {
		f.Add([]byte(seed))
	}
	allowed := jsonFieldNames(&confirmPaymentRequest{})
	f.Fuzz(func(t *testing.T, body []byte) {
		var req confirmPaymentRequest
		members := requireDecodeContract(t, body, decodeJSON(body, &req), allowed)
		if members == nil {
			return
		}
		requireIntegerAmount(t, members, req.Amount)
		if err := req.validate(); err != nil {
			require.Equal(t, payment.KindInvalid, payment.ErrorOf(err).Kind)
			return
		}
		require.Positive(t, req.Amount.value)
		require.NoError(t, payment.ValidatePaymentKey(req.PaymentKey))
		require.NotContains(t, req.PaymentKey, "/")
	})
}

// FuzzDecodeCancel holds the cancel body decoder and its validation to the
// contract of FuzzDecodeCreate; whatever passes validation has a reason and
// either no amount or a positive one.
func FuzzDecodeCancel(f *testing.F) {
	for _, seed := range []string{
		`{"reason":"customer asked","amount":5000}`,
		`{"reason":"고객 변심"}`,
		`{"reason":"r","amount":0}`,
		`{"reason":"r","amount":null}`,
		`{"reason":"line\nbreak\ttab"}`,
		`{"reason":"\u0007"}`,
		`{"reason":"r\ufeff"}`,
		`{"reason":"r","amount":9007199254740992}`,
		`{"reason":"r","cancelAmount":1}`,
		`{"reason":["r"]}`,
		`{}`, `[]`, `null`, ``, "\xff",
	} {
		f.Add([]byte(seed))
	}
	allowed := jsonFieldNames(&cancelPaymentRequest{})
	f.Fuzz(func(t *testing.T, body []byte) {
		var req cancelPaymentRequest
		members := requireDecodeContract(t, body, decodeJSON(body, &req), allowed)
		if members == nil {
			return
		}
		requireIntegerAmount(t, members, req.Amount)
		if err := req.validate(payment.MaxAmount); err != nil {
			require.Equal(t, payment.KindInvalid, payment.ErrorOf(err).Kind)
			return
		}
		require.NotEmpty(t, strings.TrimSpace(req.Reason))
		require.False(t, strings.ContainsFunc(req.Reason, func(r rune) bool { return unicode.Is(unicode.Cf, r) }),
			"accepted a reason with a format character: %q", req.Reason)
		if req.Amount.set {
			require.Positive(t, req.Amount.value)
			require.LessOrEqual(t, req.Amount.value, payment.MaxAmount)
		}
	})
}
