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
// a few hundred payments, relay kills and a Postgres restart, and every
// invariant checked.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system under faults; skipped in -short")
	}
	root, err := systest.RepoRoot()
	require.NoError(t, err)
	if !systest.LocalPostgresAvailable(root) {
		// The Postgres restart needs a cluster of our own; make chaos
		// documents how to run against another database.
		t.Skip("no PostgreSQL server binaries for a local cluster (scripts/localpg bindir)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Payments:         300,
		Concurrency:      16,
		Relays:           2,
		Kills:            3,
		PostgresRestarts: 1,
		Seed:             20261121,
		DrainTimeout:     3 * time.Minute,
		Log:              os.Stderr,
	})
	require.NoError(t, err)
	t.Logf("payments %d, outcomes %v, gateway calls %d, faults %d, lost %d, replayed %d, kills %d, pg restarts %d, api retries %d, unknown %d, in %s",
		rep.Payments, rep.Outcomes, rep.GatewayCalls, rep.FaultsInjected, rep.LostResponses, rep.Replayed,
		rep.Kills, rep.PostgresRestarts, rep.APIRetries, rep.Unknown, rep.Duration.Round(time.Second))
	require.Empty(t, rep.Violations)
	require.Equal(t, 3, rep.Kills)
	require.Equal(t, 1, rep.PostgresRestarts)
	require.Positive(t, rep.FaultsInjected)
	require.Positive(t, rep.LostResponses)
}
