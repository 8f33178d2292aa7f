package gateway

import "time"

// KeyAnswer is one request sent under an Idempotency-Key, as the relay
// recorded it on its attempt row.
type KeyAnswer struct {
	// SentAt is when the request was sent.
	SentAt time.Time
	// Finished is false when the relay died during the call: nothing is
	// known of its answer.
	Finished bool
	// HTTPStatus is 0 when no answer arrived (timeout, connection error).
	HTTPStatus int
	// Code is the gateway's error code, "" for a success or no answer.
	Code string
	// StillRunning says Code is one of the gateway's "a request under this
	// key may still be in progress" answers (Table.StillRunning): Toss's
	// IDEMPOTENT_REQUEST_PROCESSING, PortOne's
	// IDEMPOTENCY_OUTSTANDING_REQUEST.
	StillRunning bool
}

// definite reports whether the answer came from the gateway itself and says
// that nothing is running under the key any more: an error body with a code,
// other than "still processing", "too soon" or a timeout status.
func (a KeyAnswer) definite() bool {
	switch {
	case !a.Finished, a.HTTPStatus == 0, a.Code == "", a.StillRunning:
		return false
	case a.HTTPStatus == 408, a.HTTPStatus == 504:
		return false
	}
	return true
}

// KeyAbandonable is the key rule: whether the relay may look the payment up
// and, if the lookup shows the operation was not performed, move the
// operation to a new Idempotency-Key. answers are every request sent under
// the key, oldest first; quiet is the gateway timeout plus a margin.
//
// The gateway replays a key's first answer, so a key can get stuck on a
// cached error; but a request the relay gave up waiting for may still be
// running at the gateway and land later. A key is therefore abandoned only
// when the gateway is certainly done with it:
//
//  1. the last two answers under it are the same definite answer (replayed
//     identically, so the gateway has a final answer stored for the key), and
//  2. more than quiet has passed since the last request under it was sent,
//     so no request of ours can still be in flight, and
//  3. (the caller's part) a lookup made after that shows the operation was
//     not performed.
//
// Never after a timeout, a connection error or a "still running" answer
// (Toss's 409 IDEMPOTENT_REQUEST_PROCESSING, PortOne's 409
// IDEMPOTENCY_OUTSTANDING_REQUEST): each says a request under the key may
// still be running. Toss's FORBIDDEN_CONSECUTIVE_REQUEST says another
// cancel of the payment was running a moment before; the quiet period
// covers it (docs/design.md section 6).
// docs/design.md has the reasoning and the incident it prevents (a partial
// cancel refunded twice).
//
// A key older than the gateway's retention (KeyForgotten) is abandonable on
// the quiet period alone: the gateway has forgotten it, so it protects
// nothing and a new key is no riskier (docs/design.md, "Key retention").
func KeyAbandonable(answers []KeyAnswer, now time.Time, quiet, retention time.Duration) bool {
	if !KeyStuck(answers) && !KeyForgotten(answers, now, retention) {
		return false
	}
	return now.Sub(LastSent(answers)) > quiet
}

// KeyForgotten reports whether the gateway has forgotten the key: its first
// request was sent more than retention ago (the gateway's window runs from
// the first request under a key). A request under it is then processed as
// a fresh one, so the relay never relies on it replaying: it looks the
// payment up first. A zero retention forgets nothing.
func KeyForgotten(answers []KeyAnswer, now time.Time, retention time.Duration) bool {
	if len(answers) == 0 || retention <= 0 {
		return false
	}
	return now.Sub(FirstSent(answers)) > retention
}

// FirstSent returns when the oldest request under the key was sent.
func FirstSent(answers []KeyAnswer) time.Time {
	var t time.Time
	for i, a := range answers {
		if i == 0 || a.SentAt.Before(t) {
			t = a.SentAt
		}
	}
	return t
}

// KeyStuck reports the first half of the key rule: the last two answers under
// the key are the same definite answer. A stuck key may still not be
// abandoned until KeyAbandonable also holds.
func KeyStuck(answers []KeyAnswer) bool {
	n := len(answers)
	if n < 2 {
		return false
	}
	last, prev := answers[n-1], answers[n-2]
	return last.definite() && prev.definite() && last.HTTPStatus == prev.HTTPStatus && last.Code == prev.Code
}

// LastSent returns when the newest request under the key was sent.
func LastSent(answers []KeyAnswer) time.Time {
	var t time.Time
	for _, a := range answers {
		if a.SentAt.After(t) {
			t = a.SentAt
		}
	}
	return t
}
