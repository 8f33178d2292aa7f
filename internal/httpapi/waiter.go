package httpapi

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/store"
)

// waiter lets requests wait for a payment to change (GET ?wait=) on one
// LISTEN connection per api process, never one per waiting request: a
// thousand waiting checkouts cost one Postgres connection. payflow sends a
// NOTIFY with the payment's id in the transaction of every status change, so
// a waiter is woken only by a change that committed.
//
// The connection is opened on the first wait and kept; if it breaks, the
// waiter reconnects and then wakes every request, since a notification sent
// while it was not listening is lost and each must read its payment again.
type waiter struct {
	connect func(context.Context) (*pgx.Conn, error)
	log     *slog.Logger
	max     int

	mu      sync.Mutex
	waiting map[string]map[chan struct{}]struct{}
	n       int
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

func newWaiter(connect func(context.Context) (*pgx.Conn, error), max int, log *slog.Logger) *waiter {
	return &waiter{connect: connect, max: max, log: log, waiting: map[string]map[chan struct{}]struct{}{}}
}

// subscribe registers interest in paymentID's changes. The channel receives
// (at most one pending) wake-up per change, and is closed when the waiter is
// closed. ok is false when max requests are waiting already.
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
		go w.listen(ctx)
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

// wake signals every request waiting on paymentID, or on every payment when
// paymentID is empty.
func (w *waiter) wake(paymentID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	signal := func(set map[chan struct{}]struct{}) {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
	}
	if paymentID != "" {
		signal(w.waiting[paymentID])
		return
	}
	for _, set := range w.waiting {
		signal(set)
	}
}

// close stops listening and ends every wait at once (the requests answer
// with the payment as it stands): for shutdown, so waiting requests do not
// hold it up. Waits begun after it return at once.
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

// Reconnection backoff of the LISTEN connection.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

func (w *waiter) listen(ctx context.Context) {
	defer close(w.done)
	backoff := listenRetryMin
	for ctx.Err() == nil {
		began := time.Now()
		err := w.listenOnce(ctx)
		if time.Since(began) > listenRetryMax {
			backoff = listenRetryMin // it had worked: a new failure starts afresh
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("wait listener lost its connection; reconnecting", slog.String("error", err.Error()),
			slog.Duration("after", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenRetryMax)
	}
}

// listenOnce listens on one connection until it fails.
func (w *waiter) listenOnce(ctx context.Context) error {
	conn, err := w.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{store.WaitChannel}.Sanitize()); err != nil {
		return err
	}
	// Whatever changed before this LISTEN took effect sent no notification
	// we heard: every waiter reads its payment again.
	w.wake("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		w.wake(n.Payload)
	}
}
