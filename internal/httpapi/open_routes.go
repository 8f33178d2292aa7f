package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Unauthenticated routes (docs/design.md, "Overload"): the gateways'
// webhooks and the console's sign-in take a body from anyone, before any
// credential can be checked. They never take a slot of the checkout budget
// (admit lets them by). Instead each reads its whole body first, within a
// short deadline of its own, holding nothing but its connection, and only
// then takes a slot of the unauthenticated budget for its work: so a client
// trickling a body a byte at a time holds no slot, and is cut off within
// seconds rather than at the server's ReadTimeout.

// poster is where a route is registered: *echo.Echo or an *echo.Group.
type poster interface {
	POST(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
}

// openPOST registers an unauthenticated POST route that reads a body.
// precheck, when not nil, runs before a byte of the body is read: whatever
// can be judged from the headers alone is judged there, so a request that
// fails it costs nothing.
func (s *Server) openPOST(r poster, path string, h echo.HandlerFunc, precheck echo.HandlerFunc) {
	route := r.POST(path, h, s.openBody(precheck))
	s.openRoutes[http.MethodPost+" "+route.Path] = true
}

// openBody is the middleware of an unauthenticated route: precheck, then
// the body read whole within the unauthenticated body deadline, then a slot
// of the unauthenticated budget for the handler's work.
func (s *Server) openBody(precheck echo.HandlerFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if precheck != nil {
				if err := precheck(c); err != nil {
					return err
				}
			}
			if err := s.bufferBody(c); err != nil {
				return err
			}
			release, ok := s.unauthenticated.take(s.now())
			if !ok {
				s.metrics.UnauthenticatedOverloaded()
				c.Set(ctxKeyRefused, true)
				return overloaded("this api process has as many unauthenticated requests at work as it takes; nothing was done; send again after Retry-After")
			}
			defer release()
			return next(c)
		}
	}
}

// bufferBody reads the request's whole body, within the body limit and the
// unauthenticated body deadline, and puts it back as an in-memory body for
// the handler (readBody, FormValue) to read. The deadline is the
// connection's own read deadline, set for this request alone and lifted
// once the body is in: the server-wide ReadTimeout is the authenticated
// routes' bound and stays as it is. A connection that cannot take a
// deadline (a test's recorder) is read without one.
func (s *Server) bufferBody(c echo.Context) error {
	req := c.Request()
	if req.ContentLength > s.bodyLimit {
		return s.bodyTooLarge()
	}
	rc := http.NewResponseController(c.Response())
	// Wall time, not s.now: a deadline is the network's, and the server's
	// clock may be a test's.
	deadlined := rc.SetReadDeadline(time.Now().Add(s.openBodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.bodyLimit))
	if deadlined {
		// Lifted, not restored: what is left to read of this request is
		// nothing, and the server sets the next request's deadlines
		// itself. A deadline left in place would end the request's
		// context once it passed (the server reads the idle connection
		// in the background and takes the timeout for a hang-up).
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return s.bodyTooLarge()
		case errors.As(err, &ne) && ne.Timeout():
			s.metrics.UnauthenticatedBodyTimeout()
			// Counted; a line each, at the rate a slow-body attack
			// brings them, would add to it.
			c.Set(ctxKeyRefused, true)
			return &problemError{status: http.StatusRequestTimeout, code: codeBodyTimeout,
				detail: fmt.Sprintf("the request body did not arrive within %s; nothing was done", s.openBodyTimeout),
				// The connection is in the middle of a body: it cannot
				// carry another request.
				header: map[string]string{echo.HeaderConnection: "close"}}
		}
		return invalid(payment.CodeInvalidRequest, "the request body could not be read")
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return nil
}

// closeUnread closes the connection after any answer given before the
// request's body was read to its end: a refusal (401, 404, 503 overloaded,
// the PortOne header check) or an answer that never needed the body.
// Otherwise net/http, to keep the connection, reads up to 256 KiB of what is
// left before it writes the answer, at whatever pace the client sends it:
// a stranger's slow body would hold the request, and any slot it holds,
// until the ReadTimeout, however early we refused it (docs/design.md,
// "Overload"). A client that sent a body we did not read reconnects, which
// costs it a handshake and us nothing held.
func (s *Server) closeUnread(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
			return next(c)
		}
		body := &trackedBody{ReadCloser: req.Body}
		req.Body = body
		res := c.Response()
		res.Before(func() {
			if !body.eof.Load() {
				res.Header().Set(echo.HeaderConnection, "close")
			}
		})
		return next(c)
	}
}

// trackedBody is a request body that remembers having been read to its end.
type trackedBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}
