package httpapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// webhookCount reads payment_outbox_gateway_webhooks_total for one gateway
// and outcome from the test server's registry.
func (b *testBundle) webhookCount(t *testing.T, gateway, outcome string) float64 {
	t.Helper()
	families, err := b.metrics.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "payment_outbox_gateway_webhooks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["gateway"] == gateway && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	require.Failf(t, "no such series", "payment_outbox_gateway_webhooks_total{gateway=%q,outcome=%q}", gateway, outcome)
	return 0
}
