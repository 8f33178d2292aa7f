package toss

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

// samplePaymentKey and sampleOrderID are the payment the sample bodies
// below describe.
const (
	samplePaymentKey = "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1"
	sampleOrderID    = "a4CWyWY5m89PNh7xJwhk1"
)

// samplePaymentDone is a card payment as the gateway returns it from a
// confirm (API version 2022-11-16), with the nested objects we ignore.
const samplePaymentDone = `{
  "mId": "tosspayments",
  "lastTransactionKey": "9C62B18EEF0DE3EB7F4422EB6D14BC6E",
  "paymentKey": "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1",
  "orderId": "a4CWyWY5m89PNh7xJwhk1",
  "orderName": "토스 티셔츠 외 2건",
  "taxExemptionAmount": 0,
  "status": "DONE",
  "requestedAt": "2024-02-13T12:17:57+09:00",
  "approvedAt": "2024-02-13T12:18:14+09:00",
  "useEscrow": false,
  "cultureExpense": false,
  "card": {
    "issuerCode": "71",
    "acquirerCode": "71",
    "number": "12345678****000*",
    "installmentPlanMonths": 0,
    "isInterestFree": false,
    "interestPayer": null,
    "approveNo": "00000000",
    "useCardPoint": false,
    "cardType": "신용",
    "ownerType": "개인",
    "acquireStatus": "READY",
    "amount": 15000
  },
  "virtualAccount": null,
  "transfer": null,
  "mobilePhone": null,
  "giftCertificate": null,
  "cashReceipt": null,
  "cashReceipts": null,
  "discount": null,
  "cancels": null,
  "secret": null,
  "type": "NORMAL",
  "easyPay": {"provider": "토스페이", "amount": 0, "discountAmount": 0},
  "country": "KR",
  "failure": null,
  "isPartialCancelable": true,
  "receipt": {"url": "https://dashboard.tosspayments.com/receipt/redirection?transactionId=tviva20240213121757MvuS8&ref=PX"},
  "checkout": {"url": "https://api.tosspayments.com/v1/payments/5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1/checkout"},
  "currency": "KRW",
  "totalAmount": 15000,
  "balanceAmount": 15000,
  "suppliedAmount": 13636,
  "vat": 1364,
  "taxFreeAmount": 0,
  "metadata": null,
  "method": "카드",
  "version": "2022-11-16"
}`

// samplePaymentPartialCanceled is the answer to a partial cancel: a new
// cancels[] entry and a reduced balance.
const samplePaymentPartialCanceled = `{
  "mId": "tosspayments",
  "lastTransactionKey": "090A796806E726BBB929F4A2CA7DB9A7",
  "paymentKey": "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1",
  "orderId": "a4CWyWY5m89PNh7xJwhk1",
  "orderName": "토스 티셔츠 외 2건",
  "status": "PARTIAL_CANCELED",
  "requestedAt": "2024-02-13T12:17:57+09:00",
  "approvedAt": "2024-02-13T12:18:14+09:00",
  "card": {"issuerCode": "71", "number": "12345678****000*", "amount": 15000},
  "cancels": [
    {
      "transactionKey": "090A796806E726BBB929F4A2CA7DB9A7",
      "cancelReason": "고객 변심",
      "taxExemptionAmount": 0,
      "canceledAt": "2024-02-13T12:20:23.123+09:00",
      "transferDiscountAmount": 0,
      "easyPayDiscountAmount": 0,
      "receiptKey": null,
      "cancelAmount": 300,
      "taxFreeAmount": 0,
      "refundableAmount": 14700,
      "cancelStatus": "DONE",
      "cancelRequestId": null
    }
  ],
  "receipt": {"url": "https://dashboard.tosspayments.com/receipt/redirection?transactionId=tviva20240213121757MvuS8&ref=PX"},
  "currency": "KRW",
  "totalAmount": 15000,
  "balanceAmount": 14700,
  "method": "카드",
  "version": "2022-11-16"
}`

