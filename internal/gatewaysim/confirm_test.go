package gatewaysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfirm(t *testing.T) {
	t.Parallel()

	t.Run("HappyPath", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-confirm-1", 15_000)
		b.clock.Advance(90 * time.Second)

		a := b.confirm(t, auth, "confirm-key-1")
		p := a.payment(t)
		require.Equal(t, "tvivarepublica", p.MID)
		require.Equal(t, "2022-11-16", p.Version)
		require.Equal(t, auth.PaymentKey, p.PaymentKey)
		require.Equal(t, "NORMAL", p.Type)
		require.Equal(t, "order-confirm-1", p.OrderID)
		require.NotEmpty(t, p.OrderName)
		require.Equal(t, StatusDone, p.Status)
		require.Equal(t, "2024-02-13T12:18:14+09:00", p.RequestedAt)
		require.NotNil(t, p.ApprovedAt)
		require.Equal(t, "2024-02-13T12:19:44+09:00", *p.ApprovedAt)
		require.EqualValues(t, 15_000, p.TotalAmount)
		require.EqualValues(t, 15_000, p.BalanceAmount)
		require.EqualValues(t, 13_636, p.SuppliedAmount)
		require.EqualValues(t, 1_364, p.VAT)
		require.Zero(t, p.TaxFreeAmount)
		require.Equal(t, "카드", p.Method)
		require.Equal(t, "KRW", p.Currency)
		require.NotNil(t, p.LastTransactionKey)
		require.Regexp(t, `^[0-9A-F]{32}$`, *p.LastTransactionKey)
		require.Nil(t, p.Cancels)
		require.NotNil(t, p.Card)
		require.EqualValues(t, 15_000, p.Card.Amount)
		require.Regexp(t, `^\d{8}$`, p.Card.ApproveNo)
		require.Contains(t, p.Card.Number, "****")
		require.True(t, p.IsPartialCancelable)

		// The wire shape: null, not absent, where Toss sends null.
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(a.body, &raw))
		require.Equal(t, "null", string(raw["cancels"]))
		for _, field := range []string{"mId", "version", "paymentKey", "type", "orderId", "orderName", "status",
			"requestedAt", "approvedAt", "totalAmount", "balanceAmount", "suppliedAmount", "vat", "taxFreeAmount",
			"method", "currency", "lastTransactionKey", "cancels", "card", "isPartialCancelable"} {
			require.Contains(t, raw, field)
		}

		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Equal(t, 1, entry.Approvals)
		require.Equal(t, StatusDone, entry.Status)
		require.NotNil(t, entry.ApprovedAt)
		require.Empty(t, entry.Refunds)
		require.Equal(t, []string{OutcomeProcessed}, b.outcomes(t, auth.PaymentKey))
	})

	t.Run("BeforeConfirmLookupIsInProgress", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-confirm-2", 1_000)
		a := b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil)
		p := a.payment(t)
		require.Equal(t, StatusInProgress, p.Status)
		require.Nil(t, p.ApprovedAt)
		require.Nil(t, p.Card)
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(a.body, &raw))
		require.Equal(t, "null", string(raw["approvedAt"]))
	})

	t.Run("RejectsMismatchesWithoutCharging", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		auth := b.authorize(t, "order-confirm-3", 1_000)
		path := "/v1/payments/confirm"

		b.toss(t, http.MethodPost, path, "k1", map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": 999}).
			requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		b.toss(t, http.MethodPost, path, "k2", map[string]any{"paymentKey": auth.PaymentKey, "orderId": "order-other", "amount": 1_000}).
			requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		b.toss(t, http.MethodPost, path, "k3", map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID}).
			requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		b.toss(t, http.MethodPost, path, "k4", "not an object").
			requireError(t, http.StatusBadRequest, CodeInvalidRequest)
		b.toss(t, http.MethodPost, path, "k5", map[string]any{"paymentKey": "tgen_unknown", "orderId": auth.OrderID, "amount": 1_000}).
			requireError(t, http.StatusNotFound, CodeNotFoundPaymentSession)

		require.Zero(t, b.ledgerEntry(t, auth.PaymentKey).Approvals)
		require.Equal(t, StatusDone, b.confirm(t, auth, "k6").payment(t).Status)
	})

	t.Run("SessionExpiry", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		backdated := b.clock.Now().Add(-11 * time.Minute)
		auth, err := b.sim.Authorize(AuthorizeRequest{OrderID: "order-confirm-4", Amount: 1_000, AuthenticatedAt: &backdated})
		require.NoError(t, err)
		require.True(t, auth.ExpiresAt.Before(b.clock.Now()))

		b.confirm(t, auth, "k1").requireError(t, http.StatusNotFound, CodeNotFoundPaymentSession)
		require.Equal(t, StatusExpired, b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t).Status)
		entry := b.ledgerEntry(t, auth.PaymentKey)
		require.Zero(t, entry.Approvals)
		require.Equal(t, StatusExpired, entry.Status)

		// Within the TTL it is accepted; moving the clock past it is not.
		fresh := b.authorize(t, "order-confirm-5", 1_000)
		b.clock.Advance(9*time.Minute + 59*time.Second)
		require.Equal(t, StatusDone, b.confirm(t, fresh, "k2").payment(t).Status)

		late := b.authorize(t, "order-confirm-6", 1_000)
		b.clock.Advance(10*time.Minute + time.Second)
		b.confirm(t, late, "k3").requireError(t, http.StatusNotFound, CodeNotFoundPaymentSession)
	})

	t.Run("SessionTTLFromConfig", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		b.setConfig(t, Config{SessionTTL: Duration(time.Minute)})
		auth := b.authorize(t, "order-confirm-7", 1_000)
		b.clock.Advance(61 * time.Second)
		b.confirm(t, auth, "k1").requireError(t, http.StatusNotFound, CodeNotFoundPaymentSession)
	})

	t.Run("AutoAuthorize", func(t *testing.T) {
		t.Parallel()

		b := setup(t)
		body := map[string]any{"paymentKey": "tgen_loadtest_0001", "orderId": "order-auto-1", "amount": 2_000}
		b.toss(t, http.MethodPost, "/v1/payments/confirm", "k1", body).requireError(t, http.StatusNotFound, CodeNotFoundPaymentSession)

		b.setConfig(t, Config{AutoAuthorize: true})
		p := b.toss(t, http.MethodPost, "/v1/payments/confirm", "k2", body).payment(t)
		require.Equal(t, StatusDone, p.Status)
		require.Equal(t, "tgen_loadtest_0001", p.PaymentKey)
		require.Equal(t, 1, b.ledgerEntry(t, "tgen_loadtest_0001").Approvals)

		// Another key cannot take over the order.
		other := map[string]any{"paymentKey": "tgen_loadtest_0002", "orderId": "order-auto-1", "amount": 2_000}
		b.toss(t, http.MethodPost, "/v1/payments/confirm", "k3", other).requireError(t, http.StatusBadRequest, CodeDuplicatedOrderID)
	})
}

