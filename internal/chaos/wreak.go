package chaos

import (
	"context"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/systest"
)

// wrecker injects the process-level chaos as the load progresses, each kind
// spread evenly over the payments pushed: relay SIGKILLs, relay pauses,
// Postgres restarts and the failover, and the gateway's downtime window a
// third of the way in. Progress, not time, places them, so a run of any
// size and speed gets all of them while there is load.
type wrecker struct {
	s     *system
	cfg   Config
	rng   *rand.Rand
	done  *atomic.Int64 // payments pushed so far
	gate  *gate
	logf  func(string, ...any)
	total int64

	nextKill, nextPause, nextDB int
	dbEvents                    []dbEvent
	downDone                    bool
	heldSince                   time.Time // when the load was held for a pause
	killWaitSince               time.Time // when the next kill found no relay to kill
	pauseNotBefore              time.Time // the load refills the outbox after a hold

	// Pauses run on their own goroutines, for longer than the load may
	// last; repMu guards what they report.
	pauses  sync.WaitGroup
	repMu   sync.Mutex
	rep     *Report
	resumed map[*systest.Process]time.Time // end of the last pause, under repMu

	// Relays killed come back on goroutines of their own.
	restarts sync.WaitGroup
	procMu   sync.Mutex
	started  map[*systest.Process]time.Time // last start by the wrecker, under procMu
	down     map[*systest.Process]bool      // killed, restart pending, under procMu
}

// dbEvent is a Postgres restart or the failover, due at progress at.
type dbEvent struct {
	at       int64
	failover bool
}

func newWrecker(s *system, cfg Config, seed uint64, done *atomic.Int64, g *gate, rep *Report, logf func(string, ...any)) *wrecker {
	w := &wrecker{
		s: s, cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed>>1|1)), done: done, gate: g, logf: logf,
		total: int64(cfg.Payments), nextKill: 1, nextPause: 1, rep: rep,
		started: map[*systest.Process]time.Time{}, resumed: map[*systest.Process]time.Time{},
		down: map[*systest.Process]bool{},
	}
	restarts, failover := cfg.PostgresRestarts, cfg.Failover
	if s.dbs[0].pg == nil {
		if restarts > 0 || failover {
			w.skip("Postgres restarts and failover: the database is not ours (DatabaseURL given)")
		}
		restarts, failover = 0, false
	}
	if cfg.Pauses > 0 && len(s.relays) < 2 {
		w.skip("relay pauses: they need a second relay to rescue the paused one's jobs")
		w.nextPause = cfg.Pauses + 1
	}
	// The failover goes in the middle of the Postgres events, the
	// restarts around it: one before it restarts the primary with its
	// standby attached, one after restarts the promoted standby.
	n := restarts + b2i(failover)
	for i := range n {
		w.dbEvents = append(w.dbEvents, dbEvent{
			at:       w.total * int64(i+1) / int64(n+1),
			failover: failover && i == n/2,
		})
	}
	return w
}

func (w *wrecker) skip(what string) {
	w.logf("skipping %s", what)
	w.repMu.Lock()
	w.rep.Skipped = append(w.rep.Skipped, what)
	w.repMu.Unlock()
}

// run injects faults until ctx (the load) ends, then makes the kills the
// load passed while the loop was busy, and waits for the pauses to end.
// runCtx is the whole run's: pauses outlive the load.
func (w *wrecker) run(ctx, runCtx context.Context) {
	defer w.restarts.Wait() // no relay started behind the run's back
	defer w.gate.release()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// The load is over: the Postgres events and kills it passed
			// while this loop was held up still happen, on the jobs it
			// left in the outbox.
			w.gate.release()
			progress := w.done.Load()
			for w.nextDB < len(w.dbEvents) && progress >= w.dbEvents[w.nextDB].at && runCtx.Err() == nil {
				w.nextDB++
				w.postgresEvent(runCtx, w.dbEvents[w.nextDB-1])
			}
			for w.killPending(progress) && runCtx.Err() == nil {
				w.supervise()
				w.killDue(progress)
				time.Sleep(20 * time.Millisecond)
			}
			w.restarts.Wait()
			w.pausesLeft(runCtx)
			w.pauses.Wait()
			return
		case <-tick.C:
		}
		progress := w.done.Load()
		w.supervise()

		if !w.downDone && progress >= w.total/3 {
			w.downDone = true
			now := time.Now()
			if err := w.s.configureFaults(ctx, w.cfg, gatewaysim.Window{From: now, Until: now.Add(w.cfg.Downtime)}); err != nil {
				w.logf("could not schedule gateway downtime: %v", err)
			} else {
				w.logf("gateway down for %s", w.cfg.Downtime)
			}
		}

		if w.nextDB < len(w.dbEvents) && progress >= w.dbEvents[w.nextDB].at {
			ev := w.dbEvents[w.nextDB]
			w.nextDB++
			w.postgresEvent(ctx, ev)
		}

		// The load waits while a fault that is due cannot be injected
		// yet, so each lands where it was placed however fast the load
		// runs.
		hold := w.pauseDue(runCtx, progress)
		if !w.pauseWaiting(progress) {
			// A kill now would take down the relay the due pause needs
			// live beside the one it freezes; the kills come after.
			hold = w.killDue(progress) || hold
		}
		if hold {
			w.gate.hold()
		} else {
			w.gate.release()
		}
	}
}