// samplePaymentReady is a payment the customer authenticated but nobody
// confirmed: method and approvedAt are null.
const samplePaymentReady = `{
  "paymentKey": "tgen_20240213121757abcd",
  "orderId": "order_ready_1",
  "orderName": "one shirt",
  "status": "READY",
  "method": null,
  "requestedAt": "2024-02-13T12:17:57+09:00",
  "approvedAt": null,
  "card": null,
  "cancels": null,
  "currency": "KRW",
  "totalAmount": 1000,
  "balanceAmount": 1000
}`

func TestParsePayment(t *testing.T) {
	t.Parallel()

	t.Run("Done", func(t *testing.T) {
		t.Parallel()
		p, err := parsePayment([]byte(samplePaymentDone))
		require.NoError(t, err)
		require.Equal(t, &gateway.Payment{
			PaymentKey:         "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1",
			OrderID:            "a4CWyWY5m89PNh7xJwhk1",
			OrderName:          "토스 티셔츠 외 2건",
			Status:             StatusDone,
			Phase:              gateway.PhaseCharged,
			Method:             "카드",
			Currency:           "KRW",
			LastTransactionKey: "9C62B18EEF0DE3EB7F4422EB6D14BC6E",
			TotalAmount:        15000,
			BalanceAmount:      15000,
			RequestedAt:        time.Date(2024, 2, 13, 12, 17, 57, 0, kst),
			ApprovedAt:         time.Date(2024, 2, 13, 12, 18, 14, 0, kst),
		}, normalizeTimes(p))
		_, offset := p.ApprovedAt.Zone()
		require.Equal(t, 9*60*60, offset, "the gateway's offset is kept")
		require.True(t, p.ApprovedAt.Equal(time.Date(2024, 2, 13, 3, 18, 14, 0, time.UTC)))
	})

	t.Run("PartialCanceled", func(t *testing.T) {
		t.Parallel()
		p, err := parsePayment([]byte(samplePaymentPartialCanceled))
		require.NoError(t, err)
		require.Equal(t, StatusPartialCanceled, p.Status)
		require.Equal(t, int64(15000), p.TotalAmount)
		require.Equal(t, int64(14700), p.BalanceAmount)
		require.Equal(t, "090A796806E726BBB929F4A2CA7DB9A7", p.LastTransactionKey)
		require.Equal(t, []gateway.Cancel{{
			TransactionKey:   "090A796806E726BBB929F4A2CA7DB9A7",
			CancelReason:     "고객 변심",
			CancelStatus:     "DONE",
			CancelAmount:     300,
			RefundableAmount: 14700,
			CanceledAt:       time.Date(2024, 2, 13, 12, 20, 23, 123_000_000, kst),
		}}, normalizeTimes(p).Cancels)
	})

	t.Run("ReadyWithNulls", func(t *testing.T) {
		t.Parallel()
		p, err := parsePayment([]byte(samplePaymentReady))
		require.NoError(t, err)
		require.Equal(t, StatusReady, p.Status)
		require.Equal(t, gateway.PhaseOpen, p.Phase)
		require.Empty(t, p.Method)
		require.True(t, p.ApprovedAt.IsZero())
		require.False(t, p.RequestedAt.IsZero())
		require.Nil(t, p.Cancels)
	})

	t.Run("MovedMoneyNeedsAmounts", func(t *testing.T) {
		t.Parallel()
		for _, status := range []string{StatusDone, StatusCanceled, StatusPartialCanceled} {
			for name, amounts := range map[string]string{
				"NoTotal":       `"balanceAmount":100`,
				"NullTotal":     `"totalAmount":null,"balanceAmount":100`,
				"NoBalance":     `"totalAmount":100`,
				"NullBalance":   `"totalAmount":100,"balanceAmount":null`,
				"Neither":       `"orderId":"order_1"`,
				"BothNull":      `"totalAmount":null,"balanceAmount":null`,
				"StringBalance": `"totalAmount":100,"balanceAmount":"0"`,
			} {
				body := `{"paymentKey":"pk","status":"` + status + `",` + amounts + `}`
				p, err := parsePayment([]byte(body))
				require.Error(t, err, body)
				require.Nil(t, p, body)
				if name != "StringBalance" {
					require.ErrorIs(t, err, errMissingAmount, body)
				}
			}
		}
	})

	t.Run("ZeroAmountIsAnAmount", func(t *testing.T) {
		t.Parallel()
		p, err := parsePayment([]byte(`{"paymentKey":"pk","status":"CANCELED","totalAmount":100,"balanceAmount":0}`))
		require.NoError(t, err)
		require.Equal(t, int64(100), p.TotalAmount)
		require.Zero(t, p.BalanceAmount)
	})

	t.Run("NoMoneyMovedNeedsNoAmounts", func(t *testing.T) {
		t.Parallel()
		// No money moved in these statuses and the relay decides from the
		// status alone, so missing amounts must not make a lookup unusable.
		for _, status := range []string{StatusReady, StatusInProgress, StatusWaitingForDeposit, StatusAborted, StatusExpired} {
			for _, amounts := range []string{`"orderId":"order_1"`, `"totalAmount":null,"balanceAmount":null`} {
				body := `{"paymentKey":"pk","status":"` + status + `",` + amounts + `}`
				p, err := parsePayment([]byte(body))
				require.NoError(t, err, body)
				require.Equal(t, status, p.Status)
				require.Zero(t, p.TotalAmount)
				require.Zero(t, p.BalanceAmount)
				require.Equal(t, gateway.ClassUnclear, Classify(gateway.Result{HTTPStatus: 200, Payment: p}), body)
			}
		}
	})

	// Every Toss status has its phase: the relay settles from the phase.
	t.Run("Phases", func(t *testing.T) {
		t.Parallel()
		for status, want := range map[string]gateway.Phase{
			StatusReady: gateway.PhaseOpen, StatusInProgress: gateway.PhaseOpen, StatusWaitingForDeposit: gateway.PhaseWaiting,
			StatusDone: gateway.PhaseCharged, StatusCanceled: gateway.PhaseCharged, StatusPartialCanceled: gateway.PhaseCharged,
			StatusAborted: gateway.PhaseFailed, StatusExpired: gateway.PhaseExpired, "SOMETHING_NEW": gateway.PhaseUnknown,
		} {
			body := `{"paymentKey":"pk","status":"` + status + `","totalAmount":100,"balanceAmount":100}`
			p, err := parsePayment([]byte(body))
			require.NoError(t, err, body)
			require.Equal(t, want, p.Phase, status)
		}
	})

	t.Run("Unusable", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{
			``, `null`, `[]`, `"DONE"`, `{}`, `<html></html>`,
			`{"paymentKey":"pk"}`,
			`{"status":"DONE"}`,
			`{"paymentKey":"pk","status":7}`,
			`{"paymentKey":"pk","status":"DONE","cancels":{}}`,
		} {
			_, err := parsePayment([]byte(body))
			require.Error(t, err, body)
		}
	})
}

