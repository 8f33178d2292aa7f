package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// postKeyed posts a JSON body under an Idempotency-Key.
func (b *testBundle) postKeyed(t *testing.T, key, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return b.do(t, http.MethodPost, path, body, "Content-Type", "application/json", "Idempotency-Key", key)
}

// requireReplay checks that rec repeats first: same status, body and
// location, marked as a replay.
func requireReplay(t *testing.T, first, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, first.Code, rec.Code, rec.Body.String())
	require.Equal(t, first.Body.String(), rec.Body.String())
	require.Equal(t, first.Header().Get("Content-Type"), rec.Header().Get("Content-Type"))
	require.Equal(t, first.Header().Get("Location"), rec.Header().Get("Location"))
	require.Equal(t, "true", rec.Header().Get("Idempotent-Replayed"))
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()

	t.Run("ReplaysTheFirstAnswer", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		create := `{"orderId":"order-idem-1","amount":15000,"orderName":"Blue shirt"}`
		first := b.postKeyed(t, "create-1", "/v1/payments", create)
		require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
		require.Empty(t, first.Header().Get("Idempotent-Replayed"))
		p := decode[paymentResponse](t, first)

		confirm := `{"paymentKey":"pk_idem_1","amount":15000}`
		firstConfirm := b.postKeyed(t, "confirm-1", "/v1/payments/"+p.ID+"/confirm", confirm)
		require.Equal(t, http.StatusAccepted, firstConfirm.Code, firstConfirm.Body.String())

		// The create's replay is its first answer (201, status ready), not
		// the payment as it stands now: that is what GET is for.
		requireReplay(t, first, b.postKeyed(t, "create-1", "/v1/payments", create))
		requireReplay(t, firstConfirm, b.postKeyed(t, "confirm-1", "/v1/payments/"+p.ID+"/confirm", confirm))
		require.Equal(t, 1, b.countPayments(t))
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))

		b.approve(t, p.ID)
		cancel := `{"reason":"refund","amount":500}`
		firstCancel := b.postKeyed(t, "cancel-1", "/v1/payments/"+p.ID+"/cancel", cancel)
		require.Equal(t, http.StatusAccepted, firstCancel.Code, firstCancel.Body.String())
		requireReplay(t, firstCancel, b.postKeyed(t, "cancel-1", "/v1/payments/"+p.ID+"/cancel", cancel))
		require.Equal(t, 1, b.countCancels(t, p.ID))
		require.Equal(t, 1, b.countJobs(t, kindCancel, p.ID))
		require.Equal(t, 3, b.countIdempotencyRecords(t))
	})

	t.Run("OtherRequestSameKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		first := b.postKeyed(t, "k", "/v1/payments", `{"orderId":"order-idem-2","amount":100,"orderName":"x"}`)
		require.Equal(t, http.StatusCreated, first.Code)
		p := decode[paymentResponse](t, first)

		for name, tt := range map[string]struct{ path, body string }{
			"OtherBody":            {"/v1/payments", `{"orderId":"order-idem-3","amount":100,"orderName":"x"}`},
			"SameValuesOtherBytes": {"/v1/payments", `{"orderId":"order-idem-2", "amount":100,"orderName":"x"}`},
			"OtherPath":            {"/v1/payments/" + p.ID + "/confirm", `{"orderId":"order-idem-2","amount":100,"orderName":"x"}`},
		} {
			t.Run(name, func(t *testing.T) {
				rec := b.postKeyed(t, "k", tt.path, tt.body)
				requireProblem(t, rec, http.StatusUnprocessableEntity, codeIdempotencyKeyReused)
			})
		}
		require.Equal(t, 1, b.countPayments(t))
		require.Equal(t, 0, b.countJobs(t, kindConfirm, p.ID))
		require.Equal(t, payment.StatusReady, b.status(t, p.ID))
	})

	t.Run("ClientErrorsAreTheAnswer", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := `{"orderId":"order-idem-4","amount":0,"orderName":"x"}`
		first := b.postKeyed(t, "bad-1", "/v1/payments", bad)
		requireProblem(t, first, http.StatusBadRequest, payment.CodeInvalidRequest)
		rec := b.postKeyed(t, "bad-1", "/v1/payments", bad)
		requireReplay(t, first, rec)
		requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
		// A corrected request is a new request: it needs a new key.
		rec = b.postKeyed(t, "bad-1", "/v1/payments", `{"orderId":"order-idem-4","amount":1,"orderName":"x"}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, codeIdempotencyKeyReused)
		require.Equal(t, 0, b.countPayments(t))

		// So is a 415: the request's bytes, not its decoding, are what is
		// remembered.
		first = b.do(t, http.MethodPost, "/v1/payments", bad, "Content-Type", "text/plain", "Idempotency-Key", "bad-2")
		requireProblem(t, first, http.StatusUnsupportedMediaType, codeUnsupportedMediaType)
		rec = b.do(t, http.MethodPost, "/v1/payments", bad, "Content-Type", "text/plain", "Idempotency-Key", "bad-2")
		requireReplay(t, first, rec)
	})

	t.Run("InFlightRepeatGets409", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-idem-5", 15000)
		gate := &gateOutbox{Inserter: b.cfg.Outbox, entered: make(chan struct{}, 1), release: make(chan struct{})}
		gated := b.with(func(cfg *Config) { cfg.Outbox = gate })
		confirm := `{"paymentKey":"pk_idem_5","amount":15000}`
		path := "/v1/payments/" + p.ID + "/confirm"

		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- gated.postKeyed(t, "confirm-5", path, confirm) }()
		select {
		case <-gate.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the first confirm never reached the outbox")
		}

		// The first holds its payment's row lock; the repeat must not wait
		// for it, and must not run.
		rec := b.postKeyed(t, "confirm-5", path, confirm)
		requireProblem(t, rec, http.StatusConflict, codeIdempotencyInProgress)
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
		// The key with another body is still a misuse, running or not.
		rec = b.postKeyed(t, "confirm-5", path, `{"paymentKey":"pk_other","amount":15000}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, codeIdempotencyKeyReused)

		close(gate.release)
		first := <-done
		require.Equal(t, http.StatusAccepted, first.Code, first.Body.String())
		requireReplay(t, first, b.postKeyed(t, "confirm-5", path, confirm))
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("ConcurrentRepeats", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := `{"orderId":"order-idem-6","amount":700,"orderName":"Gloves"}`
		const n = 10
		recs := make(chan *httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { recs <- b.postKeyed(t, "race-6", "/v1/payments", body) })
		}
		wg.Wait()
		close(recs)
		ran := 0
		for rec := range recs {
			switch {
			case rec.Code == http.StatusConflict:
				requireProblem(t, rec, http.StatusConflict, codeIdempotencyInProgress)
			case rec.Code == http.StatusCreated && rec.Header().Get("Idempotent-Replayed") == "":
				ran++
			default:
				require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
				require.Equal(t, "true", rec.Header().Get("Idempotent-Replayed"))
			}
		}
		require.Equal(t, 1, ran, "exactly one request ran the handler")
		require.Equal(t, 1, b.countPayments(t))
		require.Equal(t, 1, b.countIdempotencyRecords(t))
	})

	t.Run("ScopedPerOwner", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// Another owner's key: keys are scoped per owner (a rotated key of
		// the same owner replays: TestOwners).
		otherKey, otherID := b.createOwnedKey(t, "other client", apikey.ScopeOperator, "shop-b")
		other := b.as(otherKey, otherID)

		a := b.postKeyed(t, "shared", "/v1/payments", `{"orderId":"order-idem-7a","amount":100,"orderName":"x"}`)
		require.Equal(t, http.StatusCreated, a.Code, a.Body.String())
		o := other.postKeyed(t, "shared", "/v1/payments", `{"orderId":"order-idem-7b","amount":100,"orderName":"x"}`)
		require.Equal(t, http.StatusCreated, o.Code, o.Body.String())
		require.Empty(t, o.Header().Get("Idempotent-Replayed"))
		require.NotEqual(t, decode[paymentResponse](t, a).ID, decode[paymentResponse](t, o).ID)

		// Each owner's replay is its own answer.
		requireReplay(t, a, b.postKeyed(t, "shared", "/v1/payments", `{"orderId":"order-idem-7a","amount":100,"orderName":"x"}`))
		requireReplay(t, o, other.postKeyed(t, "shared", "/v1/payments", `{"orderId":"order-idem-7b","amount":100,"orderName":"x"}`))
		require.Equal(t, 2, b.countPayments(t))
		require.Equal(t, 2, b.countIdempotencyRecords(t))
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		clock := newTestClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
		b := setup(t, func(cfg *Config) { cfg.Now = clock.Now })
		first := b.postKeyed(t, "old", "/v1/payments", `{"orderId":"order-idem-8","amount":100,"orderName":"x"}`)
		require.Equal(t, http.StatusCreated, first.Code)
		require.Equal(t, http.StatusCreated, b.postKeyed(t, "older", "/v1/payments",
			`{"orderId":"order-idem-9","amount":100,"orderName":"x"}`).Code)

		clock.Advance(DefaultIdempotencyTTL - time.Second)
		rec := b.postKeyed(t, "old", "/v1/payments", `{"orderId":"order-idem-10","amount":100,"orderName":"x"}`)
		requireProblem(t, rec, http.StatusUnprocessableEntity, codeIdempotencyKeyReused)

		// Past the TTL the key is free again: the expired record is taken
		// over, and the sweep the request starts on the way (due again: over
		// a minute since the last; it runs beside the request) deletes the
		// other expired one.
		clock.Advance(sweepInterval + time.Second)
		require.Eventually(t, func() bool { return !b.server.sweeping.Load() }, 5*time.Second, time.Millisecond,
			"the earlier sweep (it found nothing) is over")
		rec = b.postKeyed(t, "old", "/v1/payments", `{"orderId":"order-idem-10","amount":100,"orderName":"x"}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
		require.Equal(t, 3, b.countPayments(t))
		require.Eventually(t, func() bool { return b.countIdempotencyRecords(t) == 1 }, 5*time.Second, 10*time.Millisecond)
		b.server.Close() // waits for the sweep
		require.False(t, b.server.sweeping.Load())
	})

	t.Run("ServerErrorsAreNotKept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-idem-11", 15000)
		confirm := `{"paymentKey":"pk_idem_11","amount":15000}`
		path := "/v1/payments/" + p.ID + "/confirm"

		for name, outbox := range map[string]Inserter{"Error": failingOutbox{}, "Panic": panickingOutbox{}} {
			t.Run(name, func(t *testing.T) {
				rec := b.with(func(cfg *Config) { cfg.Outbox = outbox }).postKeyed(t, "confirm-11", path, confirm)
				requireProblem(t, rec, http.StatusInternalServerError, payment.CodeInternal)
				require.Equal(t, 0, b.countIdempotencyRecords(t), "the marker is released")
			})
		}
		t.Run("Timeout", func(t *testing.T) {
			slow := b.with(func(cfg *Config) { cfg.Outbox = blockingOutbox{}; cfg.RequestTimeout = 100 * time.Millisecond })
			rec := slow.postKeyed(t, "confirm-11", path, confirm)
			requireProblem(t, rec, http.StatusServiceUnavailable, codeTimeout)
			require.Equal(t, 0, b.countIdempotencyRecords(t), "the marker is released")
		})

		// The retry under the same key runs, and is kept.
		rec := b.postKeyed(t, "confirm-11", path, confirm)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
		requireReplay(t, rec, b.postKeyed(t, "confirm-11", path, confirm))
		require.Equal(t, 1, b.countJobs(t, kindConfirm, p.ID))
	})

	t.Run("AbandonedMarkerIsTakenOver", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := `{"orderId":"order-idem-12","amount":100,"orderName":"x"}`
		hash := requestHash(http.MethodPost, "/v1/payments", []byte(body))
		claim := func(key string, age time.Duration) {
			at := b.now.Add(-age)
			_, claimed, err := b.store.ClaimIdempotencyKey(t.Context(), b.pool, store.IdempotencyRecord{
				Scope: "default/operator", ClientID: b.apiKeyID, Key: key, RequestHash: hash, CreatedAt: at, ExpiresAt: at.Add(DefaultIdempotencyTTL),
			}, at.Add(-time.Hour))
			require.NoError(t, err)
			require.True(t, claimed)
		}
		// A process died holding these markers: one just now, one long ago.
		claim("recent", time.Second)
		claim("abandoned", DefaultRequestTimeout+finishTimeout+staleMargin+time.Second)

		requireProblem(t, b.postKeyed(t, "recent", "/v1/payments", body), http.StatusConflict, codeIdempotencyInProgress)
		rec := b.postKeyed(t, "abandoned", "/v1/payments", body)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		requireReplay(t, rec, b.postKeyed(t, "abandoned", "/v1/payments", body))
	})

	t.Run("BadKeyHeader", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := `{"orderId":"order-idem-13","amount":100,"orderName":"x"}`
		for name, key := range map[string]string{
			"Empty":    "",
			"TooLong":  strings.Repeat("k", maxIdempotencyKeyLen+1),
			"NonASCII": "키-1",
			"Control":  "a\tb",
			"DEL":      "a\x7fb",
		} {
			t.Run(name, func(t *testing.T) {
				rec := b.postKeyed(t, key, "/v1/payments", body)
				requireProblem(t, rec, http.StatusBadRequest, payment.CodeInvalidRequest)
			})
		}
		t.Run("Twice", func(t *testing.T) {
			req := b.request(t, http.MethodPost, "/v1/payments", body, "Content-Type", "application/json")
			req.Header.Add("Idempotency-Key", "a")
			req.Header.Add("Idempotency-Key", "b")
			requireProblem(t, b.serve(req), http.StatusBadRequest, payment.CodeInvalidRequest)
		})
		rec := b.postKeyed(t, strings.Repeat("k", maxIdempotencyKeyLen), "/v1/payments", body)
		require.Equal(t, http.StatusCreated, rec.Code, "255 characters, spaces included, are fine")
		rec = b.postKeyed(t, "with spaces and !\"#$%", "/v1/payments", `{"orderId":"order-idem-14","amount":100,"orderName":"x"}`)
		require.Equal(t, http.StatusCreated, rec.Code)
		require.Equal(t, 2, b.countPayments(t))
	})

	t.Run("OversizedBodyLeavesNoRecord", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := `{"orderId":"order-idem-15","amount":1,"orderName":"` + strings.Repeat("x", int(DefaultBodyLimit)) + `"}`
		requireProblem(t, b.postKeyed(t, "big", "/v1/payments", body), http.StatusRequestEntityTooLarge, codeBodyTooLarge)
		require.Equal(t, 0, b.countIdempotencyRecords(t))
		require.Equal(t, 0, b.countPayments(t))
	})

	t.Run("WithoutTheHeaderNothingIsKept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createPayment(t, "order-idem-16", 100)
		require.Equal(t, 0, b.countIdempotencyRecords(t))
	})
}

// gateOutbox holds each insert until release is closed, after signalling
// entered: a handler stopped in the middle of its transaction.
type gateOutbox struct {
	Inserter
	entered chan struct{}
	release chan struct{}
}

func (g *gateOutbox) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Inserter.InsertTx(ctx, tx, args, opts)
}
