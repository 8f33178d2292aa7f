package chaos

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/systest"
)

// TestChaosShort is the short variant of `make chaos` that `make test` runs:
// a few hundred payments and a small dose of every fault (relay kills and
// a pause, a Postgres restart and a failover, lost COMMIT acknowledgements,
// held gateway requests, PortOne customers who never confirm or pay late,
// console refunds, webhooks dropped, duplicated and delayed), and every
// invariant checked. The pause sets its length: more than
// RELAY_RESCUE_AFTER (25s), until River has rescued what
// the paused relay held.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system under faults; skipped in -short")
	}
	root, err := systest.RepoRoot()
	require.NoError(t, err)
	if !systest.LocalPostgresAvailable(root) {
		// The Postgres restart and failover need a cluster of our own;
		// make chaos documents how to run against another database.
		t.Skip("no PostgreSQL server binaries for a local cluster (scripts/localpg bindir)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Payments:         300,
		PortOneShare:     0.3,
		Concurrency:      16,
		Relays:           2,
		Kills:            2,
		Pauses:           1,
		PostgresRestarts: 1,
		Failover:         true,
		CommitLossRate:   0.02,
		HoldRate:         0.05,
		HoldFor:          3 * time.Second,
		// A small share paid by virtual account (early, late, another
		// amount, never), some with a forged DEPOSIT_CALLBACK.
		VAShare:      0.1,
		Seed:         20261121,
		DrainTimeout: 3 * time.Minute,
		Log:          os.Stderr,
	})
	require.NoError(t, err)
	t.Logf("payments %d, outcomes %v, gateway calls %d (%v), faults %d, lost %d, replayed %d, timeouts %d, "+
		"kills %d, pauses %d (%d jobs stuck, %d rescued), pg restarts %d, failovers %d, commit acks lost %d of %d, "+
		"api retries %d (%d replayed), unknown %d, checked %+v, skipped %q, in %s",
		rep.Payments, rep.Outcomes, rep.GatewayCalls, rep.GatewayOutcomes, rep.FaultsInjected, rep.LostResponses, rep.Replayed, rep.GatewayTimeouts,
		rep.Kills, rep.Pauses, rep.PausedJobs, rep.RescuedWhilePaused, rep.PostgresRestarts, rep.Failovers, rep.CommitAcksLost, rep.CommitsSeen,
		rep.APIRetries, rep.APIReplayed, rep.Unknown, rep.Checked, rep.Skipped, rep.Duration.Round(time.Second))
	t.Logf("webhooks %+v, by gateway %v", rep.Webhooks, rep.ByGateway)
	t.Logf("unasked %+v, gateway webhooks %+v, books %+v", rep.Unasked, rep.GatewayWebhooks, rep.Books)
	require.Empty(t, rep.Violations)
	require.Equal(t, 2, rep.Kills)
	require.Equal(t, 1, rep.Pauses)
	require.Equal(t, 1, rep.PostgresRestarts)
	require.Equal(t, 1, rep.Failovers)
	require.Positive(t, rep.FaultsInjected)
	require.Positive(t, rep.LostResponses)
	require.Positive(t, rep.CommitAcksLost)
	require.Equal(t, rep.Payments, rep.Checked.Payments)
	require.Positive(t, rep.ByGateway["toss"]["confirmed"], "Toss payments went through")
	require.Positive(t, rep.Webhooks.Received, "webhooks arrived")
	require.Equal(t, rep.Webhooks.Written, rep.Webhooks.Received, "every status change delivered")
	require.Positive(t, rep.ByGateway["portone"]["confirmed"], "PortOne payments went through")
	// Held past the relay's timeout: it gave up waiting at least once.
	require.Positive(t, rep.GatewayTimeouts)
	// The money that moved without our asking, at the default rates.
	require.Positive(t, rep.Unasked.NeverConfirmed, "PortOne customers who never confirmed")
	require.Positive(t, rep.Unasked.LatePayments, "PortOne customers who paid after expiry")
	require.Positive(t, rep.Unasked.ConsoleRefunds+rep.Unasked.ConsoleRefused, "console refunds tried")
	require.Zero(t, rep.Unasked.ChargedUnsettled, "nothing charged at the gateway and not here")
	portone := rep.GatewayWebhooks["portone"]
	require.Positive(t, portone.Delivered, "PortOne webhooks sent")
	require.Positive(t, portone.Dropped+portone.Duplicated, "PortOne webhooks dropped or duplicated")
	require.Positive(t, rep.GatewayWebhooks["toss"].Events, "Toss webhooks sent")
	// A reconciliation run of each gateway's books after the drain, and it
	// compared what there was (no difference: Violations is empty).
	// Virtual accounts: deposits made, one of another amount held for
	// its refund account and given it, forged callbacks answered and
	// ignored (their plans' ends are checked).
	va := rep.Unasked.VA
	t.Logf("virtual accounts %+v", va)
	require.Positive(t, va.Deposits, "virtual-account deposits")
	require.Positive(t, va.Payments[string(kindVANever)]+va.Missed, "virtual accounts never paid")
	require.Positive(t, va.AccountsGiven, "refund accounts given for deposits of another amount")
	require.Equal(t, va.Held, va.AccountsGiven)
	require.Positive(t, va.Forged, "forged DEPOSIT_CALLBACKs")
	require.Positive(t, va.ForgedAccepted, "forged DEPOSIT_CALLBACKs answered as any webhook")
	require.Equal(t, 2, rep.Books.Runs)
	require.Positive(t, rep.Books.Matched)
}