// normalizeTimes replaces every time's location by kst (same instant), so
// that require.Equal compares instants rather than *time.Location pointers.
func normalizeTimes(p *gateway.Payment) *gateway.Payment {
	q := *p
	q.RequestedAt = inKST(q.RequestedAt)
	q.ApprovedAt = inKST(q.ApprovedAt)
	q.Cancels = append([]gateway.Cancel(nil), p.Cancels...)
	for i := range q.Cancels {
		q.Cancels[i].CanceledAt = inKST(q.Cancels[i].CanceledAt)
	}
	return &q
}

func inKST(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(kst)
}

func TestParseTime(t *testing.T) {
	t.Parallel()

	want := time.Date(2024, 2, 13, 12, 18, 14, 0, kst)
	wantFrac := time.Date(2024, 2, 13, 12, 18, 14, 500_000_000, kst)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{`"2024-02-13T12:18:14+09:00"`, want},
		{`"2024-02-13T12:18:14.5+09:00"`, wantFrac},
		{`"2024-02-13T03:18:14Z"`, want},
		{`"2024-02-13T03:18:14.500000Z"`, wantFrac},
		{`"2024-02-13T12:18:14+0900"`, want},
		{`"2024-02-13T12:18:14"`, want},         // no offset: the gateway's +09:00
		{`"2024-02-13T12:18:14.500"`, wantFrac}, // no offset, fractional
		{`"2024-02-13 12:18:14+09:00"`, want},
		{`" 2024-02-13T12:18:14+09:00 "`, want},
		{`null`, time.Time{}},
		{`""`, time.Time{}},
		{`"yesterday"`, time.Time{}},
		{`"2024-13-45T99:99:99+09:00"`, time.Time{}},
		{`1707794294`, time.Time{}},
		{`{"a":1}`, time.Time{}},
	} {
		got := parseTime([]byte(tt.in))
		require.True(t, tt.want.Equal(got), "%s: got %s", tt.in, got)
		require.Equal(t, tt.want.IsZero(), got.IsZero(), tt.in)
	}
}

