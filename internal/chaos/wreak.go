package chaos

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/systest"
)

// wreak injects the process-level chaos as the load progresses: relay
// SIGKILLs spread evenly over the payments pushed, the gateway's downtime
// window a third of the way in, and one Postgres restart halfway.
func (s *system) wreak(ctx context.Context, cfg Config, seed uint64, done *atomic.Int64, rep *Report, logf func(string, ...any)) {
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	total := int64(cfg.Payments)
	nextKill := 1
	downDone, pgDone := false, !cfg.RestartPostgres
	if cfg.RestartPostgres && s.pg == nil {
		logf("not restarting Postgres: it is not ours (DatabaseURL given)")
		pgDone = true
	}
	// killDue makes every kill that is due by progress, not only the next:
	// the Postgres restart and each kill's pause hold the loop below for
	// seconds, during which a fast load passes several kill points, or ends.
	killDue := func(progress int64) {
		for nextKill <= cfg.Kills && progress >= total*int64(nextKill)/int64(cfg.Kills+1) {
			nextKill++
			// A running one: a relay restarted while Postgres was down exits
			// (it cannot reach the database) and stays down until the drain.
			var up []*systest.Process
			for _, r := range s.relays {
				if r.Running() {
					up = append(up, r)
				}
			}
			if len(up) == 0 {
				logf("no relay running to kill")
				continue
			}
			relay := up[rng.IntN(len(up))]
			if err := relay.Kill(); err != nil {
				logf("could not kill %s: %v", relay.Name, err)
				continue
			}
			rep.Kills++
			logf("SIGKILL %s", relay.Name)
			// Down for a moment, so its jobs are stranded in running and
			// the other relays carry on alone, then back.
			time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
			if err := relay.Start(); err != nil {
				logf("could not restart %s: %v", relay.Name, err)
			}
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// The load is over: the kills it passed while this loop was
			// held up still happen, on the jobs it left in the outbox.
			killDue(done.Load())
			return
		case <-tick.C:
		}
		progress := done.Load()

		if !downDone && progress >= total/3 {
			downDone = true
			now := time.Now()
			if err := s.configureFaults(ctx, cfg, gatewaysim.Window{From: now, Until: now.Add(cfg.Downtime)}); err != nil {
				logf("could not schedule gateway downtime: %v", err)
			} else {
				logf("gateway down for %s", cfg.Downtime)
			}
		}

		if !pgDone && progress >= total/2 {
			pgDone = true
			logf("restarting Postgres")
			if err := s.pg.Stop(ctx); err != nil {
				logf("could not stop Postgres: %v", err)
				continue
			}
			time.Sleep(time.Second)
			if err := s.pg.Start(context.WithoutCancel(ctx)); err != nil {
				logf("could not start Postgres again: %v", err)
				continue
			}
			rep.PostgresRestarts++
		}

		killDue(progress)
	}
}

// restartDownRelays brings back any relay the chaos left down.
func (s *system) restartDownRelays(logf func(string, ...any)) error {
	for _, r := range s.relays {
		if !r.Running() {
			logf("%s is down; starting it for the drain", r.Name)
			if err := r.Start(); err != nil {
				return err
			}
		}
	}
	return nil
}
