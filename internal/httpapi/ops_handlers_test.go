package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// flow returns the use cases on the bundle's database, for putting payments
// into the states the relay would leave them in.
func (b *testBundle) flow(t *testing.T) *payflow.Flow {
	t.Helper()
	outbox, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	f, err := payflow.New(payflow.Config{Store: b.store, Outbox: outbox})
	require.NoError(t, err)
	return f
}

// inTx runs fn in a transaction on the bundle's database.
func (b *testBundle) inTx(t *testing.T, fn func(tx pgx.Tx) error) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(t.Context(), b.pool, fn))
}

// refusedCompensation returns a payment the way the relay leaves one whose
// compensating cancel the gateway refused: the gateway approved another
// amount than the intent, the relay sent the money back, and the gateway
// said no. It sits in unknown for a person.
func (b *testBundle) refusedCompensation(t *testing.T, orderID string) paymentResponse {
	t.Helper()
	p := b.createPayment(t, orderID, 15000)
	b.confirmPayment(t, p.ID, "pk_"+orderID, 15000)
	f := b.flow(t)
	var compensation *payment.Cancel
	b.inTx(t, func(tx pgx.Tx) error {
		ch, err := f.RecordApproval(t.Context(), tx, p.ID, payment.Approval{
			OrderID: orderID, TotalAmount: 16000, BalanceAmount: 16000, Method: "카드", ApprovedAt: b.now,
		})
		compensation = ch.Compensation
		return err
	})
	require.NotNil(t, compensation, "an approval of another amount is compensated")
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := f.RecordCancelRefusal(t.Context(), tx, p.ID, compensation.ID, "NOT_CANCELABLE_PAYMENT", "not cancelable now")
		return err
	})
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	return p
}

// givenUpConfirm returns a payment whose confirm spent its retry budget:
// unknown, never approved.
func (b *testBundle) givenUpConfirm(t *testing.T, orderID string) paymentResponse {
	t.Helper()
	p := b.createPayment(t, orderID, 5000)
	b.confirmPayment(t, p.ID, "pk_"+orderID, 5000)
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := b.flow(t).GiveUpConfirm(t.Context(), tx, p.ID, "PROVIDER_ERROR", "no answer")
		return err
	})
	return p
}

func (b *testBundle) countActions(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM operator_actions").Scan(&n))
	return n
}