func TestParseAmount(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{`15000`, 15000, false},
		{`0`, 0, false},
		{`null`, 0, false},
		{`15000.0`, 15000, false},
		{`1.5e4`, 15000, false},
		{`9007199254740992`, 1 << 53, false},
		{`9223372036854775807`, 1<<63 - 1, false},
		{`15000.5`, 0, true},
		{`1e300`, 0, true},
		{`"15000"`, 0, true},
		{`true`, 0, true},
	} {
		var a wireAmount
		err := a.UnmarshalJSON([]byte(tt.in))
		if tt.wantErr {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, int64(a), tt.in)
	}
}

func FuzzParsePayment(f *testing.F) {
	for _, seed := range []string{
		samplePaymentDone,
		samplePaymentPartialCanceled,
		samplePaymentReady,
		`{}`,
		`null`,
		`{"paymentKey":"pk","status":"DONE","totalAmount":1e3,"balanceAmount":1000,"approvedAt":"2024-02-13T12:18:14"}`,
		`{"paymentKey":"pk","status":"PARTIAL_CANCELED","totalAmount":2,"balanceAmount":1,"cancels":[{"cancelAmount":-1,"canceledAt":7}]}`,
		`{"paymentKey":"pk","status":"DONE","totalAmount":1000,"balanceAmount":null}`,
		`{"paymentKey":"pk","status":"CANCELED","balanceAmount":0}`,
		`{"paymentKey":"pk","status":"EXPIRED","totalAmount":null}`,
		`{"code":"REJECT_CARD_COMPANY","message":"m"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePayment(body)
		if err != nil {
			require.Nil(t, p)
			return
		}
		// Whatever parses must be something Classify can act on.
		require.NotEmpty(t, p.PaymentKey)
		require.NotEmpty(t, p.Status)
		c := Classify(gateway.Result{Payment: p, HTTPStatus: 200})
		require.Contains(t, []gateway.Class{gateway.ClassSuccess, gateway.ClassUnclear}, c)
		// A success carries the amounts the gateway sent, never a 0
		// standing in for an absent or null one.
		// RawMessage sees the value as sent (and keys match as they do for
		// wirePayment), so this does not reuse the pointer logic under test.
		if c == gateway.ClassSuccess {
			var raw struct {
				TotalAmount   json.RawMessage `json:"totalAmount"`
				BalanceAmount json.RawMessage `json:"balanceAmount"`
			}
			require.NoError(t, json.Unmarshal(body, &raw))
			for _, a := range []json.RawMessage{raw.TotalAmount, raw.BalanceAmount} {
				require.NotEmpty(t, a)
				require.NotEqual(t, "null", string(a))
			}
		}
	})
}
