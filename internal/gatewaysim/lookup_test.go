package gatewaysim

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLookup(t *testing.T) {
	t.Parallel()

	b := setup(t)
	auth := b.approved(t, "order-lookup-1", 4_000)
	confirmed := b.confirm(t, auth, "confirm-order-lookup-1") // the stored answer

	byKey := b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil)
	byOrder := b.toss(t, http.MethodGet, "/v1/payments/orders/"+auth.OrderID, "", nil)
	require.Equal(t, confirmed.payment(t), byKey.payment(t))
	require.Equal(t, byKey, byOrder)

	b.toss(t, http.MethodGet, "/v1/payments/tgen_unknown", "", nil).requireError(t, http.StatusNotFound, CodeNotFoundPayment)
	b.toss(t, http.MethodGet, "/v1/payments/orders/order-unknown", "", nil).requireError(t, http.StatusNotFound, CodeNotFoundPayment)

	// The request log attributes the lookup by orderId to the payment.
	records := b.sim.Requests(auth.PaymentKey)
	require.Len(t, records, 4)
	require.Equal(t, "/v1/payments/orders/order-lookup-1", records[3].Path)
	require.Equal(t, OperationLookup, records[3].Operation)
}

func TestLookupScripted(t *testing.T) {
	t.Parallel()

	b := setup(t)
	auth := b.authorize(t, "order-lookup-2", 4_000)
	b.script(t, auth.PaymentKey, OperationLookup, Step{Kind: StepError, Code: "FAILED_INTERNAL_SYSTEM_PROCESSING"}, Step{Kind: StepOK})

	b.toss(t, http.MethodGet, "/v1/payments/orders/"+auth.OrderID, "", nil).
		requireError(t, http.StatusInternalServerError, CodeFailedInternalSystemProcessing)
	require.Equal(t, StatusInProgress, b.toss(t, http.MethodGet, "/v1/payments/"+auth.PaymentKey, "", nil).payment(t).Status)
	require.Equal(t, []string{OutcomeInjected, OutcomeProcessed}, b.outcomes(t, auth.PaymentKey))
}