func TestScopes(t *testing.T) {
	t.Parallel()
	b := setup(t, withResolver("93.184.215.14"))
	checkoutKey, checkoutID := b.createScopedKey(t, "checkout", apikey.ScopeCheckout)
	readonlyKey, readonlyID := b.createScopedKey(t, "readonly", apikey.ScopeReadonly)
	checkout, readonly := b.as(checkoutKey, checkoutID), b.as(readonlyKey, readonlyID)

	p := checkout.createPayment(t, "order-scope-1", 1000)
	require.Equal(t, http.StatusOK, checkout.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Code)
	require.Equal(t, http.StatusOK, readonly.do(t, http.MethodGet, "/v1/payments/"+p.ID, "").Code)
	require.Equal(t, http.StatusOK, readonly.do(t, http.MethodGet, "/v1/payments?orderId=order-scope-1", "").Code)
	require.Equal(t, http.StatusOK, readonly.do(t, http.MethodGet, "/v1/ops/payments/"+p.ID+"/actions", "").Code)
	// The webhook endpoints are the checkout's to manage (and an operator's).
	hook := checkout.createEndpoint(t, `{"url":"https://shop.example/hooks"}`)
	require.Equal(t, http.StatusOK, checkout.do(t, http.MethodGet, "/v1/webhook-endpoints", "").Code)
	require.Equal(t, http.StatusOK, checkout.do(t, http.MethodGet, "/v1/webhook-endpoints/"+hook.ID+"/deliveries", "").Code)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/webhook-endpoints", "").Code, "operator")

	const reason = `{"reason":"checking"}`
	for _, tt := range []struct {
		who          *testBundle
		method, path string
		body         string
	}{
		{readonly, http.MethodPost, "/v1/payments", `{"orderId":"order-scope-2","amount":1000,"orderName":"Socks"}`},
		{readonly, http.MethodPost, "/v1/payments/" + p.ID + "/cancel", `{"reason":"no"}`},
		{readonly, http.MethodGet, "/v1/payments/attention", ""},
		{readonly, http.MethodPost, "/v1/ops/payments/" + p.ID + "/acknowledge", reason},
		{checkout, http.MethodGet, "/v1/payments/attention", ""},
		{checkout, http.MethodGet, "/v1/ops/payments/" + p.ID + "/actions", ""},
		{checkout, http.MethodPost, "/v1/ops/payments/" + p.ID + "/lookup", reason},
		{checkout, http.MethodPost, "/v1/ops/jobs/1/retry", reason},
		{readonly, http.MethodPost, "/v1/webhook-endpoints", `{"url":"https://shop.example/other"}`},
		{readonly, http.MethodGet, "/v1/webhook-endpoints", ""},
		{readonly, http.MethodPost, "/v1/webhook-endpoints/" + hook.ID + "/disable", ""},
		{readonly, http.MethodPost, "/v1/webhook-endpoints/" + hook.ID + "/rotate-secret", ""},
		{readonly, http.MethodGet, "/v1/webhook-endpoints/" + hook.ID + "/deliveries", ""},
		{readonly, http.MethodPost, "/v1/webhook-endpoints/" + hook.ID + "/deliveries/" + uuid.NewString() + "/redeliver", ""},
	} {
		rec := tt.who.do(t, tt.method, tt.path, tt.body, "Content-Type", "application/json")
		pr := requireProblem(t, rec, http.StatusForbidden, codeInsufficientScope)
		require.Contains(t, pr.Detail, "operator", "%s %s says which scope would do", tt.method, tt.path)
	}
	require.Equal(t, 1, b.countPayments(t), "nothing outside a key's scope was written")
	require.Zero(t, b.countCancels(t, p.ID))
	require.Zero(t, b.countActions(t))
	endpoints, err := b.store.WebhookEndpoints(t.Context(), b.pool, payment.Everyone())
	require.NoError(t, err)
	require.Len(t, endpoints, 1, "only the checkout's")
	require.Nil(t, endpoints[0].DisabledAt)
	require.Nil(t, endpoints[0].PreviousSecretExpiresAt, "not rotated")
}

