package gatewaysim

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
)

// dialect is what differs between the two APIs the simulator speaks at the
// front door: authentication, the Idempotency-Key header and the shape of
// its error answers. Faults, holds, lost answers, the idempotency store, the
// request log and the ledger are the same for both, so tests and the chaos
// suite check either gateway the same way.
type dialect interface {
	gateway() string
	authorized(r *http.Request) bool
	// idempotencyKey reads the request's key ("" when none), or the answer
	// to a malformed one.
	idempotencyKey(r *http.Request) (string, *response)
	// keySpace separates the two APIs' idempotency keys.
	keySpace() string
	down() response
	unauthorized() response
	inFlight() response
	// fault turns an injected error (a Toss code, from the config's
	// errorRates or a script) into this API's answer.
	fault(e *Error) response
	// consecutiveCancelRule says whether Toss's one-cancel-per-second rule
	// applies (ConsecutiveCancelWindow).
	consecutiveCancelRule() bool
}

// tossAPI is the Toss core API v1 under /v1.
type tossAPI struct{ s *Simulator }

func (tossAPI) gateway() string { return GatewayToss }

func (d tossAPI) authorized(r *http.Request) bool { return d.s.authorized(r) }

func (tossAPI) idempotencyKey(r *http.Request) (string, *response) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKeyLength {
		res := newError(CodeInvalidRequest, "Idempotency-Key must be at most %d characters", maxIdempotencyKeyLength).response()
		return key, &res
	}
	return key, nil
}

func (d tossAPI) keySpace() string { return d.s.secretKey }

func (tossAPI) down() response {
	return errorWithStatus(http.StatusServiceUnavailable, CodeFailedInternalSystemProcessing, "the gateway is down (simulated)").response()
}

func (tossAPI) unauthorized() response {
	return newError(CodeUnauthorizedKey, "the secret key is missing, malformed or not registered").response()
}

func (tossAPI) inFlight() response {
	return newError(CodeIdempotentRequestProcessing, "a request with this Idempotency-Key is still being processed").response()
}

func (tossAPI) fault(e *Error) response { return e.response() }

func (tossAPI) consecutiveCancelRule() bool { return true }

// The gateways, as RequestRecord and LedgerEntry name them.
const (
	GatewayToss    = "toss"
	GatewayPortOne = "portone"
)

// PortOne V2 error types the simulator answers with (the "type" of its error
// bodies), with their HTTP statuses as PortOne's API documents them.
const (
	PortOneInvalidRequest                     = "INVALID_REQUEST"
	PortOneUnauthorized                       = "UNAUTHORIZED"
	PortOneForbidden                          = "FORBIDDEN"
	PortOnePaymentNotFound                    = "PAYMENT_NOT_FOUND"
	PortOnePaymentNotPaid                     = "PAYMENT_NOT_PAID"
	PortOnePaymentAlreadyCancelled            = "PAYMENT_ALREADY_CANCELLED"
	PortOneCancellableAmountConsistencyBroken = "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN"
	PortOneCancelAmountExceedsCancellable     = "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT"
	PortOnePgProvider                         = "PG_PROVIDER"
	PortOneIdempotencyOutstandingRequest      = "IDEMPOTENCY_OUTSTANDING_REQUEST"
	// The manual confirm's (ConfirmPaymentError).
	PortOneAlreadyPaid         = "ALREADY_PAID"
	PortOneInformationMismatch = "INFORMATION_MISMATCH"
	PortOneInvalidPaymentToken = "INVALID_PAYMENT_TOKEN"
	// The virtual account close's (CloseVirtualAccountError).
	PortOnePaymentNotWaitingForDeposit = "PAYMENT_NOT_WAITING_FOR_DEPOSIT"
)

// portOneStatuses is PortOne's error type → HTTP status table.
var portOneStatuses = map[string]int{
	PortOneInvalidRequest:                     http.StatusBadRequest,
	PortOneUnauthorized:                       http.StatusUnauthorized,
	PortOneForbidden:                          http.StatusForbidden,
	PortOnePaymentNotFound:                    http.StatusNotFound,
	PortOnePaymentNotPaid:                     http.StatusConflict,
	PortOnePaymentAlreadyCancelled:            http.StatusConflict,
	PortOneCancellableAmountConsistencyBroken: http.StatusConflict,
	PortOneCancelAmountExceedsCancellable:     http.StatusConflict,
	PortOnePgProvider:                         http.StatusBadGateway,
	PortOneIdempotencyOutstandingRequest:      http.StatusConflict,
	PortOneAlreadyPaid:                        http.StatusConflict,
	PortOneInformationMismatch:                http.StatusConflict,
	PortOneInvalidPaymentToken:                http.StatusBadRequest,
	PortOnePaymentNotWaitingForDeposit:        http.StatusConflict,
}