// pauseWaiting reports whether a pause is due and not yet started.
func (w *wrecker) pauseWaiting(progress int64) bool {
	return w.nextPause <= w.cfg.Pauses && progress >= w.total*int64(2*w.nextPause-1)/int64(2*w.cfg.Pauses)
}

// postgresEvent restarts the primary or fails over to the standby.
func (w *wrecker) postgresEvent(ctx context.Context, ev dbEvent) {
	if ev.failover {
		w.logf("failing over to the standby")
		if err := w.s.failover(ctx, w.logf); err != nil {
			w.logf("could not fail over: %v", err)
			return
		}
		w.repMu.Lock()
		w.rep.Failovers++
		w.repMu.Unlock()
		return
	}
	w.logf("restarting Postgres (%s)", w.s.primaryDB().name)
	if err := w.s.restartPostgres(ctx); err != nil {
		w.logf("could not restart Postgres: %v", err)
		return
	}
	w.repMu.Lock()
	w.rep.PostgresRestarts++
	w.repMu.Unlock()
}

// live returns the relays running and not paused.
func (w *wrecker) live() []*systest.Process {
	var up []*systest.Process
	for _, r := range w.s.relays {
		if r.Running() && !r.Paused() {
			up = append(up, r)
		}
	}
	return up
}

// supervise starts again a relay that exited by itself (a relay started
// while Postgres is down gives up and exits), at most once a second, as an
// orchestrator would: the load's faults are meant for a working system.
func (w *wrecker) supervise() {
	w.procMu.Lock()
	defer w.procMu.Unlock()
	for _, r := range w.s.relays {
		if w.down[r] || r.Running() || time.Since(w.started[r]) < time.Second {
			continue
		}
		w.startLocked(r)
	}
}

// startLocked starts relay again; procMu is held.
func (w *wrecker) startLocked(relay *systest.Process) {
	w.started[relay] = time.Now()
	if err := relay.Start(); err != nil {
		w.logf("could not restart %s: %v", relay.Name, err)
	}
}

// killPending reports whether a kill is due by progress.
func (w *wrecker) killPending(progress int64) bool {
	return w.nextKill <= w.cfg.Kills && progress >= w.total*int64(w.nextKill)/int64(w.cfg.Kills+1)
}

// killDue makes every kill that is due by progress, not only the next: the
// Postgres events hold the loop for seconds, during which a fast load
// passes several kill points, or ends. It reports whether a due kill waits
// for a relay to kill (the load should wait with it).
func (w *wrecker) killDue(progress int64) (hold bool) {
	for w.killPending(progress) {
		up := w.live()
		if len(up) == 0 {
			// Every relay paused, or down after failing to reach Postgres:
			// the kill waits for one, a while.
			if w.killWaitSince.IsZero() {
				w.killWaitSince = time.Now()
			}
			if time.Since(w.killWaitSince) < maxKillWait {
				return true
			}
			w.logf("no relay running to kill for %s; skipping kill %d", maxKillWait, w.nextKill)
			w.nextKill++
			w.killWaitSince = time.Time{}
			continue
		}
		w.nextKill++
		w.killWaitSince = time.Time{}
		relay := up[w.rng.IntN(len(up))]
		if err := relay.Kill(); err != nil {
			w.logf("could not kill %s: %v", relay.Name, err)
			continue
		}
		w.repMu.Lock()
		w.rep.Kills++
		w.repMu.Unlock()
		w.logf("SIGKILL %s", relay.Name)
		// Down for a moment, so its jobs are stranded in running and
		// the other relays carry on alone, then back. The wait is the
		// restart's own, not this loop's: held here, the loop would let a
		// fast load run past the next faults' points.
		downFor := time.Duration(200+w.rng.IntN(1300)) * time.Millisecond
		w.procMu.Lock()
		w.down[relay] = true
		w.procMu.Unlock()
		w.restarts.Add(1)
		go func() {
			defer w.restarts.Done()
			time.Sleep(downFor)
			w.procMu.Lock()
			defer w.procMu.Unlock()
			delete(w.down, relay)
			w.startLocked(relay)
		}()
	}
	return false
}