func TestConfirmConcurrentNeverApprovesTwice(t *testing.T) {
	t.Parallel()

	b := setup(t)
	b.setConfig(t, Config{LatencyJitter: Duration(5 * time.Millisecond)})
	auths := make([]Authorization, 5)
	for i := range auths {
		auths[i] = b.authorize(t, fmt.Sprintf("order-race-%d", i), 1_000)
	}

	const callers = 40
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]map[int]int{} // paymentKey → HTTP status → count
		errs     []error
	)
	authorization := AuthorizationHeader(DefaultSecretKey)
	for _, auth := range auths {
		statuses[auth.PaymentKey] = map[int]int{}
	}
	for _, auth := range auths {
		for i := range callers {
			wg.Go(func() {
				// Half share one key, half bring their own: both must hold.
				key := fmt.Sprintf("%s-own-%d", auth.OrderID, i)
				if i%2 == 0 {
					key = auth.OrderID + "-shared"
				}
				a, err := b.send(t, http.MethodPost, "/v1/payments/confirm", authorization, key,
					map[string]any{"paymentKey": auth.PaymentKey, "orderId": auth.OrderID, "amount": auth.Amount})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				statuses[auth.PaymentKey][a.status]++
			})
		}
	}
	wg.Wait()
	require.Empty(t, errs)

	for _, auth := range auths {
		require.Equal(t, 1, b.ledgerEntry(t, auth.PaymentKey).Approvals, auth.PaymentKey)
		got := statuses[auth.PaymentKey]
		require.Equal(t, callers, got[http.StatusOK]+got[http.StatusBadRequest]+got[http.StatusConflict], "%v", got)
		require.GreaterOrEqual(t, got[http.StatusOK], 1, "%v", got)
	}
}