// portOneError is an error answer in PortOne's shape: {"type", "message"}.
type portOneError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// portOneResponse builds a PortOne error answer; the status comes from the
// table (500 for a type it does not know).
func portOneResponse(typ, message string) response {
	status, ok := portOneStatuses[typ]
	if !ok {
		status = http.StatusInternalServerError
	}
	return portOneResponseWithStatus(status, typ, message)
}

func portOneResponseWithStatus(status int, typ, message string) response {
	res := jsonResponse(status, portOneError{Type: typ, Message: message})
	res.code = typ
	return res
}

// DefaultPortOneSecret and DefaultPortOneStoreID are the API secret and the
// store the simulator's PortOne API accepts unless told otherwise.
const (
	DefaultPortOneSecret  = "portone_sim_secret_local_0123456789"
	DefaultPortOneStoreID = "store-00000000-0000-4000-8000-gatewaysim00"
)

// portOneAPI is PortOne's V2 API, at the root (/payments/...).
type portOneAPI struct{ s *Simulator }

func (portOneAPI) gateway() string { return GatewayPortOne }

// authorized checks "Authorization: PortOne <secret>".
func (d portOneAPI) authorized(r *http.Request) bool {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "PortOne ")
	return ok && subtle.ConstantTimeCompare([]byte(secret), []byte(d.s.portOneSecret)) == 1
}

// idempotencyKey reads PortOne's Idempotency-Key: an RFC 8941 string
// (quoted) of 16 to 256 characters. A bare token is accepted as well.
func (portOneAPI) idempotencyKey(r *http.Request) (string, *response) {
	raw := r.Header.Get("Idempotency-Key")
	if raw == "" {
		return "", nil
	}
	key := raw
	if strings.HasPrefix(raw, `"`) {
		unquoted, err := strconv.Unquote(raw)
		if err != nil {
			res := portOneResponse(PortOneInvalidRequest, "Idempotency-Key is not a valid quoted string")
			return raw, &res
		}
		key = unquoted
	}
	if len(key) < 16 || len(key) > 256 {
		res := portOneResponse(PortOneInvalidRequest, "Idempotency-Key must be 16 to 256 characters")
		return key, &res
	}
	return key, nil
}

func (d portOneAPI) keySpace() string { return "portone:" + d.s.portOneSecret }

func (portOneAPI) down() response {
	// PortOne's load balancer, not PortOne: no error type.
	return response{status: http.StatusServiceUnavailable, body: []byte(`{"message":"service unavailable (simulated)"}`)}
}

func (portOneAPI) unauthorized() response {
	return portOneResponse(PortOneUnauthorized, "the API secret is missing or not registered")
}

func (portOneAPI) inFlight() response {
	return portOneResponse(PortOneIdempotencyOutstandingRequest, "a request with this Idempotency-Key is still being processed")
}

// fault answers an injected error as PortOne would: a PortOne type as it
// is; a Toss code that says "the provider or the gateway failed" (5xx, or
// PROVIDER_ERROR and the other answers the Toss table reads as transient or
// unclear) as PG_PROVIDER, PortOne's one documented 5xx; a Toss refusal as
// INVALID_REQUEST.
func (portOneAPI) fault(e *Error) response {
	if _, ok := portOneStatuses[e.Code]; ok {
		status := e.Status
		if status == StatusForCode(e.Code) || status == 0 {
			status = portOneStatuses[e.Code]
		}
		return portOneResponseWithStatus(status, e.Code, e.Message)
	}
	if e.Status >= 500 || tossNotARefusal[e.Code] {
		return portOneResponse(PortOnePgProvider, "injected fault ("+e.Code+")")
	}
	return portOneResponse(PortOneInvalidRequest, "injected fault ("+e.Code+")")
}

func (portOneAPI) consecutiveCancelRule() bool { return false }

// tossNotARefusal are the 4xx Toss codes that do not refuse anything.
var tossNotARefusal = map[string]bool{
	CodeProviderError:               true,
	CodeAlreadyProcessedPayment:     true,
	CodeAlreadyCanceledPayment:      true,
	"CARD_PROCESSING_ERROR":         true,
	CodeForbiddenConsecutiveRequest: true,
}
