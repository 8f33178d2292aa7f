package gatewaysim

import (
	"sync"
	"time"
)

const (
	// DefaultTossKeyRetention is how long Toss keeps a key's first response
	// (Config.TossKeyRetention zero).
	DefaultTossKeyRetention = 15 * 24 * time.Hour
	// DefaultPortOneKeyRetention is how long PortOne keeps a key's first
	// response (Config.PortOneKeyRetention zero).
	DefaultPortOneKeyRetention = 3 * time.Hour
	// maxIdempotencyKeyLength is Toss's limit on the Idempotency-Key header.
	maxIdempotencyKeyLength = 300
	// sweepEvery is how many new keys pass between sweeps of expired entries.
	sweepEvery = 4096
)

// idempotencyKey scopes a client's Idempotency-Key to the merchant, as Toss
// does: two merchants may use the same key. gateway is the API the key was
// sent to, whose retention applies to it.
type idempotencyKey struct {
	gateway   string
	secretKey string
	key       string
}

// idempotencyEntry is one key's record: in flight until done, then the stored
// first response.
type idempotencyEntry struct {
	done     bool
	res      response
	storedAt time.Time
}

// beginResult says what to do with a request carrying an Idempotency-Key.
type beginResult int

const (
	beginProcess  beginResult = iota // first request with the key: process it
	beginReplay                      // answer with the stored response
	beginInFlight                    // the first request is still running: 409
)

// idempotencyStore keeps the first response per key and marks keys in flight.
// retention says how long a gateway keeps a stored response; it is read at
// each use, so a config change applies to the keys already stored.
type idempotencyStore struct {
	mu         sync.Mutex
	entries    map[idempotencyKey]*idempotencyEntry
	sinceSweep int
	retention  func(gateway string) time.Duration
}

func newIdempotencyStore(retention func(gateway string) time.Duration) *idempotencyStore {
	return &idempotencyStore{entries: map[idempotencyKey]*idempotencyEntry{}, retention: retention}
}

func (st *idempotencyStore) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.entries = map[idempotencyKey]*idempotencyEntry{}
	st.sinceSweep = 0
}

// begin claims k for a new request, or says why it cannot. On beginProcess the
// returned entry is the caller's ticket for complete or abandon; on
// beginReplay it holds the stored response.
func (st *idempotencyStore) begin(k idempotencyKey, now time.Time) (*idempotencyEntry, beginResult) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.entries[k]; ok {
		if !e.done {
			return e, beginInFlight
		}
		if now.Sub(e.storedAt) < st.retention(k.gateway) {
			return e, beginReplay
		}
		// Past its gateway's retention the key is forgotten: this request is
		// processed as a fresh one.
	}
	st.sinceSweep++
	if st.sinceSweep >= sweepEvery {
		st.sweep(now)
	}
	e := &idempotencyEntry{}
	st.entries[k] = e
	return e, beginProcess
}

// complete stores res as the key's response. The ticket check keeps a request
// that began before a reset from writing into the fresh store.
func (st *idempotencyStore) complete(k idempotencyKey, ticket *idempotencyEntry, res response, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.entries[k] != ticket {
		return
	}
	ticket.done = true
	ticket.res = res
	ticket.storedAt = now
}

// abandon releases a key whose request stored nothing, so the next request
// with it is processed afresh. It is a no-op after complete.
func (st *idempotencyStore) abandon(k idempotencyKey, ticket *idempotencyEntry) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.entries[k]; ok && e == ticket && !e.done {
		delete(st.entries, k)
	}
}

// sweep drops expired responses, so a long load test does not grow without
// bound. Callers hold st.mu.
func (st *idempotencyStore) sweep(now time.Time) {
	st.sinceSweep = 0
	for k, e := range st.entries {
		if e.done && now.Sub(e.storedAt) >= st.retention(k.gateway) {
			delete(st.entries, k)
		}
	}
}
