package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// fixedResolver resolves every name to one address, so tests do not depend
// on DNS.
type fixedResolver netip.Addr

func (r fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.Addr(r)}, nil
}

func withResolver(addr string) func(*Config) {
	return func(c *Config) { c.Resolver = fixedResolver(netip.MustParseAddr(addr)) }
}

func (b *testBundle) createEndpoint(t *testing.T, body string) webhookEndpointResponse {
	t.Helper()
	rec := b.postJSON(t, "/v1/webhook-endpoints", body)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	e := decode[webhookEndpointResponse](t, rec)
	require.Equal(t, "/v1/webhook-endpoints/"+e.ID, rec.Header().Get("Location"))
	return e
}

func TestWebhookEndpoints(t *testing.T) {
	t.Parallel()

	t.Run("create shows the secret once; list never", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withResolver("93.184.215.14"))
		e := b.createEndpoint(t, `{"url":"https://shop.example/hooks","events":["payment.confirmed","payment.canceled","payment.confirmed"]}`)
		require.True(t, strings.HasPrefix(e.Secret, "whsec_"), e.Secret)
		require.Equal(t, []string{"payment.confirmed", "payment.canceled"}, e.Events)
		require.Nil(t, e.DisabledAt)

		all := b.createEndpoint(t, `{"url":"https://shop.example/all"}`)
		require.Equal(t, webhook.EventTypes(), all.Events, "no events: every one")
		require.NotEqual(t, e.Secret, all.Secret)

		rec := b.do(t, http.MethodGet, "/v1/webhook-endpoints", "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.NotContains(t, rec.Body.String(), "whsec_")
		list := decode[webhookEndpointListResponse](t, rec)
		require.Len(t, list.Endpoints, 2)
		require.Equal(t, e.ID, list.Endpoints[0].ID)
	})

	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withResolver("93.184.215.14"))
		for body, code := range map[string]string{
			`{"url":"ftp://shop.example/"}`:                              payment.CodeInvalidRequest,
			`{"events":["payment.confirmed"]}`:                           payment.CodeInvalidRequest,
			`{"url":"https://shop.example/","events":[]}`:                payment.CodeInvalidRequest,
			`{"url":"https://shop.example/","events":["payment.ready"]}`: payment.CodeInvalidRequest,
			`{"url":"https://shop.example/","secret":"mine"}`:            codeUnknownField,
		} {
			requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints", body), http.StatusBadRequest, code)
		}
		requireProblem(t, b.do(t, http.MethodGet, "/v1/webhook-endpoints/"+uuid.NewString()+"/deliveries?limit=0", ""),
			http.StatusBadRequest, payment.CodeInvalidRequest)
	})

	t.Run("private addresses are refused unless allowed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withResolver("10.0.0.8"))
		for _, url := range []string{"https://127.0.0.1:9000/", "https://169.254.169.254/", "https://internal.example/"} {
			requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints", `{"url":"`+url+`"}`),
				http.StatusUnprocessableEntity, webhook.CodeURLRefused)
		}
		dev := b.with(func(c *Config) { c.WebhookAllowPrivate = true })
		dev.createEndpoint(t, `{"url":"http://127.0.0.1:9000/"}`)
	})

	t.Run("disable and rotate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withResolver("93.184.215.14"))
		e := b.createEndpoint(t, `{"url":"https://shop.example/hooks"}`)

		rec := b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/rotate-secret", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		rotated := decode[webhookEndpointResponse](t, rec)
		require.True(t, strings.HasPrefix(rotated.Secret, "whsec_"))
		require.NotEqual(t, e.Secret, rotated.Secret)
		stored, err := b.store.WebhookEndpoint(t.Context(), b.pool, payment.Everyone(), e.ID)
		require.NoError(t, err)
		require.Equal(t, []string{rotated.Secret, e.Secret}, stored.SigningSecrets(b.now),
			"the old secret signs beside the new one for a while")

		rec = b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/disable", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		disabled := decode[webhookEndpointResponse](t, rec)
		require.NotNil(t, disabled.DisabledAt)
		require.Empty(t, disabled.Secret)
		again := decode[webhookEndpointResponse](t, b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/disable", ""))
		require.Equal(t, disabled.DisabledAt, again.DisabledAt)

		requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/rotate-secret", ""),
			http.StatusConflict, webhook.CodeEndpointDisabled)
		for _, path := range []string{"/disable", "/rotate-secret"} {
			requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints/"+uuid.NewString()+path, ""),
				http.StatusNotFound, webhook.CodeEndpointNotFound)
		}
		requireProblem(t, b.do(t, http.MethodGet, "/v1/webhook-endpoints/not-a-uuid/deliveries", ""),
			http.StatusNotFound, webhook.CodeEndpointNotFound)
	})

	t.Run("a status change made through the api is a delivery, listed and redeliverable", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withResolver("93.184.215.14"))
		e := b.createEndpoint(t, `{"url":"https://shop.example/hooks","events":["payment.canceled"]}`)
		other := b.createEndpoint(t, `{"url":"https://shop.example/other","events":["payment.confirmed"]}`)

		p := b.createPayment(t, "order-wh-0001", 5000)
		rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"changed my mind"}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

		rec = b.do(t, http.MethodGet, "/v1/webhook-endpoints/"+e.ID+"/deliveries", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		ds := decode[webhookDeliveryListResponse](t, rec).Deliveries
		require.Len(t, ds, 1)
		d := ds[0]
		require.Equal(t, "payment.canceled", d.EventType)
		require.Equal(t, p.ID, d.PaymentID)
		require.Equal(t, "pending", d.Status)
		require.True(t, strings.HasPrefix(d.EventID, "evt_"))
		var ev webhook.Event
		require.NoError(t, json.Unmarshal(d.Payload, &ev))
		require.Equal(t, "canceled", ev.Data.Status)
		require.Equal(t, "ready", ev.Data.PreviousStatus)
		require.Equal(t, int64(2), ev.Data.Version, "created at 1, one change")

		empty := decode[webhookDeliveryListResponse](t, b.do(t, http.MethodGet, "/v1/webhook-endpoints/"+other.ID+"/deliveries", ""))
		require.Empty(t, empty.Deliveries)

		// One job per delivery; a redelivery while it waits adds none.
		require.Equal(t, 1, b.countWebhookJobs(t, d.ID))
		rec = b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/deliveries/"+d.ID+"/redeliver", "")
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.Equal(t, d.ID, decode[webhookDeliveryResponse](t, rec).ID)
		require.Equal(t, 1, b.countWebhookJobs(t, d.ID))
		// Once that job is done, a redelivery is a new job.
		_, err := b.pool.Exec(t.Context(), "UPDATE river_job SET state = 'completed', finalized_at = now() WHERE args->>'deliveryId' = $1", d.ID)
		require.NoError(t, err)
		rec = b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/deliveries/"+d.ID+"/redeliver", "")
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.Equal(t, 2, b.countWebhookJobs(t, d.ID))

		requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints/"+other.ID+"/deliveries/"+d.ID+"/redeliver", ""),
			http.StatusNotFound, webhook.CodeDeliveryNotFound)
		requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/deliveries/"+uuid.NewString()+"/redeliver", ""),
			http.StatusNotFound, webhook.CodeDeliveryNotFound)
		b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/disable", "")
		requireProblem(t, b.postJSON(t, "/v1/webhook-endpoints/"+e.ID+"/deliveries/"+d.ID+"/redeliver", ""),
			http.StatusConflict, webhook.CodeEndpointDisabled)
	})
}

func (b *testBundle) countWebhookJobs(t *testing.T, deliveryID string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(),
		"SELECT count(*) FROM river_job WHERE kind = $1 AND args->>'deliveryId' = $2",
		paymentjob.WebhookArgs{}.Kind(), deliveryID).Scan(&n))
	return n
}
