package gateway

import "time"

// Result is everything the relay records about one gateway call. Exactly one
// of these holds:
//
//   - Payment != nil: a 2xx whose body is a usable Payment;
//   - Code != "": an error status whose body is the gateway's {code, message};
//   - Err != nil: no usable answer (transport error, timeout, an unreadable or
//     unexpected body, or a request the client refused to send).
//
// HTTPStatus is set whenever a response arrived, including alongside Err, so
// that Classify can tell "no answer" from "an answer we cannot read".
type Result struct {
	// Payment is the gateway's Payment from a 2xx answer.
	Payment *Payment
	// HTTPStatus is the response status, or 0 when no response arrived.
	HTTPStatus int
	// Code is the gateway's error code, e.g. "REJECT_CARD_COMPANY".
	Code string
	// Message is the gateway's human-readable error message, if any.
	Message string
	// Latency is the time from sending the request to having read the whole
	// response (or giving up).
	Latency time.Duration
	// Err is set when there is no usable answer. Its text never contains the
	// secret key.
	Err error
}
