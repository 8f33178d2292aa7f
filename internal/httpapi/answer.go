package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/store"
)

// ctxKeyClaim is where the idempotency middleware leaves a request's claim
// on its Idempotency-Key for the handler.
const ctxKeyClaim = "payment-outbox.idempotency-claim"

// claim is a request's hold on a client's Idempotency-Key.
type claim struct {
	rec store.IdempotencyRecord
	// keptInTx: the handler stored its answer in the transaction that made
	// its change, and that transaction committed; the middleware has
	// nothing left to keep.
	keptInTx bool
}

// answer is a JSON answer decided inside a handler's transaction and sent
// once that transaction has committed.
type answer struct {
	status int
	header map[string]string
	body   []byte
	claim  *claim
}

// answerInTx renders a handler's answer inside the transaction that makes
// its change. When the request holds an Idempotency-Key the answer is stored
// as that key's on tx, so it commits with the change it answers, or not at
// all: a COMMIT whose acknowledgement is lost (the api answers 5xx) leaves the
// answer in place, and the client's retry under the same key replays it
// instead of making the change a second time.
func (s *Server) answerInTx(c echo.Context, tx pgx.Tx, status int, v any, header map[string]string) (answer, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return answer{}, fmt.Errorf("error encoding answer: %w", err)
	}
	// Byte for byte what c.JSON would have sent.
	body = append(body, '\n')
	a := answer{status: status, header: map[string]string{echo.HeaderContentType: echo.MIMEApplicationJSON}, body: body}
	for k, v := range header {
		a.header[k] = v
	}
	cl, _ := c.Get(ctxKeyClaim).(*claim)
	if cl == nil {
		return a, nil
	}
	rec := cl.rec
	rec.Status, rec.Body = status, body
	rec.Header = make(map[string]string, len(replayedHeaders))
	for _, k := range replayedHeaders {
		if v, ok := a.header[k]; ok {
			rec.Header[k] = v
		}
	}
	kept, err := s.store.CompleteIdempotencyKey(c.Request().Context(), tx, rec)
	if err != nil {
		return a, err
	}
	if !kept {
		// A later request took the marker over as abandoned: this one ran
		// too long to be the key's answer, so its change must not commit.
		return a, errors.New("error keeping the answer for an Idempotency-Key: the marker was taken over")
	}
	a.claim = cl
	return a, nil
}

// send writes the answer; call it only after the transaction committed.
func (a answer) send(c echo.Context) error {
	if a.claim != nil {
		a.claim.keptInTx = true
	}
	h := c.Response().Header()
	for k, v := range a.header {
		if k != echo.HeaderContentType {
			h.Set(k, v)
		}
	}
	return c.Blob(a.status, a.header[echo.HeaderContentType], a.body)
}
