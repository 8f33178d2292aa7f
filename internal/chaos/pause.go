package chaos

import (
	"context"
	"strings"
	"time"

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
	// pauseSettle is how long after the SIGSTOP the running jobs are
	// looked at: a fetch the relay sent just before may land after it.
	pauseSettle = 3 * time.Second
	// afterRescue keeps the relay paused a little past the rescue, for a
	// live relay to run the rescued jobs again while the first runs sleep.
	afterRescue = 6 * time.Second
	// rescuedError is the error River records on a job it rescued.
	rescuedError = "Stuck job rescued by JobRescuer"
)

type pauseResult struct {
	held    int // jobs stuck in running during the pause (the paused relay's and any a kill stranded)
	rescued int // of those, how many River handed to another relay meanwhile
}

// pauseRelay freezes relay (SIGSTOP) for longer than RELAY_RESCUE_AFTER, so
// River rescues the jobs it was running and a live relay runs them again
// while the first runs are still alive, then thaws it (SIGCONT): each first
// run carries on where it stopped, its gateway call or its commit, unaware
// that its job was handed on.
//
// The jobs it holds are told by their age, not by whose they are: of the
// jobs running a moment after the SIGSTOP, those still running at the same
// attempt once a live relay's would have timed out (RELAY_RESCUE_AFTER
// exceeds the job timeout) are stuck, the paused relay's and any a
// SIGKILL stranded. The pause lasts until River has rescued every one of
// them (and a little longer, for a live relay to run them again), at least
// rescueAfter and a second, at most until the rescue must have happened.
//
// The caller has frozen relay at start (synchronously, so no one else picks
// it to kill or pause meanwhile); pauseRelay thaws it.
func (s *system) pauseRelay(ctx context.Context, relay *systest.Process, start time.Time, logf func(string, ...any)) (pauseResult, error) {
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
	// Running a moment after the SIGSTOP (a fetch the relay sent just
	// before may have taken jobs a moment after it).
	var ids []int64
	var attempts []int32
	for {
		err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(attempt::int4), '{}')
			FROM river_job WHERE state = 'running' AND attempted_at < $1`, start.Add(time.Second)).Scan(&ids, &attempts)
		if err == nil {
			break
		}
		// Postgres may be restarting or failing over under us.
		if time.Now().After(minEnd) || !sleepCtx(ctx, 500*time.Millisecond) {
			logf("pause of %s: could not read the running jobs: %v", relay.Name, err)
			break
		}
	}
	if !sleepCtx(ctx, time.Until(minEnd)) {
		return pauseResult{}, ctx.Err()
	}

	var stuck []int64
	var allRescued time.Time
	for {
		var running []int64
		err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(j.id), '{}') FROM river_job j
			JOIN unnest($1::bigint[], $2::int4[]) AS held (id, attempt) ON j.id = held.id
			WHERE j.state = 'running' AND j.attempt = held.attempt`, ids, attempts).Scan(&running)
		if err == nil {
			if stuck == nil {
				stuck = running // what the rescue has to hand on
			}
			if len(running) == 0 {
				if allRescued.IsZero() {
					allRescued = time.Now()
				}
				if len(stuck) == 0 || time.Since(allRescued) >= afterRescue {
					break
				}
			}
		}
		if time.Now().After(maxEnd) {
			break
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return pauseResult{}, ctx.Err()
		}
	}

	res := pauseResult{held: len(stuck)}
	if len(stuck) > 0 {
		err := s.pool.QueryRow(ctx, `SELECT count(DISTINCT j.id) FROM river_job j, unnest(j.errors) AS e
			WHERE j.id = ANY($1) AND e->>'error' = $2 AND (e->>'at')::timestamptz >= $3`,
			stuck, rescuedError, start).Scan(&res.rescued)
		if err != nil {
			logf("pause of %s: could not count the jobs rescued meanwhile: %v", relay.Name, err)
		}
	}
	logf("pause of %s: %d jobs stuck in running, %d rescued meanwhile", relay.Name, res.held, res.rescued)
	if res.rescued < res.held {
		// River's rescuer runs on the leader: say who that was.
		var leader string
		var elected, expires time.Time
		if err := s.pool.QueryRow(ctx, `SELECT leader_id, elected_at, expires_at FROM river_leader`).Scan(&leader, &elected, &expires); err != nil {
			logf("pause of %s: not every stuck job was rescued, and the River leader could not be read: %v", relay.Name, err)
		} else {
			logf("pause of %s: not every stuck job was rescued; the River leader is %s, elected %s, expiring %s",
				relay.Name, leader, elected.UTC().Format("15:04:05.000"), expires.UTC().Format("15:04:05.000"))
		}
		// And the last the relays said about it.
		for _, r := range s.relays {
			var said []string
			for _, line := range strings.Split(r.Output().Tail(1<<20), "\n") {
				if strings.Contains(line, "JobRescuer") || strings.Contains(line, "leadership") || strings.Contains(line, "Elector") {
					said = append(said, line)
				}
			}
			for _, line := range said[max(0, len(said)-5):] {
				logf("pause of %s: %s said: %s", relay.Name, r.Name, line)
			}
		}
	}
	return res, nil
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
