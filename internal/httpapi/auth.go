package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// ctxKeyClient holds the authenticated client of a request.
const ctxKeyClient = "httpapi.client"

// client is who sent a request: the API key it presented, and the owner
// that key belongs to.
type client struct {
	keyID string
	name  string
	scope apikey.Scope
	owner payment.Owner
}

// reach is whose payments and webhook endpoints the client sees and acts
// on: a checkout key its owner's only; operators and read-only keys, whose
// work is looking after every checkout, all of them (docs/design.md,
// "Owners").
func (cl client) reach() payment.Reach {
	if cl.scope == apikey.ScopeCheckout {
		return payment.OwnerOnly(cl.owner)
	}
	return payment.Everyone()
}

// idempotencyScope is whose the client's Idempotency-Keys are: its owner's
// for a checkout key, so that a retry under the owner's next key replays
// the first answer. An operator's answers may show any owner's payments, so
// its keys are its owner's operators' alone, and never replayed to a
// checkout key that happens to send the same key and request.
func (cl client) idempotencyScope() string {
	if cl.scope == apikey.ScopeCheckout {
		return string(cl.owner)
	}
	return string(cl.owner) + "/" + string(cl.scope)
}

// ownerOf is the owner of the request's client: whose the payments and
// endpoints it creates are.
func ownerOf(c echo.Context) payment.Owner {
	cl, _ := clientOf(c)
	return cl.owner
}

// reachOf is the reach of the request's client. A route without
// authentication reaches no owner's payments; it never asks.
func reachOf(c echo.Context) payment.Reach {
	cl, ok := clientOf(c)
	if !ok {
		// Unreachable on the routes that call it (they all authenticate);
		// an owner no key can have keeps a wiring mistake from reaching
		// every payment.
		return payment.OwnerOnly("-")
	}
	return cl.reach()
}

// allows reports whether the client's scope covers a route that accepts
// scopes; operator covers everything.
func (cl client) allows(scopes []apikey.Scope) bool {
	return cl.scope == apikey.ScopeOperator || slices.Contains(scopes, cl.scope)
}

// Scopes of the routes. operator is implied everywhere (see client.allows).
var (
	scopesWrite = []apikey.Scope{apikey.ScopeCheckout}
	scopesRead  = []apikey.Scope{apikey.ScopeCheckout, apikey.ScopeReadonly}
	// scopesOps: the attention list and the operator actions.
	scopesOps = []apikey.Scope{apikey.ScopeOperator}
	// scopesAudit: an operator's work is readable by those who may look.
	scopesAudit = []apikey.Scope{apikey.ScopeReadonly}
	// scopesWebhooks: the webhook endpoints are the checkout's own
	// set-up (their secrets, where its events go), managed by it and by
	// operators; a readonly key does not see them.
	scopesWebhooks = []apikey.Scope{apikey.ScopeCheckout}
)

// scoped is authenticate plus a check that the key's scope covers the
// route: a valid key outside it gets 403 insufficient_scope before the
// handler (and so any write) runs.
func (s *Server) scoped(scopes []apikey.Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return s.authenticate(func(c echo.Context) error {
			cl, _ := clientOf(c)
			if !cl.allows(scopes) {
				return &problemError{status: http.StatusForbidden, code: codeInsufficientScope,
					detail: fmt.Sprintf("this API key's scope is %s; this call needs %s", cl.scope, scopeList(scopes))}
			}
			return next(c)
		})
	}
}

// scopeList names the scopes a route accepts, operator included.
func scopeList(scopes []apikey.Scope) string {
	names := []string{}
	for _, sc := range scopes {
		if sc != apikey.ScopeOperator {
			names = append(names, string(sc))
		}
	}
	// An operator may do everything, so it is always one of the answers,
	// and named once.
	return strings.Join(append(names, string(apikey.ScopeOperator)), " or ")
}

// clientOf returns the request's authenticated client; ok is false on a
// route that does not authenticate.
func clientOf(c echo.Context) (client, bool) {
	cl, ok := c.Get(ctxKeyClient).(client)
	return cl, ok
}

// keyLookup finds the unrevoked API key with a hash; a miss is an error
// wrapping apikey.ErrNotFound. *store.Store satisfies it on a pool.
type keyLookup interface {
	ActiveAPIKeyByHash(ctx context.Context, db store.DBTX, hash []byte) (apikey.Key, error)
	TouchAPIKey(ctx context.Context, db store.DBTX, id string, usedAt, staleBefore time.Time) error
}