func TestOpsResendRefusedCompensation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.refusedCompensation(t, "order-ops-resend")
	path := "/v1/ops/payments/" + p.ID + "/resend-cancel"

	// Bad input changes nothing.
	for _, body := range []string{`{}`, `{"reason":"  "}`, `{"reason":"x","amount":5}`, `{"reason":"x","cancelId":"0190a0c8-0000-7000-8000-000000000000"}`} {
		rec := b.postJSON(t, path, body)
		require.True(t, rec.Code == http.StatusBadRequest || rec.Code == http.StatusNotFound, "%s: %d %s", body, rec.Code, rec.Body.String())
	}
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	require.Zero(t, b.countActions(t))
	require.Equal(t, 1, b.countJobs(t, "payment_cancel", p.ID), "only the first compensation's job")

	rec := b.postJSON(t, path, `{"reason":"card company says the refusal was their outage"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	a := decode[operatorActionResponse](t, rec)
	require.Equal(t, "resend_cancel", a.Action)
	require.Equal(t, "unknown", a.StatusBefore)
	require.Equal(t, "canceling", a.StatusAfter)
	require.Equal(t, b.apiKeyID, a.APIKeyID)
	require.Equal(t, "test client", a.APIKeyName)
	require.NotNil(t, a.JobID)
	require.Contains(t, a.Detail, "refundableAmount 16000", "the relay sends the gateway's balance as we know it")

	got := decode[paymentResponse](t, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, ""))
	require.Equal(t, "canceling", got.Status)
	require.Len(t, got.Cancels, 1)
	c := got.Cancels[0]
	require.Equal(t, "pending", c.Status)
	require.Equal(t, "compensation", c.Kind)
	require.Equal(t, payment.NextCancelIdempotencyKey(c.ID, payment.CancelIdempotencyKey(c.ID)), c.IdempotencyKey, "a new key")
	require.Equal(t, 2, b.countJobs(t, "payment_cancel", p.ID), "its job is in the outbox")

	// Once pending it is not refused any more: a second resend is refused.
	requireProblem(t, b.postJSON(t, path, `{"reason":"again"}`), http.StatusConflict, payment.CodeInvalidState)

	trail := decode[operatorActionListResponse](t, b.do(t, http.MethodGet, "/v1/ops/payments/"+p.ID+"/actions", ""))
	require.Len(t, trail.Actions, 1)
	require.Equal(t, a.ID, trail.Actions[0].ID)
	require.Equal(t, "card company says the refusal was their outage", trail.Actions[0].Reason)
}

func TestOpsAcknowledge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.givenUpConfirm(t, "order-ops-ack")
	// The attention list reads the server's clock (b.now); the row must
	// look older than that.
	_, err := b.pool.Exec(t.Context(), "UPDATE payments SET updated_at = $2 WHERE id = $1", p.ID, b.now.Add(-time.Hour))
	require.NoError(t, err)
	attention := func() []paymentSummaryResponse {
		return decode[paymentListResponse](t, b.do(t, http.MethodGet, "/v1/payments/attention?olderThan=0s", "")).Payments
	}
	require.Len(t, attention(), 1)

	requireProblem(t, b.postJSON(t, "/v1/ops/payments/"+p.ID+"/acknowledge", `{"reason":""}`), http.StatusBadRequest, payment.CodeInvalidRequest)
	rec := b.postJSON(t, "/v1/ops/payments/"+p.ID+"/acknowledge", `{"reason":"customer refunded by phone, ticket 4411"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	a := decode[operatorActionResponse](t, rec)
	require.Equal(t, "unknown", a.StatusBefore)
	require.Equal(t, "unknown", a.StatusAfter, "the status is kept")
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	require.Empty(t, attention(), "off the list")
	stored, err := b.store.Payment(t.Context(), b.pool, p.ID)
	require.NoError(t, err)
	require.NotNil(t, stored.AcknowledgedAt)

	// Only unknown is on the alert list.
	other := b.createPayment(t, "order-ops-ack-2", 1000)
	requireProblem(t, b.postJSON(t, "/v1/ops/payments/"+other.ID+"/acknowledge", `{"reason":"x"}`), http.StatusConflict, payment.CodeInvalidState)
	requireProblem(t, b.postJSON(t, "/v1/ops/payments/0190a0c8-0000-7000-8000-000000000000/acknowledge", `{"reason":"x"}`), http.StatusNotFound, payment.CodeNotFound)

	// A later move (the gateway's record settles it) ends the
	// acknowledgement, so a payment that comes back to unknown pages again.
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := b.flow(t).RecordRefusal(t.Context(), tx, p.ID, payment.StatusFailed, "REJECT_CARD_PAYMENT", "declined")
		return err
	})
	stored, err = b.store.Payment(t.Context(), b.pool, p.ID)
	require.NoError(t, err)
	require.Nil(t, stored.AcknowledgedAt)
}

func TestOpsLookupAndResolve(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.givenUpConfirm(t, "order-ops-lookup")

	for _, action := range []string{"lookup", "resolve"} {
		rec := b.postJSON(t, "/v1/ops/payments/"+p.ID+"/"+action, `{"reason":"customer says the card was charged"}`)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		a := decode[operatorActionResponse](t, rec)
		require.Equal(t, action, a.Action)
		require.Nil(t, a.Outcome, "the relay has not looked yet")
		require.NotNil(t, a.JobID)
		var args string
		require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT args::text FROM river_job WHERE id = $1", *a.JobID).Scan(&args))
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(args), &got))
		require.Equal(t, p.ID, got["paymentId"])
		require.EqualValues(t, a.ID, got["actionId"], "the relay writes its outcome on this row")
		require.Equal(t, action == "resolve", got["resolve"] == true)
	}
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID), "nothing settles before the gateway is asked")

	// Resolve is for a payment waiting on the gateway; lookup needs one the
	// gateway has seen.
	ready := b.createPayment(t, "order-ops-lookup-2", 1000)
	requireProblem(t, b.postJSON(t, "/v1/ops/payments/"+ready.ID+"/lookup", `{"reason":"x"}`), http.StatusConflict, payment.CodeInvalidState)
	b.confirmPayment(t, ready.ID, "pk_order-ops-lookup-2", 1000)
	b.approve(t, ready.ID)
	requireProblem(t, b.postJSON(t, "/v1/ops/payments/"+ready.ID+"/resolve", `{"reason":"x"}`), http.StatusConflict, payment.CodeInvalidState)
	require.Equal(t, 2, b.countActions(t))
}

func TestOpsRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-ops-retry", 1000)
	b.confirmPayment(t, p.ID, "pk_order-ops-retry", 1000)
	var jobID int64
	require.NoError(t, b.pool.QueryRow(t.Context(),
		"UPDATE river_job SET state = 'retryable', attempt = 3, scheduled_at = now() + interval '1 minute' WHERE kind = 'payment_confirm' AND args->>'paymentId' = $1 RETURNING id", p.ID).Scan(&jobID))

	path := "/v1/ops/payments/" + p.ID + "/retry"
	rec := b.postJSON(t, path, `{"reason":"gateway is back"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	a := decode[operatorActionResponse](t, rec)
	require.Equal(t, jobID, *a.JobID, "the same job, so the same key")
	require.Contains(t, a.Detail, "confirm-"+p.ID+"-1")
	var state string
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT state::text FROM river_job WHERE id = $1", jobID).Scan(&state))
	require.Equal(t, "available", state)
	require.Equal(t, 1, b.countJobs(t, "payment_confirm", p.ID), "no second confirm job")

	// Already waiting to run: nothing to do, and nothing recorded.
	requireProblem(t, b.postJSON(t, path, `{"reason":"again"}`), http.StatusConflict, payment.CodeInvalidState)
	require.Equal(t, 1, b.countActions(t))

	// A payment with no confirm or cancel due has no job to retry.
	b.approve(t, p.ID)
	requireProblem(t, b.postJSON(t, path, `{"reason":"x"}`), http.StatusConflict, payment.CodeInvalidState)
}

func TestOpsRetryJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-ops-job", 1000)
	b.confirmPayment(t, p.ID, "pk_order-ops-job", 1000)
	var jobID int64
	require.NoError(t, b.pool.QueryRow(t.Context(),
		`UPDATE river_job SET state = 'discarded', attempt = max_attempts, finalized_at = now(),
		 errors = ARRAY['{"at":"2026-11-21T12:00:00Z","attempt":20,"error":"gateway timeout"}'::jsonb]
		 WHERE kind = 'payment_confirm' RETURNING id`).Scan(&jobID))
	path := "/v1/ops/jobs/" + strconv.FormatInt(jobID, 10) + "/retry"

	requireProblem(t, b.postJSON(t, path, `{}`), http.StatusBadRequest, payment.CodeInvalidRequest)
	rec := b.postJSON(t, path, `{"reason":"the gateway's outage is over"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	a := decode[operatorActionResponse](t, rec)
	require.Equal(t, "retry_job", a.Action)
	require.Equal(t, p.ID, a.PaymentID)
	require.Contains(t, a.Detail, "gateway timeout", "its last error is kept in the audit trail")
	var state string
	var maxAttempts int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT state::text, max_attempts FROM river_job WHERE id = $1", jobID).Scan(&state, &maxAttempts))
	require.Equal(t, "available", state)
	require.Equal(t, 21, maxAttempts, "one more attempt")

	requireProblem(t, b.postJSON(t, path, `{"reason":"again"}`), http.StatusConflict, payment.CodeInvalidState)
	requireProblem(t, b.postJSON(t, "/v1/ops/jobs/999999/retry", `{"reason":"x"}`), http.StatusNotFound, payment.CodeJobNotFound)
	requireProblem(t, b.postJSON(t, "/v1/ops/jobs/nope/retry", `{"reason":"x"}`), http.StatusNotFound, payment.CodeJobNotFound)
}

// TestOpsSettleCancel: an operator's decision on a cancel in unknown is
// recorded and handed to a lookup; bad input is refused and changes
// nothing.
func TestOpsSettleCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPayment(t, "order-ops-settle", 15000)
	b.confirmPayment(t, p.ID, "pk_order-ops-settle", 15000)
	f := b.flow(t)
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := f.RecordApproval(t.Context(), tx, p.ID, payment.Approval{
			OrderID: "order-ops-settle", TotalAmount: 15000, BalanceAmount: 15000, Method: "카드", ApprovedAt: b.now,
		})
		return err
	})
	path := "/v1/ops/payments/" + p.ID + "/settle-cancel"
	// No cancel in unknown yet.
	requireProblem(t, b.postJSON(t, path, `{"reason":"x","decision":"done"}`), http.StatusConflict, payment.CodeInvalidState)

	rec := b.postJSON(t, "/v1/payments/"+p.ID+"/cancel", `{"reason":"returned"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	got := decode[paymentResponse](t, b.do(t, http.MethodGet, "/v1/payments/"+p.ID, ""))
	require.Len(t, got.Cancels, 1)
	cancelID := got.Cancels[0].ID
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := f.GiveUpCancel(t.Context(), tx, p.ID, cancelID, payment.CodeUnexplainedBalance, "cannot tell")
		return err
	})
	lookups := b.countJobs(t, "payment_lookup", p.ID)

	for _, body := range []string{
		`{}`, `{"reason":"x"}`, `{"decision":"done"}`, `{"reason":"x","decision":"guess"}`,
		`{"reason":"x","decision":"done","status":"canceled"}`,
		`{"reason":"x","decision":"done","cancelId":"0190a0c8-0000-7000-8000-000000000000"}`,
	} {
		rec := b.postJSON(t, path, body)
		require.True(t, rec.Code == http.StatusBadRequest || rec.Code == http.StatusNotFound, "%s: %d %s", body, rec.Code, rec.Body.String())
	}
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	require.Zero(t, b.countActions(t))
	require.Equal(t, lookups, b.countJobs(t, "payment_lookup", p.ID))

	rec = b.postJSON(t, path, `{"reason":"checked the gateway's console","decision":"resend"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	a := decode[operatorActionResponse](t, rec)
	require.Equal(t, "settle_cancel", a.Action)
	require.Equal(t, cancelID, a.CancelID)
	require.Equal(t, "unknown", a.StatusAfter, "the decision sets nothing: the lookup carries it out")
	require.NotNil(t, a.JobID)
	require.Contains(t, a.Detail, `"resend"`)
	require.Equal(t, lookups+1, b.countJobs(t, "payment_lookup", p.ID))
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
}

// TestOpsRefundAccount: refund-account checks its input before anything
// is written, and is refused for a payment whose refund needs no account
// (a card's refused compensation goes back by resend-cancel). The whole
// way of a held virtual-account deposit is the relay's TestVirtualAccount.
func TestOpsRefundAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.refusedCompensation(t, "order-ops-refund-account")
	path := "/v1/ops/payments/" + p.ID + "/refund-account"
	good := `"refundReceiveAccount":{"bank":"88","accountNumber":"11012345678","holderName":"김토스"}`

	for body, code := range map[string]string{
		`{"reason":"x"}`: payment.CodeRefundAccountRequired,
		`{` + good + `}`: payment.CodeInvalidRequest,
		`{"reason":"x","refundReceiveAccount":{"bank":"88","accountNumber":"110-1234","holderName":"김토스"}}`: payment.CodeInvalidRequest,
		`{"reason":"x",` + good + `,"amount":5}`: codeUnknownField,
	} {
		requireProblem(t, b.postJSON(t, path, body), http.StatusBadRequest, code)
	}
	requireProblem(t, b.postJSON(t, path, `{"reason":"customer gave it",`+good+`}`), http.StatusConflict, payment.CodeInvalidState)
	require.Equal(t, payment.StatusUnknown, b.status(t, p.ID))
	require.Zero(t, b.countActions(t))
	require.Equal(t, 1, b.countJobs(t, "payment_cancel", p.ID), "nothing enqueued")
}
