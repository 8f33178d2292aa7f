package httpapi

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/console"
)

// mountConsole mounts the operators' console (internal/console) at
// console.Path, on the api's store, use cases and key check.
func (s *Server) mountConsole(e *echo.Echo) {
	host := consoleHost{s: s}
	console.New(console.Config{
		Pool: s.pool, Store: s.store, Flow: s.flow, Auth: host, Host: host, Metrics: s.metrics,
		Now: s.now, BodyLimit: s.bodyLimit, Development: s.development,
	}).Register(e.Group(console.Path))
}

// consoleHost is the api's side of the console's seams (console.Auth and
// console.Host): the key cache, the request's client and logger, the
// mapping of domain errors, and the open-route admission of its sign-in.
type consoleHost struct{ s *Server }

// Authenticate checks a key presented at sign-in through the api's key
// cache, as a bearer key is checked.
func (h consoleHost) Authenticate(c echo.Context, key string) (console.Identity, error) {
	cl, err := h.s.keys.client(c.Request().Context(), key, loggerOf(c, h.s.logger))
	if err != nil {
		return console.Identity{}, err
	}
	return console.Identity{KeyID: cl.keyID, Name: cl.name, Scope: cl.scope, Owner: cl.owner}, nil
}

// SignedIn makes the session's key the request's client, as a bearer key
// would be: its access line names it.
func (h consoleHost) SignedIn(c echo.Context, id console.Identity) {
	c.Set(ctxKeyClient, client{keyID: id.KeyID, name: id.Name, scope: id.Scope, owner: id.Owner})
}

// Logger is the request's logger.
func (h consoleHost) Logger(c echo.Context) *slog.Logger { return loggerOf(c, h.s.logger) }

// NamePayment names the payment a console request is about.
func (h consoleHost) NamePayment(c echo.Context, paymentID string) { setPaymentID(c, paymentID) }

// Problem reads err as the JSON API would answer it.
func (h consoleHost) Problem(err error) (int, string, bool) {
	status, _, detail, ok := classify(err)
	return status, detail, ok
}

// OpenPOST registers the console's sign-in form as an open route: read on
// the unauthenticated budget, within its body deadline (openPOST).
func (h consoleHost) OpenPOST(g *echo.Group, path string, handler echo.HandlerFunc) {
	h.s.openPOST(g, path, handler, nil)
}
