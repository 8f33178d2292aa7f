package httpapi

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// waitPollEvery is how often the waiter reads the payments its requests
// wait on. It is the latency a waiting checkout pays over a notification,
// and it costs one indexed query per interval per api process, only while
// something waits.
const waitPollEvery = 50 * time.Millisecond

// waiter lets requests wait for a payment to leave flight (GET ?wait=) with
// one query per poll interval per api process, never one per waiting
// request: a thousand waiting checkouts cost one small query every
// waitPollEvery.
//
// It polls rather than LISTENs on purpose. A NOTIFY sent in the transaction
// of every status change would make each of those commits take Postgres's
// database-wide notification lock and hold it through its WAL flush, so with
// synchronous commits every status change in the database, api's and
// relay's alike, would commit one at a time (docs/design.md, "Waiting for a
// payment"). Polling also loses nothing: a change made while Postgres was
// unreachable is seen by the next poll that reaches it.
type waiter struct {
	// left returns which of ids name payments no longer in flight.
	left  func(ctx context.Context, ids []string) ([]string, error)
	every time.Duration
	log   *slog.Logger
	max   int

	mu      sync.Mutex
	waiting map[string]map[chan struct{}]struct{}
	n       int
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

func newWaiter(left func(context.Context, []string) ([]string, error), every time.Duration, max int, log *slog.Logger) *waiter {
	return &waiter{left: left, every: every, max: max, log: log, waiting: map[string]map[chan struct{}]struct{}{}}
}

// subscribe registers interest in paymentID leaving flight. The channel
// receives (at most one pending) wake-up once a poll finds it has, and is
// closed when the waiter is closed. ok is false when max requests are
// waiting already.
func (w *waiter) subscribe(paymentID string) (ch chan struct{}, unsubscribe func(), ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch = make(chan struct{}, 1)
	if w.closed {
		close(ch)
		return ch, func() {}, true
	}
	if w.n >= w.max {
		return nil, nil, false
	}
	if !w.started {
		w.started = true
		ctx, cancel := context.WithCancel(context.Background())
		w.stop, w.done = cancel, make(chan struct{})
		go w.poll(ctx)
	}
	set := w.waiting[paymentID]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.waiting[paymentID] = set
	}
	set[ch] = struct{}{}
	w.n++
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.waiting[paymentID][ch]; !ok {
			return
		}
		delete(w.waiting[paymentID], ch)
		if len(w.waiting[paymentID]) == 0 {
			delete(w.waiting, paymentID)
		}
		w.n--
	}, true
}

// wake signals every request waiting on paymentID.
func (w *waiter) wake(paymentID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.waiting[paymentID] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// waited lists the payments requests wait on.
func (w *waiter) waited() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.waiting))
	for id := range w.waiting {
		ids = append(ids, id)
	}
	return ids
}

// close stops polling and ends every wait at once (the requests answer with
// the payment as it stands): for shutdown, so waiting requests do not hold
// it up. Waits begun after it return at once.
func (w *waiter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	for id, set := range w.waiting {
		for ch := range set {
			close(ch)
		}
		delete(w.waiting, id)
	}
	w.n = 0
	stop, done := w.stop, w.done
	w.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// poll reads, every interval while requests wait, which of their payments
// have left flight, and wakes those requests. A failed read is logged once
// until one succeeds again; the requests keep waiting until their wait is
// over, as they would for a payment that has not changed.
func (w *waiter) poll(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids := w.waited()
		if len(ids) == 0 {
			continue
		}
		readCtx, cancel := context.WithTimeout(ctx, max(w.every, time.Second))
		left, err := w.left(readCtx, ids)
		cancel()
		if err != nil {
			if !failing && ctx.Err() == nil {
				w.log.Warn("wait poll failed; waiting requests are not woken until it succeeds", slog.String("error", err.Error()))
			}
			failing = true
			continue
		}
		if failing {
			w.log.Info("wait poll works again")
			failing = false
		}
		for _, id := range left {
			w.wake(id)
		}
	}
}
