package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// Keys of the values middleware and handlers share through echo.Context.
const (
	// ctxKeyLogger: the request's logger, carrying request_id and, once the
	// request is known to be about a payment, payment_id.
	ctxKeyLogger = "httpapi.logger"
	// ctxKeyRequestLogger: the request's logger with request_id only, which
	// setPaymentID adds payment_id to.
	ctxKeyRequestLogger = "httpapi.requestLogger"
	ctxKeyPaymentID     = "httpapi.paymentID"
)

// routeUnmatched is the route label of requests no route matched: their raw
// path must not become a label value.
const routeUnmatched = "unmatched"

// maxRequestIDLen bounds a client's X-Request-Id. Longer ones are replaced,
// not truncated: a truncated id would no longer match the client's logs.
const maxRequestIDLen = 128

// requestID takes the client's X-Request-Id when it is sane, else makes one,
// returns it in the response and puts it in the request's logger, so the
// client's logs, the access line and any error line can be joined.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		l := s.logger.With(slog.String("request_id", id))
		c.Set(ctxKeyRequestLogger, l)
		c.Set(ctxKeyLogger, l)
		// A route naming a payment is about it from the first line on, even
		// when the handler never gets to load it (a 401, a replayed answer,
		// an unknown id). Only a well-formed id: anything else names no
		// payment, and a client's garbage does not belong in payment_id.
		if u, err := uuid.Parse(c.Param("id")); err == nil {
			setPaymentID(c, u.String())
		}
		return next(c)
	}
}

// saneRequestID accepts 1 to maxRequestIDLen visible ASCII characters.
// Anything else (control characters, spaces, non-ASCII) could forge or break
// log lines downstream.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// loggerOf returns the request's logger (carrying its request id), or
// fallback outside a request.
func loggerOf(c echo.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := c.Get(ctxKeyLogger).(*slog.Logger); ok {
		return l
	}
	return fallback
}

// setPaymentID names the payment a request is about: every log line of the
// request from here on (its access line included) carries payment_id.
func setPaymentID(c echo.Context, id string) {
	if cur, _ := c.Get(ctxKeyPaymentID).(string); cur == id {
		return
	}
	c.Set(ctxKeyPaymentID, id)
	// From the request_id logger, not the current one, so a second call
	// replaces payment_id rather than adding another.
	if l, ok := c.Get(ctxKeyRequestLogger).(*slog.Logger); ok {
		c.Set(ctxKeyLogger, l.With(slog.String("payment_id", id)))
	}
}

// accessLog writes one line per request once its answer is known, and
// counts the request in the metrics.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			// Answer now, so the status logged is the status sent. Echo
			// does not call the error handler again for a nil error.
			c.Error(err)
		}
		elapsed := time.Since(start)
		req, res := c.Request(), c.Response()
		route := c.Path()
		if !s.routePaths[route] {
			route = routeUnmatched
		}
		s.metrics.ObserveRequest(route, req.Method, res.Status, elapsed)

		// payment_id, when the request is about one, comes with the
		// request's logger (setPaymentID).
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("route", c.Path()),
			slog.String("path", req.URL.Path),
			slog.Int("status", res.Status),
			slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
			slog.Int64("bytes", res.Size),
		}
		if cl, ok := clientOf(c); ok {
			attrs = append(attrs, slog.String("api_key_id", cl.keyID))
		}
		if res.Header().Get(headerIdempotentReplayed) != "" {
			attrs = append(attrs, slog.Bool("replayed", true))
		}
		level := slog.LevelInfo
		switch {
		case c.Get(ctxKeyRefused) != nil, c.Get(ctxKeyQuiet) != nil:
			// Counted in payment_outbox_http_overloaded_total (or, for a
			// webhook that did nothing new, in
			// payment_outbox_gateway_webhooks_total); a line each, at the
			// rate an overload or a flood brings them, would add to it.
			level = slog.LevelDebug
		case res.Status >= http.StatusInternalServerError:
			level = slog.LevelError
		case route == routeMetrics && res.Status < http.StatusBadRequest:
			// A scrape every few seconds from every Prometheus would drown
			// the lines about payments.
			level = slog.LevelDebug
		}
		loggerOf(c, s.logger).LogAttrs(req.Context(), level, "request", attrs...)
		return nil
	}
}

// timeout gives the request's context a deadline, so no request holds a
// connection (and, in a transaction, a row lock) for longer than a client
// would wait for the answer.
func (s *Server) timeout(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		d := s.reqTimeout
		if c.QueryParams().Has("wait") {
			// A wait is time spent idle, with no connection or lock held;
			// the database work around it keeps the usual bound.
			d += MaxWait
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), d)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// recoverPanic turns a panic in a handler into a 500 problem (and a logged
// stack) instead of a dropped connection. A transaction the handler had
// open is rolled back by pgx.BeginFunc as the panic unwinds through it.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler { //nolint:errorlint // a recovered panic value, not a returned error: net/http panics with ErrAbortHandler itself, never wrapped
				// net/http's way to abort a response on purpose.
				panic(r)
			}
			loggerOf(c, s.logger).Error("panic while handling request",
				slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("error handling request: panic: %v", r)
		}()
		return next(c)
	}
}