// authenticate lets a request through only with `Authorization: Bearer
// <key>` naming an unrevoked API key, and records who the client is. Anything
// else gets 401 before the handler (and so any write) runs.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key, err := bearerToken(c.Request().Header.Values(echo.HeaderAuthorization))
		if err != nil {
			return err
		}
		cl, err := s.keys.client(c.Request().Context(), key, loggerOf(c, s.logger))
		if errors.Is(err, apikey.ErrNotFound) {
			return unauthorized("the API key is not valid or has been revoked", true)
		}
		if err != nil {
			// The database, not the client: a 500, never a 401 that would
			// tell a client with a good key to go and get another.
			return fmt.Errorf("error authenticating request: %w", err)
		}
		c.Set(ctxKeyClient, cl)
		return next(c)
	}
}

// bearerToken reads the key from the Authorization header values. The scheme
// is case-insensitive (RFC 9110 §11.1); exactly one header, one space and a
// well-formed key are required, and a malformed key never reaches the
// database.
func bearerToken(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", unauthorized("this call needs an API key: send Authorization: Bearer <key>", false)
	case 1:
	default:
		return "", unauthorized("send exactly one Authorization header", true)
	}
	scheme, key, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthorized("the Authorization header must use the Bearer scheme: Authorization: Bearer <key>", true)
	}
	if !apikey.WellFormed(key) {
		return "", unauthorized("the API key is not valid or has been revoked", true)
	}
	return key, nil
}

// unauthorized returns the 401 problem. invalidToken adds RFC 6750's
// error="invalid_token" for a credential that was presented but refused.
func unauthorized(detail string, invalidToken bool) *problemError {
	challenge := `Bearer realm="payment-outbox"`
	if invalidToken {
		challenge += `, error="invalid_token"`
	}
	return &problemError{
		status: http.StatusUnauthorized,
		code:   codeUnauthorized,
		detail: detail,
		header: map[string]string{echo.HeaderWWWAuthenticate: challenge},
	}
}

// keyCache remembers recently verified keys, so that authentication is not a
// query per request.
//
// The price is revocation latency: a revoked key keeps working for up to ttl
// on each API process that verified it just before. With the default of 10
// seconds that is shorter than anyone takes to notice a leak and revoke, and
// it saves a query on nearly every request. Only valid keys are cached, so
// the map is bounded by the number of keys in use, and a key created a
// moment ago works at once.
type keyCache struct {
	lookup keyLookup
	db     store.DBTX
	now    func() time.Time
	ttl    time.Duration

	mu    sync.Mutex
	valid map[[sha256.Size]byte]cachedKey
}

// cachedKey is a verified key and until when it may be trusted unchecked.
type cachedKey struct {
	client client
	until  time.Time
}

// client returns the client key belongs to, or an error wrapping
// apikey.ErrNotFound when no active key matches. log is the request's
// logger, for the one line a lookup may write.
//
// Keys are found by their SHA-256, in the map and through the database's
// unique index alike, so no code path compares the presented secret with a
// stored one byte by byte: there is no timing difference to learn a key's
// prefix from.
func (k *keyCache) client(ctx context.Context, key string, log *slog.Logger) (client, error) {
	hash := apikey.Hash(key)
	now := k.now()

	k.mu.Lock()
	entry, ok := k.valid[hash]
	k.mu.Unlock()
	if ok && now.Before(entry.until) {
		return entry.client, nil
	}

	found, err := k.lookup.ActiveAPIKeyByHash(ctx, k.db, hash[:])
	if err != nil {
		if errors.Is(err, apikey.ErrNotFound) {
			k.mu.Lock()
			delete(k.valid, hash)
			k.mu.Unlock()
		}
		return client{}, err
	}
	cl := client{keyID: found.ID, name: found.Name, scope: found.Scope, owner: payment.Owner(found.Owner)}

	k.mu.Lock()
	if len(k.valid) >= maxCachedKeys {
		k.pruneLocked(now)
	}
	k.valid[hash] = cachedKey{client: cl, until: now.Add(k.ttl)}
	k.mu.Unlock()

	// Best effort: "last used" is for people reading `api keys list`, and
	// failing a payment request because it could not be written would be
	// absurd.
	if err := k.lookup.TouchAPIKey(ctx, k.db, cl.keyID, now, now.Add(-k.ttl)); err != nil {
		log.Warn("error recording api key use", slog.String("api_key_id", cl.keyID), slog.String("error", err.Error()))
	}
	return cl, nil
}

// maxCachedKeys bounds the cache should a deployment have very many keys.
const maxCachedKeys = 10_000

// pruneLocked drops expired entries, and everything if that is not enough.
// k.mu must be held.
func (k *keyCache) pruneLocked(now time.Time) {
	for h, e := range k.valid {
		if !now.Before(e.until) {
			delete(k.valid, h)
		}
	}
	if len(k.valid) >= maxCachedKeys {
		clear(k.valid)
	}
}