// pauseDue starts the next pause once it is due and a relay can be spared:
// one stays live to run what the paused one held. Until then the load is
// held back, so the pauses stay spread over it however fast it runs.
func (w *wrecker) pauseDue(runCtx context.Context, progress int64) (hold bool) {
	if !w.pauseWaiting(progress) {
		return false
	}
	up := w.live()
	if len(up) < 2 {
		if w.heldSince.IsZero() {
			w.heldSince = time.Now()
			w.logf("holding the load at %d payments until a relay can be spared for pause %d", progress, w.nextPause)
		}
		if time.Since(w.heldSince) < maxLoadHold {
			return true
		}
		// Relays that do not come back are a failure the check will
		// show; a load that never ends would hide it.
		w.logf("no relay to spare for pause %d after %s; skipping it", w.nextPause, maxLoadHold)
		w.nextPause++
		w.heldSince = time.Time{}
		return false
	}
	if !w.heldSince.IsZero() {
		// The load was held for this pause and the outbox has drained
		// meanwhile: let it fill again, or the relay frozen holds nothing.
		w.heldSince = time.Time{}
		w.pauseNotBefore = time.Now().Add(3 * time.Second)
	}
	if time.Now().Before(w.pauseNotBefore) {
		return false
	}
	w.startPause(runCtx, w.pick(up))
	return false
}

// pick chooses a relay to pause among up, one that has been up and
// working a few seconds if it can: a relay just started, or just thawed
// with its jobs handed on, holds none yet, and freezing it would test
// nothing.
func (w *wrecker) pick(up []*systest.Process) *systest.Process {
	w.repMu.Lock()
	resumed := maps.Clone(w.resumed)
	w.repMu.Unlock()
	var settled []*systest.Process
	for _, r := range up {
		if time.Since(r.StartedAt()) > 3*time.Second && time.Since(resumed[r]) > 15*time.Second {
			settled = append(settled, r)
		}
	}
	if len(settled) > 0 {
		up = settled
	}
	return up[w.rng.IntN(len(up))]
}

// startPause freezes relay now and thaws it on a goroutine of its own:
// frozen at once, it is out of live() before the next pick.
func (w *wrecker) startPause(runCtx context.Context, relay *systest.Process) {
	w.nextPause++
	start := time.Now()
	if err := relay.Pause(); err != nil {
		w.logf("could not pause %s: %v", relay.Name, err)
		return
	}
	w.logf("SIGSTOP %s", relay.Name)
	w.repMu.Lock()
	w.rep.Pauses++
	w.repMu.Unlock()
	w.pauses.Add(1)
	go func() {
		defer w.pauses.Done()
		res, err := w.s.pauseRelay(runCtx, relay, start, w.logf)
		w.repMu.Lock()
		w.resumed[relay] = time.Now()
		w.repMu.Unlock()
		if err != nil {
			w.logf("pause of %s: %v", relay.Name, err)
			return
		}
		w.repMu.Lock()
		w.rep.PausedJobs += res.held
		w.rep.RescuedWhilePaused += res.rescued
		w.repMu.Unlock()
	}()
}

// pausesLeft makes the pauses the load did not wait for (it ended while
// this loop was held up), one at a time: the outbox still has the load's
// jobs to run.
func (w *wrecker) pausesLeft(runCtx context.Context) {
	for w.nextPause <= w.cfg.Pauses && runCtx.Err() == nil {
		up := w.live()
		if len(up) < 2 {
			w.pauses.Wait()
			w.supervise()
			if up = w.live(); len(up) < 2 {
				w.logf("no relay to spare for pause %d; skipping the %d left", w.nextPause, w.cfg.Pauses-w.nextPause+1)
				return
			}
		}
		w.startPause(runCtx, w.pick(up))
	}
}

// maxKillWait bounds how long a due kill waits for a relay to kill.
const maxKillWait = time.Minute

// maxLoadHold bounds how long the load waits for a relay to pause.
const maxLoadHold = 3 * time.Minute

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

// gate lets the chaos hold the load back while a fault that is due cannot
// be injected yet. The zero value is open.
type gate struct {
	mu   sync.Mutex
	held chan struct{}
}

func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

// wait returns once the gate is open.
func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	if held == nil {
		return nil
	}
	select {
	case <-held:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
