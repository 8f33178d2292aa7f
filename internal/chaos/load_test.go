package chaos

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlanPaymentsUnasked(t *testing.T) {
	plan := func(cfg Config) map[kind]int {
		cfg.defaults()
		kinds := map[kind]int{}
		for _, p := range planPayments(cfg, rand.New(rand.NewPCG(1, 2))) {
			kinds[p.kind]++
			if p.gateway == gatewayToss {
				require.NotContains(t, []kind{kindNeverConfirm, kindCancelUnconfirmed, kindLatePay}, p.kind, "only PortOne charges before our confirm")
			}
			if p.console {
				require.True(t, p.charges(), "a console refund needs a charge")
				require.True(t, p.consoleAmount >= 0 && p.consoleAmount <= p.amount/2, "at most half: %d of %d", p.consoleAmount, p.amount)
				kinds["console"]++
			}
		}
		return kinds
	}
	got := plan(Config{Payments: 4000, PortOneShare: 0.5, NeverConfirmRate: 0.2, CancelUnconfirmedRate: 0.5, LatePayRate: 0.1, ConsoleRefundRate: 0.1})
	// About 2000 PortOne payments: 400 never confirmed (half of them then
	// canceled), 200 paying late; about 300 console refunds.
	require.InDelta(t, 200, got[kindNeverConfirm], 60)
	require.InDelta(t, 200, got[kindCancelUnconfirmed], 60)
	require.InDelta(t, 200, got[kindLatePay], 60)
	require.InDelta(t, 330, got["console"], 90)

	off := plan(Config{Payments: 4000, PortOneShare: 0.5, NeverConfirmRate: -1, LatePayRate: -1, ConsoleRefundRate: -1})
	require.Zero(t, off[kindNeverConfirm]+off[kindCancelUnconfirmed]+off[kindLatePay]+off["console"], "a negative rate turns the fault off")
}

func TestPlanPaymentsVirtualAccounts(t *testing.T) {
	cfg := Config{Payments: 4000, PortOneShare: 0.5, VAShare: 0.2}
	cfg.defaults()
	kinds := map[kind]int{}
	gateways := map[string]int{}
	for _, p := range planPayments(cfg, rand.New(rand.NewPCG(3, 4))) {
		if !p.isVA() {
			continue
		}
		kinds[p.kind]++
		gateways[p.gateway]++
		require.False(t, p.console, "no console refund of a virtual account")
		if p.kind == kindVAWrong {
			require.NotEqual(t, p.amount, p.depositAmount)
			require.Positive(t, p.depositAmount)
		}
		if p.forge {
			require.Equal(t, gatewayToss, p.gateway, "only Toss's DEPOSIT_CALLBACK carries a secret to forge")
		}
		require.Equal(t, p.kind != kindVANever, p.charges())
	}
	// 800 virtual accounts exactly, half of each gateway, every kind.
	require.Equal(t, 800, kinds[kindVAEarly]+kinds[kindVALate]+kinds[kindVAWrong]+kinds[kindVANever])
	require.InDelta(t, 400, gateways[gatewayToss], 80)
	for _, k := range []kind{kindVAEarly, kindVALate, kindVAWrong, kindVANever} {
		require.Positive(t, kinds[k], k)
	}

	off := Config{Payments: 1000, VAShare: -1}
	off.defaults()
	for _, p := range planPayments(off, rand.New(rand.NewPCG(3, 4))) {
		require.False(t, p.isVA(), "a negative share turns them off")
	}
}
