package gatewaysim

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// Operation is a kind of /v1 call a script applies to.
type Operation string

// The operations.
const (
	OperationConfirm Operation = "confirm"
	OperationCancel  Operation = "cancel"
	OperationLookup  Operation = "lookup"
	// OperationList is a listing of the books (Toss GET /v1/transactions,
	// PortOne GET /payments-by-cursor). Like a lookup it draws no random
	// faults; it is about no one payment, so no script applies to it.
	OperationList Operation = "list"
)

// StepKind is what a script step makes the gateway do.
type StepKind string

// The step kinds.
const (
	// StepError answers with Code (and Status, else the code's status)
	// without performing the operation.
	StepError StepKind = "error"
	// StepLost performs the operation, stores its response under the
	// Idempotency-Key, then closes the connection without answering.
	StepLost StepKind = "lost"
	// StepDelay sleeps for Delay, then proceeds normally.
	StepDelay StepKind = "delay"
	// StepOK proceeds normally.
	StepOK StepKind = "ok"
)

// Step is one forced behaviour, consumed by one matching call.
type Step struct {
	Kind    StepKind `json:"kind"`
	Code    string   `json:"code,omitempty"`
	Status  int      `json:"status,omitempty"`
	Message string   `json:"message,omitempty"`
	Delay   Duration `json:"delay,omitzero"`
}

// Script queues steps for one paymentKey and operation. Each matching /v1 call
// consumes the oldest step; a call that consumes a step gets no random fault,
// so a script fully decides what its calls see.
type Script struct {
	PaymentKey string    `json:"paymentKey"`
	Operation  Operation `json:"operation"`
	Steps      []Step    `json:"steps"`
}

// ScriptQueued is the answer to POST /sim/v1/script.
type ScriptQueued struct {
	PaymentKey string    `json:"paymentKey"`
	Operation  Operation `json:"operation"`
	Pending    int       `json:"pending"` // steps now waiting for this key and operation
}

// Validate reports the first problem with sc.
func (sc Script) Validate() error {
	if sc.PaymentKey == "" {
		return errors.New("paymentKey is required")
	}
	switch sc.Operation {
	case OperationConfirm, OperationCancel, OperationLookup:
	default:
		return fmt.Errorf("operation %q is not one of confirm, cancel, lookup", sc.Operation)
	}
	if len(sc.Steps) == 0 {
		return errors.New("steps must not be empty")
	}
	for i, step := range sc.Steps {
		if err := step.validate(); err != nil {
			return fmt.Errorf("steps[%d]: %w", i, err)
		}
	}
	return nil
}

func (step Step) validate() error {
	switch step.Kind {
	case StepError:
		if step.Code == "" {
			return errors.New("an error step needs a code")
		}
		if step.Status != 0 && (step.Status < 400 || step.Status > 599) {
			return fmt.Errorf("status %d is not an error status (400-599)", step.Status)
		}
	case StepDelay:
		if step.Delay <= 0 {
			return errors.New("a delay step needs a positive delay")
		}
	case StepLost, StepOK:
	default:
		return fmt.Errorf("kind %q is not one of error, lost, delay, ok", step.Kind)
	}
	return nil
}

// injectedError is the error a StepError answers with.
func (step Step) injectedError() *Error {
	status := step.Status
	if status == 0 {
		status = StatusForCode(step.Code)
	}
	message := step.Message
	if message == "" {
		message = "injected by script"
	}
	return errorWithStatus(status, step.Code, "%s", message)
}

type scriptKey struct {
	paymentKey string
	operation  Operation
}

// scriptQueues holds the pending steps per paymentKey and operation.
type scriptQueues struct {
	mu     sync.Mutex
	queues map[scriptKey][]Step
}

func newScriptQueues() *scriptQueues {
	return &scriptQueues{queues: map[scriptKey][]Step{}}
}

func (q *scriptQueues) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queues = map[scriptKey][]Step{}
}

// push appends the script's steps and returns how many are pending.
func (q *scriptQueues) push(sc Script) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := scriptKey{sc.PaymentKey, sc.Operation}
	q.queues[k] = append(q.queues[k], sc.Steps...)
	return len(q.queues[k])
}

// pending returns how many steps wait for the key and operation.
func (q *scriptQueues) pending(paymentKey string, op Operation) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queues[scriptKey{paymentKey, op}])
}

// next pops the oldest step for the key and operation.
func (q *scriptQueues) next(paymentKey string, op Operation) (Step, bool) {
	if paymentKey == "" {
		return Step{}, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	k := scriptKey{paymentKey, op}
	steps := q.queues[k]
	if len(steps) == 0 {
		return Step{}, false
	}
	if len(steps) == 1 {
		delete(q.queues, k)
	} else {
		q.queues[k] = steps[1:]
	}
	return steps[0], true
}

// Script queues sc's steps. The payment must have been authorized: a script
// for an unknown key would wait forever, which is a mistake in the test.
func (s *Simulator) Script(sc Script) (ScriptQueued, error) {
	if err := sc.Validate(); err != nil {
		return ScriptQueued{}, errorWithStatus(http.StatusBadRequest, CodeInvalidRequest, "invalid script: %v", err)
	}
	if _, ok := s.payments.byPaymentKey(sc.PaymentKey); !ok {
		return ScriptQueued{}, errorWithStatus(http.StatusNotFound, CodeNotFoundPayment, "no payment with paymentKey %q; authorize first", sc.PaymentKey)
	}
	pending := s.scripts.push(sc)
	return ScriptQueued{PaymentKey: sc.PaymentKey, Operation: sc.Operation, Pending: pending}, nil
}
