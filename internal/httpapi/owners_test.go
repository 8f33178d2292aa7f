package httpapi

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// ownersBundle is a server with two checkout services: shop (the default
// owner) and shopB, each holding a checkout key.
type ownersBundle struct {
	*testBundle
	shop, shopB *testBundle
}

func setupOwners(t *testing.T, opts ...func(*Config)) ownersBundle {
	t.Helper()
	b := setup(t, append([]func(*Config){withResolver("93.184.215.14")}, opts...)...)
	return ownersBundle{
		testBundle: b,
		shop:       b.as(b.createScopedKey(t, "shop", apikey.ScopeCheckout)),
		shopB:      b.as(b.createOwnedKey(t, "shop b", apikey.ScopeCheckout, "shop-b")),
	}
}

// countRows counts a table's rows matching where (with args).
func (b *testBundle) countRows(t *testing.T, table, where string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table+" WHERE "+where, args...).Scan(&n))
	return n
}

// TestOwners holds the rule of docs/design.md, "Owners": a checkout key
// sees and acts on its owner's payments and webhook endpoints only, and
// anything else does not exist for it.
func TestOwners(t *testing.T) {
	t.Parallel()

	// Issue 17's probe: a second checkout's key confirmed the first's
	// payment with a bogus paymentKey, and the owner's real confirm then got
	// 409 payment_key_conflict.
	t.Run("AnotherOwnersConfirmIsNotFoundAndWritesNothing", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		p := o.shop.createPayment(t, "order-owner-1", 15000)

		rec := o.shopB.postJSON(t, "/v1/payments/"+p.ID+"/confirm", `{"paymentKey":"bogus-key-1","amount":15000}`)
		requireProblem(t, rec, http.StatusNotFound, payment.CodeNotFound)
		require.Equal(t, payment.StatusReady, o.status(t, p.ID))
		stored, err := o.store.Payment(t.Context(), o.pool, p.ID)
		require.NoError(t, err)
		require.Empty(t, stored.PaymentKey, "the bogus key is not bound")
		require.Equal(t, 0, o.countJobs(t, kindConfirm, p.ID))
		require.Equal(t, 0, o.countRows(t, "payment_attempts", "payment_id = $1::uuid", p.ID))

		got := o.shop.confirmPayment(t, p.ID, "real-key-1", 15000)
		require.Equal(t, string(payment.StatusConfirming), got.Status)
		require.Equal(t, 1, o.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("AnotherOwnersPaymentIsNotFoundEverywhere", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		p := o.shop.createPayment(t, "order-owner-2", 15000)
		o.shop.confirmPayment(t, p.ID, "real-key-2", 15000)

		for name, rec := range map[string]*http.Response{
			"ByID":      o.shopB.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Result(),
			"ByOrderID": o.shopB.do(t, http.MethodGet, "/v1/payments?orderId=order-owner-2", "").Result(),
			"Wait":      o.shopB.do(t, http.MethodGet, "/v1/payments/"+p.ID+"?wait=1s", "").Result(),
			"Cancel":    o.shopB.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"not mine"}`).Result(),
		} {
			require.Equal(t, http.StatusNotFound, rec.StatusCode, name)
		}
		rec := o.shopB.do(t, http.MethodGet, "/v1/payments/"+p.ID, "")
		requireProblem(t, rec, http.StatusNotFound, payment.CodeNotFound)
		require.NotContains(t, rec.Body.String(), "order-owner-2")
		require.Equal(t, payment.StatusConfirming, o.status(t, p.ID))
		require.Equal(t, 0, o.countCancels(t, p.ID), "the cancel wrote nothing")

		// The order id is taken across owners (gateways need it unique per
		// merchant account): a conflict that shows nothing of the payment.
		rec = o.shopB.postJSON(t, "/v1/payments", `{"orderId":"order-owner-2","amount":15000,"orderName":"Blue shirt"}`)
		requireProblem(t, rec, http.StatusConflict, payment.CodeOrderConflict)
		require.NotContains(t, rec.Body.String(), p.ID)
		require.Equal(t, 1, o.countPayments(t))

		// Its own owner still reads it.
		rec = o.shop.do(t, http.MethodGet, "/v1/payments/"+p.ID, "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	})

	t.Run("OperatorsAndReadersSeeEveryOwner", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		p := o.shopB.createPayment(t, "order-owner-3", 15000)
		// Keys of the default owner, another than the payment's.
		reader := o.as(o.createScopedKey(t, "reader", apikey.ScopeReadonly))
		operator := o.as(o.createScopedKey(t, "operator", apikey.ScopeOperator))
		for _, who := range []*testBundle{reader, operator} {
			rec := who.do(t, http.MethodGet, "/v1/payments/"+p.ID, "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, "shop-b", decode[paymentResponse](t, rec).Owner, "an operator sees whose it is")
			rec = who.do(t, http.MethodGet, "/v1/payments?orderId=order-owner-3", "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		}
		rec := operator.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"operator cleanup"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, payment.StatusCanceled, o.status(t, p.ID))
	})

	t.Run("ARetryUnderARotatedKeyReplays", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		rotated := o.as(o.createScopedKey(t, "shop, rotated", apikey.ScopeCheckout))
		create := `{"orderId":"order-owner-4","amount":15000,"orderName":"Blue shirt"}`

		first := o.shop.postKeyed(t, "create-1", "/v1/payments", create)
		require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
		requireReplay(t, first, rotated.postKeyed(t, "create-1", "/v1/payments", create))

		id := decode[paymentResponse](t, first).ID
		confirm := `{"paymentKey":"real-key-4","amount":15000}`
		firstConfirm := o.shop.postKeyed(t, "confirm-1", "/v1/payments/"+id+"/confirm", confirm)
		require.Equal(t, http.StatusAccepted, firstConfirm.Code, firstConfirm.Body.String())
		requireReplay(t, firstConfirm, rotated.postKeyed(t, "confirm-1", "/v1/payments/"+id+"/confirm", confirm))

		// A partial cancel is the one a second run would repeat: a retry
		// across the rotation refunds once.
		o.approve(t, id)
		cancel := `{"reason":"one sock","amount":5000}`
		firstCancel := o.shop.postKeyed(t, "cancel-1", "/v1/payments/"+id+"/cancel", cancel)
		require.Equal(t, http.StatusAccepted, firstCancel.Code, firstCancel.Body.String())
		requireReplay(t, firstCancel, rotated.postKeyed(t, "cancel-1", "/v1/payments/"+id+"/cancel", cancel))
		require.Equal(t, 1, o.countCancels(t, id))
		require.Equal(t, 1, o.countJobs(t, kindConfirm, id))
		require.Equal(t, 1, o.countPayments(t))
		require.Equal(t, 3, o.countIdempotencyRecords(t))

		// Another owner's key with the same Idempotency-Key is its own.
		other := o.shopB.postKeyed(t, "create-1", "/v1/payments", `{"orderId":"order-owner-4b","amount":100,"orderName":"x"}`)
		require.Equal(t, http.StatusCreated, other.Code, other.Body.String())
		require.Empty(t, other.Header().Get("Idempotent-Replayed"))
	})

	t.Run("AnOperatorsAnswerIsNeverReplayedToACheckout", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		p := o.shopB.createPayment(t, "order-owner-5", 15000)
		operator := o.as(o.createScopedKey(t, "operator", apikey.ScopeOperator))
		cancel := `{"reason":"operator cleanup"}`
		rec := operator.postKeyed(t, "same-key", "/v1/payments/"+p.ID+"/cancel", cancel)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		// The default owner's checkout key sends the same key and request.
		rec = o.shop.postKeyed(t, "same-key", "/v1/payments/"+p.ID+"/cancel", cancel)
		requireProblem(t, rec, http.StatusNotFound, payment.CodeNotFound)
		require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	})

	t.Run("AnotherOwnersEndpointIsNotFound", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		e := o.shop.createEndpoint(t, `{"url":"https://shop.example/hooks"}`)
		p := o.shop.createPayment(t, "order-owner-6", 15000)
		o.shop.confirmPayment(t, p.ID, "real-key-6", 15000)
		var deliveryID string
		require.NoError(t, o.pool.QueryRow(t.Context(),
			"SELECT id::text FROM webhook_deliveries WHERE endpoint_id = $1::uuid", e.ID).Scan(&deliveryID))

		rec := o.shopB.do(t, http.MethodGet, "/v1/webhook-endpoints", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Empty(t, decode[webhookEndpointListResponse](t, rec).Endpoints)
		for name, rec := range map[string]*http.Response{
			"Deliveries": o.shopB.do(t, http.MethodGet, "/v1/webhook-endpoints/"+e.ID+"/deliveries", "").Result(),
			"Rotate":     o.shopB.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/rotate-secret", "").Result(),
			"Redeliver":  o.shopB.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/deliveries/"+deliveryID+"/redeliver", "").Result(),
			"Disable":    o.shopB.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/disable", "").Result(),
		} {
			require.Equal(t, http.StatusNotFound, rec.StatusCode, name)
		}
		stored, err := o.store.WebhookEndpoint(t.Context(), o.pool, payment.Everyone(), e.ID)
		require.NoError(t, err)
		require.Nil(t, stored.DisabledAt)
		require.Empty(t, stored.PreviousSecret, "not rotated")

		// The owner, and an operator, still manage it.
		rec = o.shop.do(t, http.MethodGet, "/v1/webhook-endpoints", "")
		require.Len(t, decode[webhookEndpointListResponse](t, rec).Endpoints, 1)
		require.Equal(t, "default", decode[webhookEndpointListResponse](t, rec).Endpoints[0].Owner)
		rec = o.do(t, http.MethodGet, "/v1/webhook-endpoints", "")
		require.Len(t, decode[webhookEndpointListResponse](t, rec).Endpoints, 1)
	})

	t.Run("DeliveriesGoToThePaymentOwnersEndpointsOnly", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		mine := o.shop.createEndpoint(t, `{"url":"https://shop.example/hooks"}`)
		theirs := o.shopB.createEndpoint(t, `{"url":"https://shop-b.example/hooks"}`)
		p := o.shop.createPayment(t, "order-owner-7", 15000)
		o.shop.confirmPayment(t, p.ID, "real-key-7", 15000)

		require.Equal(t, 1, o.countRows(t, "webhook_deliveries", "payment_id = $1::uuid AND endpoint_id = $2::uuid", p.ID, mine.ID))
		require.Equal(t, 0, o.countRows(t, "webhook_deliveries", "endpoint_id = $1::uuid", theirs.ID))
		require.Equal(t, 1, o.countRows(t, "river_job", "kind = 'webhook_delivery'"))
	})

	t.Run("ActiveEndpointsPerOwnerAreCapped", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		var first webhookEndpointResponse
		for i := range webhook.DefaultMaxEndpoints {
			e := o.shop.createEndpoint(t, fmt.Sprintf(`{"url":"https://shop.example/hooks/%d"}`, i))
			if i == 0 {
				first = e
			}
		}
		rec := o.shop.postJSON(t, "/v1/webhook-endpoints", `{"url":"https://shop.example/hooks/one-too-many"}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, webhook.CodeEndpointLimit)
		require.Equal(t, webhook.DefaultMaxEndpoints, o.countRows(t, "webhook_endpoints", "true"), "the refusal wrote nothing")

		// The cap is each owner's own, and a disabled endpoint frees a place.
		o.shopB.createEndpoint(t, `{"url":"https://shop-b.example/hooks"}`)
		rec = o.shop.postJSON(t, "/v1/webhook-endpoints/"+first.ID+"/disable", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		o.shop.createEndpoint(t, `{"url":"https://shop.example/hooks/one-too-many"}`)

		// Configurable.
		small := setupOwners(t, func(c *Config) { c.MaxWebhookEndpoints = 1 })
		small.shop.createEndpoint(t, `{"url":"https://shop.example/a"}`)
		rec = small.shop.postJSON(t, "/v1/webhook-endpoints", `{"url":"https://shop.example/b"}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, webhook.CodeEndpointLimit)
	})

	t.Run("ConcurrentRegistrationsTakeTheLastPlaceOnce", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t, func(c *Config) { c.MaxWebhookEndpoints = 3 })
		o.shop.createEndpoint(t, `{"url":"https://shop.example/first"}`)
		const racers = 8
		codes := make(chan int, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := o.shop.request(t, http.MethodPost, "/v1/webhook-endpoints",
					fmt.Sprintf(`{"url":"https://shop.example/race/%d"}`, i), "Content-Type", "application/json")
				codes <- o.shop.serve(req).Code
			}()
		}
		wg.Wait()
		close(codes)
		counts := map[int]int{}
		for c := range codes {
			counts[c]++
		}
		require.Equal(t, map[int]int{http.StatusCreated: 2, http.StatusUnprocessableEntity: racers - 2}, counts)
		require.Equal(t, 3, o.countRows(t, "webhook_endpoints", "disabled_at IS NULL"))
	})

	t.Run("AnOwnersActiveURLsAreDistinct", func(t *testing.T) {
		t.Parallel()
		o := setupOwners(t)
		e := o.shop.createEndpoint(t, `{"url":"https://shop.example/hooks"}`)
		rec := o.shop.postJSON(t, "/v1/webhook-endpoints", `{"url":"https://shop.example/hooks","events":["payment.confirmed"]}`)
		requireProblem(t, rec, http.StatusConflict, webhook.CodeURLTaken)
		require.Equal(t, 1, o.countRows(t, "webhook_endpoints", "true"), "the refusal wrote nothing")

		// Another owner may use the URL; the owner may again once disabled.
		o.shopB.createEndpoint(t, `{"url":"https://shop.example/hooks"}`)
		rec = o.shop.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/disable", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		o.shop.createEndpoint(t, `{"url":"https://shop.example/hooks"}`)
	})
}
