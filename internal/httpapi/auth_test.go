package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()

	t.Run("RefusedWithoutAValidKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-auth-1", 15000)

		wellFormedUnknown, err := apikey.Generate()
		require.NoError(t, err)
		for _, tt := range []struct {
			name      string
			header    []string // Authorization values
			challenge string
		}{
			{"Missing", nil, `Bearer realm="payment-outbox"`},
			{"Empty", []string{""}, `Bearer realm="payment-outbox", error="invalid_token"`},
			{"Basic", []string{"Basic " + b.apiKey}, `Bearer realm="payment-outbox", error="invalid_token"`},
			{"NoKey", []string{"Bearer"}, `Bearer realm="payment-outbox", error="invalid_token"`},
			{"TwoSpaces", []string{"Bearer  " + b.apiKey}, `Bearer realm="payment-outbox", error="invalid_token"`},
			{"Malformed", []string{"Bearer po_short"}, `Bearer realm="payment-outbox", error="invalid_token"`},
			{"SQL", []string{"Bearer ' OR 1=1 --"}, `Bearer realm="payment-outbox", error="invalid_token"`},
			{"Unknown", []string{"Bearer " + wellFormedUnknown}, `Bearer realm="payment-outbox", error="invalid_token"`},
			{"Twice", []string{"Bearer " + b.apiKey, "Bearer " + b.apiKey}, `Bearer realm="payment-outbox", error="invalid_token"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				anon := b.as("", "")
				for _, call := range []struct{ method, path, body string }{
					{http.MethodPost, "/v1/payments", `{"orderId":"order-auth-2","amount":1,"orderName":"x"}`},
					{http.MethodGet, "/v1/payments?orderId=order-auth-1", ""},
					{http.MethodGet, "/v1/payments/" + p.ID, ""},
					{http.MethodGet, "/v1/payments/attention", ""},
					{http.MethodPost, "/v1/payments/" + p.ID + "/confirm", `{"paymentKey":"pk_auth","amount":15000}`},
					{http.MethodPost, "/v1/payments/" + p.ID + "/cancel", `{"reason":"r"}`},
				} {
					req := anon.request(t, call.method, call.path, call.body, "Content-Type", "application/json",
						"Idempotency-Key", "auth-test")
					for _, v := range tt.header {
						req.Header.Add("Authorization", v)
					}
					rec := anon.serve(req)
					pr := requireProblem(t, rec, http.StatusUnauthorized, codeUnauthorized)
					require.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate"), call.path)
					require.NotContains(t, pr.Detail, b.apiKey)
				}
			})
		}
		require.Equal(t, 1, b.countPayments(t))
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
		require.Equal(t, 0, b.countCancels(t, p.ID))
		require.Equal(t, 0, b.countIdempotencyRecords(t))
	})

	t.Run("OpenRoutes", func(t *testing.T) {
		t.Parallel()
		anon := setup(t).as("", "")
		require.Equal(t, http.StatusOK, anon.do(t, http.MethodGet, "/healthz", "").Code)
		require.Equal(t, http.StatusOK, anon.do(t, http.MethodGet, "/readyz", "").Code)
		rec := anon.postJSON(t, "/v1/webhooks/toss", `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"pk_nobody"}}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		// Routing answers before authentication: an unknown path is a 404.
		requireProblem(t, anon.do(t, http.MethodGet, "/v1/nothing", ""), http.StatusNotFound, codeNotFound)
	})

	t.Run("SchemeIsCaseInsensitive", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rec := b.as("", "").do(t, http.MethodGet, "/v1/payments/attention", "", "Authorization", "bearer "+b.apiKey)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	})

	t.Run("RecordsUseAndLogsTheClient", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rec := b.do(t, http.MethodGet, "/v1/payments/attention", "", "X-Request-Id", "auth-log-1")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		keys, err := b.store.APIKeys(t.Context(), b.pool)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		require.NotNil(t, keys[0].LastUsedAt)
		require.True(t, b.now.Equal(*keys[0].LastUsedAt))
		l := requireLogged(t, b, "auth-log-1")
		require.Equal(t, b.apiKeyID, l["api_key_id"])
		for _, line := range b.logs.lines(t) {
			for _, v := range line {
				s, _ := v.(string)
				require.NotContains(t, s, b.apiKey[len(apikey.Prefix):], "the key is never logged")
			}
		}
	})

	t.Run("CacheAndRevocation", func(t *testing.T) {
		t.Parallel()
		clock := newTestClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
		b := setup(t, func(cfg *Config) { cfg.Now = clock.Now; cfg.KeyCacheTTL = 10 * time.Second })
		srv := New(b.cfg)
		counting := &countingKeys{keyLookup: b.store}
		srv.keys.lookup = counting
		b.handler = srv.Handler()

		get := func() int { return b.do(t, http.MethodGet, "/v1/payments/attention", "").Code }
		for range 5 {
			require.Equal(t, http.StatusOK, get())
		}
		require.EqualValues(t, 1, counting.lookups.Load(), "one query, then the cache")

		_, err := b.store.RevokeAPIKey(t.Context(), b.pool, b.apiKeyID, clock.Now())
		require.NoError(t, err)
		// Within the cache interval the revoked key still works: the
		// documented revocation latency.
		clock.Advance(9 * time.Second)
		require.Equal(t, http.StatusOK, get())
		clock.Advance(2 * time.Second)
		require.Equal(t, http.StatusUnauthorized, get())
		require.Equal(t, http.StatusUnauthorized, get())
		require.EqualValues(t, 3, counting.lookups.Load(), "refused keys are asked about every time")
	})

	t.Run("DatabaseErrorIsNotA401", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		srv := New(b.cfg)
		srv.keys.lookup = &countingKeys{keyLookup: b.store, fail: true}
		b.handler = srv.Handler()
		rec := b.do(t, http.MethodGet, "/v1/payments/attention", "")
		pr := requireProblem(t, rec, http.StatusInternalServerError, payment.CodeInternal)
		require.NotContains(t, pr.Detail, "database on fire")
		require.Empty(t, rec.Header().Get("WWW-Authenticate"))
	})
}

// countingKeys counts the key lookups that reach the database, or fails
// them.
type countingKeys struct {
	keyLookup
	lookups atomic.Int64
	fail    bool
}

func (k *countingKeys) ActiveAPIKeyByHash(ctx context.Context, db store.DBTX, hash []byte) (apikey.Key, error) {
	k.lookups.Add(1)
	if k.fail {
		return apikey.Key{}, errors.New("database on fire")
	}
	return k.keyLookup.ActiveAPIKeyByHash(ctx, db, hash)
}
