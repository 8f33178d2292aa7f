package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/systest"
)

// The relays' River settings a pause has to outlast, and River's own.
const (
	// rescueAfter is the RELAY_RESCUE_AFTER the relays get: a job running
	// longer is taken for stranded. The relay requires it to exceed its job
	// timeout, twice RELAY_GATEWAY_TIMEOUT (2s) plus 20s.
	rescueAfter = 25 * time.Second
	// rescuerInterval is how often River's rescuer looks for such jobs (on
	// the leader; River does not let it be configured).
	rescuerInterval = 30 * time.Second
	// leaderHandover covers the paused relay being the leader: River's
	// leadership lasts 15s unrenewed, and elections run every 5s.
	leaderHandover = 20 * time.Second
	// pauseSettle is how long after the SIGSTOP the live relays get to
	// finish what they were running, so the jobs still running are the
	// paused relay's.
	pauseSettle = 3 * time.Second
	// afterRescue keeps the relay paused a little past the rescue, for a
	// live relay to run the rescued jobs again while the first runs sleep.
	afterRescue = 6 * time.Second
	// rescuedError is the error River records on a job it rescued.
	rescuedError = "Stuck job rescued by JobRescuer"
)

type pauseResult struct {
	held    int // jobs the relay was running when it froze
	rescued int // of those, how many River handed to another relay meanwhile
}

// pauseRelay freezes relay (SIGSTOP) for longer than RELAY_RESCUE_AFTER, so
// River rescues the jobs it was running and a live relay runs them again
// while the first runs are still alive, then thaws it (SIGCONT): each first
// run carries on where it stopped, its gateway call or its commit, unaware
// that its job was handed on. The pause lasts until every job the relay
// held was rescued (and a little longer), at least rescueAfter and a
// second, at most until the rescue must have happened.
func (s *system) pauseRelay(ctx context.Context, relay *systest.Process, logf func(string, ...any)) (pauseResult, error) {
	start := time.Now()
	if err := relay.Pause(); err != nil {
		return pauseResult{}, err
	}
	logf("SIGSTOP %s", relay.Name)
	defer func() {
		if err := relay.Resume(); err != nil {
			logf("could not resume %s: %v", relay.Name, err)
			return
		}
		logf("SIGCONT %s after %s", relay.Name, time.Since(start).Round(100*time.Millisecond))
	}()

	minEnd := start.Add(rescueAfter + time.Second)
	maxEnd := start.Add(rescueAfter + rescuerInterval + leaderHandover)
	if !sleepCtx(ctx, pauseSettle) {
		return pauseResult{}, ctx.Err()
	}
	// The jobs the paused relay is running: every job its River client
	// holds now, the settle time after the SIGSTOP (a fetch it sent just
	// before may have taken jobs a moment after).
	var ids []int64
	var attempts []int32
	var client string
	for {
		var err error
		client, err = s.riverClientOf(ctx, relay)
		if err == nil && client == "" {
			logf("pause of %s: no job running under a River client it made since it started at %s",
				relay.Name, relay.StartedAt().UTC().Format("15:04:05.000000"))
			break
		}
		if err == nil {
			err = s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(attempt::int4), '{}')
				FROM river_job WHERE state = 'running'
				AND attempted_by[array_length(attempted_by, 1)] = $1`, client).Scan(&ids, &attempts)
		}
		if err == nil {
			break
		}
		// Postgres may be restarting or failing over under us.
		if time.Now().After(minEnd) || !sleepCtx(ctx, 500*time.Millisecond) {
			logf("pause of %s: could not read the jobs it holds: %v", relay.Name, err)
			break
		}
	}

	var allRescued time.Time
	for time.Now().Before(maxEnd) {
		if now := time.Now(); now.After(minEnd) {
			var running int
			err := s.pool.QueryRow(ctx, `SELECT count(*) FROM river_job j
				JOIN unnest($1::bigint[], $2::int4[]) AS held (id, attempt) ON j.id = held.id
				WHERE j.state = 'running' AND j.attempt = held.attempt`, ids, attempts).Scan(&running)
			if err == nil && running == 0 {
				if allRescued.IsZero() {
					allRescued = now
				}
				if len(ids) == 0 || now.Sub(allRescued) >= afterRescue {
					break
				}
			}
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return pauseResult{}, ctx.Err()
		}
	}

	res := pauseResult{held: len(ids)}
	if len(ids) > 0 {
		err := s.pool.QueryRow(ctx, `SELECT count(DISTINCT j.id) FROM river_job j, unnest(j.errors) AS e
			WHERE j.id = ANY($1) AND e->>'error' = $2 AND (e->>'at')::timestamptz >= $3`,
			ids, rescuedError, start).Scan(&res.rescued)
		if err != nil {
			logf("pause of %s: could not count the jobs rescued meanwhile: %v", relay.Name, err)
		}
	}
	logf("pause of %s: it held %d running jobs (River client %s), %d rescued meanwhile", relay.Name, res.held, client, res.rescued)
	return res, nil
}

// riverClientOf finds the River client of relay's current run among those
// running jobs. River names a client after its host and the moment it was
// made (UTC, to the microsecond), which for the relay is just after the
// process starts: the first client made after the process started is its.
// It returns "" when that client runs no job.
func (s *system) riverClientOf(ctx context.Context, relay *systest.Process) (string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT attempted_by[array_length(attempted_by, 1)]
		FROM river_job WHERE state = 'running'`)
	if err != nil {
		return "", fmt.Errorf("error listing River clients: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("error listing River clients: %w", err)
	}
	// A little slack for the clocks' rounding.
	after := relay.StartedAt().Add(-100 * time.Millisecond)
	var best string
	var bestAt time.Time
	for _, id := range ids {
		at, ok := riverClientTime(id)
		if !ok || at.Before(after) {
			continue
		}
		if best == "" || at.Before(bestAt) {
			best, bestAt = id, at
		}
	}
	return best, nil
}

// riverClientTime reads the creation time from a River client ID,
// HOST_2006_01_02T15_04_05_000000.
func riverClientTime(id string) (time.Time, bool) {
	const stamp = len("2006_01_02T15_04_05_000000")
	if len(id) < stamp+1 {
		return time.Time{}, false
	}
	s := id[len(id)-stamp:]
	at, err := time.Parse("2006_01_02T15_04_05.000000", s[:19]+"."+s[20:])
	return at, err == nil
}

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
