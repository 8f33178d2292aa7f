package httpapi

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/faultproxy"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// TestLostCommitAcknowledgement is the cancel that ran twice: its
// transaction committed, the connection dropped before the api saw the
// acknowledgement, the api answered 500 and freed the client's
// Idempotency-Key, and the client's retry made a second cancel and a second
// refund. The answer now commits with the change, so the retry replays it.
func TestLostCommitAcknowledgement(t *testing.T) {
	t.Parallel()

	// throughProxy serves b's api over a pool that reaches Postgres through
	// a fault proxy, and returns the proxy.
	throughProxy := func(t *testing.T, b *testBundle) (*testBundle, *faultproxy.Proxy) {
		t.Helper()
		cc := b.pool.Config().ConnConfig
		p, err := faultproxy.Start(net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))))
		require.NoError(t, err)
		t.Cleanup(p.Close)
		u, err := url.Parse(b.pool.Config().ConnString())
		require.NoError(t, err)
		u.Host = p.Addr()
		q := u.Query()
		q.Set("sslmode", "disable")
		u.RawQuery = q.Encode()
		pool, err := pgxpool.New(t.Context(), u.String())
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return b.with(func(c *Config) { c.Pool = pool }), p
	}

	t.Run("PartialCancelRetriedUnderItsKeyIsReplayed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-lost-0001", 15000)
		b.confirmPayment(t, p.ID, "pk_lost_0001", 15000)
		b.approve(t, p.ID)
		nb, proxy := throughProxy(t, b)

		proxy.LoseNextCommitAcks(1)
		body := `{"reason":"one bag back","amount":3000}`
		first := nb.postKeyed(t, "refund-1", "/v1/payments/"+p.ID+"/cancel", body)
		require.Equal(t, http.StatusInternalServerError, first.Code, first.Body.String())
		require.Equal(t, int64(1), proxy.Stats().AcksLost, "the fault fired")
		// The commit went through although the api could not tell.
		require.Equal(t, 1, b.countCancels(t, p.ID))

		retry := nb.postKeyed(t, "refund-1", "/v1/payments/"+p.ID+"/cancel", body)
		require.Equal(t, http.StatusAccepted, retry.Code, retry.Body.String())
		require.Equal(t, "true", retry.Header().Get(headerIdempotentReplayed))
		got := decode[paymentResponse](t, retry)
		require.Equal(t, "canceling", got.Status)
		require.Equal(t, 1, b.countCancels(t, p.ID), "one cancel, not two")
		require.Equal(t, 1, b.countJobs(t, kindCancel, p.ID), "one refund in the outbox")
	})

	t.Run("FullCancelRetriedWithoutAKeyRefundsNothingMore", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPayment(t, "order-lost-0002", 15000)
		b.confirmPayment(t, p.ID, "pk_lost_0002", 15000)
		b.approve(t, p.ID)
		nb, proxy := throughProxy(t, b)

		proxy.LoseNextCommitAcks(1)
		first := nb.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"all back"}`)
		require.Equal(t, http.StatusInternalServerError, first.Code, first.Body.String())
		retry := nb.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"all back"}`)
		requireProblem(t, retry, http.StatusConflict, payment.CodeCancelInProgress)
		require.Equal(t, 1, b.countCancels(t, p.ID))
		require.Equal(t, 1, b.countJobs(t, kindCancel, p.ID))
	})
}
