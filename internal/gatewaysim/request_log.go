package gatewaysim

import (
	"sync"
	"time"
)

// Outcomes of a /v1 call in the request log.
const (
	// OutcomeProcessed: the gateway performed (or refused, on its merits) the
	// call and answered.
	OutcomeProcessed = "processed"
	// OutcomeReplayed: the answer is the stored response of an earlier call
	// with the same Idempotency-Key.
	OutcomeReplayed = "replayed"
	// OutcomeInjected: a fault answered instead of the gateway (a script
	// error step, a random error, downtime); nothing was performed.
	OutcomeInjected = "injected"
	// OutcomeLost: the call was performed and its response dropped.
	OutcomeLost = "lost"
	// OutcomeHeld: the call was held for Config.HoldFor, then performed and
	// answered, usually to a client that had given up. It is logged when it
	// is performed, not when it arrived (At is still its arrival).
	OutcomeHeld = "held"
	// OutcomeRejected: turned away before processing (bad auth, bad
	// Idempotency-Key, the key's first request still running, a cancel
	// inside ConsecutiveCancelWindow).
	OutcomeRejected = "rejected"
)

// DefaultRequestLogLimit is how many /v1 calls the request log keeps.
const DefaultRequestLogLimit = 100_000

// RequestRecord is one /v1 call as the gateway saw it.
type RequestRecord struct {
	At time.Time `json:"at"`
	// Gateway is the API the call came in on: "toss" or "portone".
	Gateway         string    `json:"gateway"`
	Method          string    `json:"method"`
	Path            string    `json:"path"`
	Operation       Operation `json:"operation"`
	PaymentKey      string    `json:"paymentKey"`
	IdempotencyKey  string    `json:"idempotencyKey"`
	AuthorizationOK bool      `json:"authorizationOK"`
	// HTTPStatus and Code are what was answered; for a lost call, what
	// would have been answered.
	HTTPStatus int    `json:"httpStatus"`
	Code       string `json:"code"`
	Outcome    string `json:"outcome"`
}

// Requests is the body of GET /sim/v1/requests.
type Requests struct {
	Requests []RequestRecord `json:"requests"`
}

// requestLog is a ring of the last limit records.
type requestLog struct {
	mu      sync.Mutex
	limit   int
	records []RequestRecord
	next    int // where the next record goes once records is full
}

func newRequestLog(limit int) *requestLog {
	return &requestLog{limit: limit}
}

func (l *requestLog) append(rec RequestRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.records) < l.limit {
		l.records = append(l.records, rec)
		return
	}
	l.records[l.next] = rec
	l.next = (l.next + 1) % l.limit
}

// list returns the records for paymentKey (all when empty), oldest first.
func (l *requestLog) list(paymentKey string) []RequestRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []RequestRecord{}
	for i := range l.records {
		rec := l.records[(l.next+i)%len(l.records)]
		if paymentKey == "" || rec.PaymentKey == paymentKey {
			out = append(out, rec)
		}
	}
	return out
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = nil
	l.next = 0
}
