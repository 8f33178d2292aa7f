package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// The console is the operators' web UI at /console: server-rendered
// html/template pages (no JavaScript build step; one small static script
// shows times in the viewer's zone), a session cookie after signing in with
// an operator or readonly key, a CSRF token in every form, and a strict
// Content-Security-Policy. It reads what the JSON API reads and takes the
// operator actions through the same payflow scripts, so every action is
// audited the same way whichever door it came through.
//
// The api never calls the gateway. The gateway's side of a payment is what
// the relay's newest call for it brought back (kept on the attempt row);
// "Look up now" enqueues a lookup, and the page shows its answer once the
// relay has made it.

//go:embed console/*.html console/static/*
var consoleFS embed.FS

// Console cookies and lifetimes.
const (
	consoleCookie      = "po_console"
	consoleLoginCookie = "po_console_login"
	consolePath        = "/console"
	// consoleSessionTTL is one working day: long enough for a shift,
	// short enough that a forgotten laptop's session ends by itself.
	consoleSessionTTL = 8 * time.Hour
)

// consoleCSP allows nothing but the console's own stylesheet and script,
// and forms that post back to it.
const consoleCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consoleSession is the signed-in user of a console request.
type consoleSession struct {
	client client
	csrf   string
}

const ctxKeyConsole = "httpapi.console"

// consoleRoutes registers the console's pages.
func (s *Server) consoleRoutes(e *echo.Echo) {
	tmpl := template.Must(template.New("").Funcs(consoleFuncs).ParseFS(consoleFS, "console/*.html"))
	s.consoleTmpl = tmpl
	static, err := fs.Sub(consoleFS, "console/static")
	if err != nil {
		panic("httpapi: console static files: " + err.Error())
	}
	g := e.Group(consolePath, s.consoleHeaders)
	g.GET("/static/*", echo.WrapHandler(http.StripPrefix(consolePath+"/static/", http.FileServer(http.FS(static)))))
	g.GET("/login", s.consoleLoginPage)
	// Open to anyone: the form is read on the unauthenticated budget.
	s.openPOST(g, "/login", s.consoleLogin, nil)
	g.POST("/logout", s.consoleLogout, s.consoleAuth)
	e.GET(consolePath, s.consoleOverview, s.consoleHeaders, s.consoleAuth)
	g.GET("/attention", s.consoleAttention, s.consoleAuth)
	g.GET("/payments/:id", s.consolePayment, s.consoleAuth)
	g.POST("/payments/:id/act", s.consoleAct, s.consoleAuth)
	g.GET("/jobs", s.consoleJobs, s.consoleAuth)
	g.POST("/jobs/:id/retry", s.consoleRetryJob, s.consoleAuth)
	g.GET("/books", s.consoleBooks, s.consoleAuth)
}

// consoleHeaders sets the security headers of every console answer.
func (s *Server) consoleHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !s.development {
			// The console is only ever to be reached over https (docs/design.md,
			// section 21): a browser that once saw it there never again tries
			// plain http for this host, where a session cookie could be read.
			h.Set("Strict-Transport-Security", consoleHSTS)
		}
		// Forms are small; the API's body limit bounds them too.
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, s.bodyLimit)
		if !strings.HasPrefix(c.Path(), consolePath+"/static") {
			// Pages carry payments and a CSRF token: never cached.
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// consoleAuth lets a request through only with a live session; a page
// request without one is sent to the sign-in page.
func (s *Server) consoleAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(consoleCookie)
		if err != nil || ck.Value == "" {
			return c.Redirect(http.StatusSeeOther, consolePath+"/login")
		}
		hash := sha256.Sum256([]byte(ck.Value))
		sess, err := s.store.ConsoleSessionByHash(c.Request().Context(), s.pool, hash[:], s.now())
		if errors.Is(err, apikey.ErrNotFound) {
			return c.Redirect(http.StatusSeeOther, consolePath+"/login")
		}
		if err != nil {
			return fmt.Errorf("error reading console session: %w", err)
		}
		cs := consoleSession{client: client{keyID: sess.Key.ID, name: sess.Key.Name, scope: sess.Key.Scope, owner: payment.Owner(sess.Key.Owner)}, csrf: sess.CSRFToken}
		c.Set(ctxKeyConsole, cs)
		c.Set(ctxKeyClient, cs.client)
		if c.Request().Method == http.MethodPost && !validCSRF(c, cs.csrf) {
			return s.consoleError(c, http.StatusForbidden, "This form is missing its security token or it is stale. Go back, reload the page and try again.")
		}
		return next(c)
	}
}

// validCSRF compares a form's token with the session's in constant time.
// The token is read from the form body only: one in the query string would
// sit in the address bar, the history, the access logs of every proxy on
// the way and the Referer of the next page.
func validCSRF(c echo.Context, want string) bool {
	got := formValue(c, "csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// formValue is a field of a posted form's body, never of the query string
// (echo's FormValue reads both): a console form posts everything it sends,
// and a key or reason in a URL would be logged and kept in histories.
func formValue(c echo.Context, name string) string {
	return c.Request().PostFormValue(name)
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("error reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// consoleHSTS keeps browsers on https for the console's host for a year.
// No includeSubDomains or preload: which other hosts share the domain is
// the operator's business, not the api's.
const consoleHSTS = "max-age=31536000"

// setCookie sets a console cookie: HttpOnly, SameSite=Strict, and Secure
// unless the api runs in development (Config.Development), whatever the
// request came over. Deciding from the request (TLS, X-Forwarded-Proto)
// would let one plain-http request, or a proxy that forgot the header,
// hand out a session cookie a network could read.
func (s *Server) setCookie(c echo.Context, name, value string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name: name, Value: value, Path: consolePath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: !s.development,
	})
}

// consoleLoginPage shows the sign-in form. The form carries a token that
// must equal a cookie set with it, so another site cannot sign a browser in
// with a key of its choosing (login CSRF).
func (s *Server) consoleLoginPage(c echo.Context) error {
	return s.renderLogin(c, http.StatusOK, "")
}

func (s *Server) renderLogin(c echo.Context, status int, problem string) error {
	token, err := randomToken()
	if err != nil {
		return err
	}
	s.setCookie(c, consoleLoginCookie, token, 600)
	return s.render(c, status, "login.html", map[string]any{"CSRF": token, "Problem": problem})
}

// signInClient is what a sign-in's failures are counted under: the
// connection's address (not X-Forwarded-For, which the client writes) and
// the key's display prefix, the part of a key that is shown in lists and
// logs ("-" for a key that is not even well-formed, which has none).
func signInClient(c echo.Context, key string) (addr, prefix string) {
	addr = c.Request().RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	prefix = "-"
	if apikey.WellFormed(key) {
		prefix = apikey.DisplayPrefix(key)
	}
	return addr, prefix
}

// consoleLogin signs in with an operator or readonly key.
func (s *Server) consoleLogin(c echo.Context) error {
	ck, err := c.Cookie(consoleLoginCookie)
	if err != nil || !validCSRF(c, ck.Value) {
		return s.renderLogin(c, http.StatusForbidden, "The sign-in form was stale. Try again.")
	}
	key := strings.TrimSpace(formValue(c, "key"))
	addr, prefix := signInClient(c, key)
	if wait, ok := s.signIns.blocked(s.now(), addr, prefix); ok {
		s.metrics.SignInThrottled()
		c.Response().Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return s.renderLogin(c, http.StatusTooManyRequests, "Too many failed sign-ins. Wait a minute and try again.")
	}
	if !apikey.WellFormed(key) {
		s.signIns.failed(s.now(), addr, prefix)
		return s.renderLogin(c, http.StatusUnauthorized, "That is not a valid API key.")
	}
	cl, err := s.keys.client(c.Request().Context(), key, loggerOf(c, s.logger))
	if errors.Is(err, apikey.ErrNotFound) {
		s.signIns.failed(s.now(), addr, prefix)
		return s.renderLogin(c, http.StatusUnauthorized, "That key is not valid or has been revoked.")
	}
	if err != nil {
		return fmt.Errorf("error signing in: %w", err)
	}
	if cl.scope != apikey.ScopeOperator && cl.scope != apikey.ScopeReadonly {
		return s.renderLogin(c, http.StatusForbidden, "The console needs an operator or readonly key; this one is "+string(cl.scope)+".")
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	csrf, err := randomToken()
	if err != nil {
		return err
	}
	hash := sha256.Sum256([]byte(token))
	ctx := c.Request().Context()
	// Sessions past their time are swept at each sign-in: rare enough to
	// cost nothing, often enough that the table stays small.
	if err := s.store.DeleteExpiredConsoleSessions(ctx, s.pool, s.now()); err != nil {
		return err
	}
	if err := s.store.InsertConsoleSession(ctx, s.pool, hash[:], cl.keyID, csrf, s.now().Add(consoleSessionTTL)); err != nil {
		return err
	}
	loggerOf(c, s.logger).Info("console sign-in", slog.String("api_key_id", cl.keyID), slog.String("scope", string(cl.scope)))
	s.setCookie(c, consoleLoginCookie, "", -1)
	s.setCookie(c, consoleCookie, token, int(consoleSessionTTL.Seconds()))
	return c.Redirect(http.StatusSeeOther, consolePath)
}

func (s *Server) consoleLogout(c echo.Context) error {
	if ck, err := c.Cookie(consoleCookie); err == nil {
		hash := sha256.Sum256([]byte(ck.Value))
		if err := s.store.DeleteConsoleSession(c.Request().Context(), s.pool, hash[:]); err != nil {
			return err
		}
	}
	s.setCookie(c, consoleCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, consolePath+"/login")
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (s *Server) render(c echo.Context, status int, name string, data map[string]any) error {
	if cs, ok := c.Get(ctxKeyConsole).(consoleSession); ok {
		data["Session"] = map[string]any{
			"Name": cs.client.name, "Scope": string(cs.client.scope), "CSRF": cs.csrf,
			"CanAct": cs.client.scope == apikey.ScopeOperator,
		}
	}
	data["Page"] = name
	if _, ok := data["Title"]; !ok {
		data["Title"] = consoleTitles[name]
	}
	var buf bytes.Buffer
	if err := s.consoleTmpl.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("error rendering %s: %w", name, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Server) consoleError(c echo.Context, status int, msg string) error {
	return s.render(c, status, "error.html", map[string]any{"Status": status, "Message": msg})
}

// consoleFail renders a domain error (bad input, a refused action) as a
// page with its status; anything else goes to the error handler as a 500.
func (s *Server) consoleFail(c echo.Context, err error) error {
	status, _, detail, ok := classify(err)
	if !ok {
		return err
	}
	return s.consoleError(c, status, detail)
}

// overviewData is what the overview page shows.
type overviewData struct {
	Statuses      []statusCount
	Unknown       int64
	Acknowledged  int64
	Jobs          []store.OutboxJobs
	Depth         int64
	OldestAge     time.Duration
	Retrying      int64
	Discarded     map[string]int64
	DiscardedAll  int64
	Gateway       []statusCount
	GatewayNewest time.Time
	LastReconcile *time.Time
	Recent        []payment.OperatorAction
}

type statusCount struct {
	Name  string
	Count int64
}

// recentCalls is how many of the newest gateway calls the overview reads
// the gateway's health from.
const recentCalls = 200

func (s *Server) consoleOverview(c echo.Context) error {
	ctx := c.Request().Context()
	var d overviewData
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		byStatus, err := s.store.PaymentsByStatus(ctx, tx)
		if err != nil {
			return err
		}
		for _, st := range append(payment.AttentionStatuses(), payment.StatusWaitingForDeposit) {
			d.Statuses = append(d.Statuses, statusCount{string(st), byStatus[st]})
		}
		if d.Acknowledged, err = s.store.PaymentsAcknowledged(ctx, tx); err != nil {
			return err
		}
		d.Unknown = byStatus[payment.StatusUnknown] - d.Acknowledged
		if d.Jobs, err = s.store.OutboxJobs(ctx, tx); err != nil {
			return err
		}
		for _, j := range d.Jobs {
			if j.Kind == "payment_reconcile" {
				continue // periodic: always one scheduled, never a backlog
			}
			d.Depth += j.Jobs
			d.OldestAge = max(d.OldestAge, j.OldestAge)
			if j.State == "retryable" {
				d.Retrying += j.Jobs
			}
		}
		if d.Discarded, err = s.store.DiscardedJobs(ctx, tx); err != nil {
			return err
		}
		for _, n := range d.Discarded {
			d.DiscardedAll += n
		}
		calls, newest, err := s.store.RecentAttempts(ctx, tx, recentCalls)
		if err != nil {
			return err
		}
		for _, cl := range []string{"success", "transient", "unclear", "refused", "session_expired", "misconfigured", "pending", ""} {
			if n := calls[cl]; n > 0 {
				name := cl
				if name == "" {
					name = "no answer"
				}
				d.Gateway = append(d.Gateway, statusCount{name, n})
			}
		}
		d.GatewayNewest = newest
		at, ok, err := s.store.LastReconcile(ctx, tx)
		if err != nil {
			return err
		}
		if ok {
			d.LastReconcile = &at
		}
		d.Recent, err = s.store.RecentOperatorActions(ctx, tx, 10)
		return err
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "overview.html", map[string]any{"D": d, "Now": s.now()})
}

// readOnly runs read in one read-only snapshot, so a page's figures agree
// with each other.
func (s *Server) readOnly(ctx context.Context, read func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, read)
}

func (s *Server) consoleAttention(c echo.Context) error {
	statuses, err := attentionQueryStatuses(c.QueryParams()["status"])
	if err != nil {
		return s.consoleFail(c, err)
	}
	olderThan := defaultAttentionOlderThan
	if v := c.QueryParam("olderThan"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return s.consoleError(c, http.StatusBadRequest, "olderThan must be a duration such as 0s, 5m or 2h")
		}
		olderThan = d
	}
	acked := c.QueryParam("acknowledged") == "include"
	list, err := s.flow.AttentionPayments(c.Request().Context(), s.pool, statuses, payflow.AttentionQuery{
		Before: s.now().Add(-olderThan), Limit: maxAttentionLimit, IncludeAcknowledged: acked,
	})
	if err != nil {
		return err
	}
	filter := c.QueryParam("status")
	return s.render(c, http.StatusOK, "attention.html", map[string]any{
		"List": list, "Now": s.now(), "Status": filter, "OlderThan": olderThan.String(), "Acknowledged": acked,
	})
}

// gatewaySide is the gateway's record of a payment beside ours: from the
// newest call that brought one back.
type gatewaySide struct {
	Record  *payment.GatewayRecord
	Attempt *payment.Attempt
	// Diff names our fields that disagree with the gateway's record.
	Diff map[string]bool
	// Expected is the gateway status our status corresponds to.
	Expected string
}

// gatewayStatusFor is the gateway status each of ours agrees with; "" for
// ours that says nothing definite (a payment in flight or unknown).
var gatewayStatusFor = map[payment.Status]string{
	payment.StatusConfirmed:         "DONE",
	payment.StatusCanceled:          "CANCELED",
	payment.StatusPartiallyCanceled: "PARTIAL_CANCELED",
	payment.StatusFailed:            "ABORTED",
	payment.StatusExpired:           "EXPIRED",
}

func sideOf(p payment.Payment) gatewaySide {
	var g gatewaySide
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		if p.Attempts[i].Gateway != nil {
			g.Attempt, g.Record = &p.Attempts[i], p.Attempts[i].Gateway
			break
		}
	}
	g.Expected = gatewayStatusFor[p.Status]
	if g.Record == nil {
		return g
	}
	g.Diff = map[string]bool{
		"status":  g.Expected != g.Record.Status,
		"total":   p.ApprovedAmount != g.Record.TotalAmount,
		"balance": p.BalanceAmount != g.Record.BalanceAmount,
		"order":   p.OrderID != g.Record.OrderID,
	}
	// A refused confirm leaves the gateway's record READY or ABORTED and
	// our amounts at zero: both say "no charge".
	if p.Status == payment.StatusFailed && (g.Record.Status == "READY" || g.Record.Status == "IN_PROGRESS") {
		g.Diff["status"] = false
	}
	return g
}

// timelineEvent is one line of a payment's timeline.
type timelineEvent struct {
	At      time.Time
	Kind    string // intent, attempt, cancel, action
	Title   string
	Detail  string
	Class   string
	Attempt *payment.Attempt
	Action  *payment.OperatorAction
}

func timeline(p payment.Payment, actions []payment.OperatorAction) []timelineEvent {
	ev := []timelineEvent{{At: p.CreatedAt, Kind: "intent", Title: "Intent recorded",
		Detail: fmt.Sprintf("%s, %d %s", p.OrderName, p.Amount, p.Currency)}}
	if p.ConfirmRequestedAt != nil {
		ev = append(ev, timelineEvent{At: *p.ConfirmRequestedAt, Kind: "intent", Title: "Confirm requested",
			Detail: "paymentKey " + p.PaymentKey + ", key " + p.ConfirmIdempotencyKey})
	}
	for i := range p.Attempts {
		a := &p.Attempts[i]
		ev = append(ev, timelineEvent{At: a.RequestedAt, Kind: "attempt", Title: "Gateway " + string(a.Operation),
			Class: a.Classification, Attempt: a})
	}
	for _, c := range p.Cancels {
		amount := "whole balance"
		if c.Amount > 0 {
			amount = strconv.FormatInt(c.Amount, 10)
		}
		ev = append(ev, timelineEvent{At: c.CreatedAt, Kind: "cancel", Title: string(c.Kind) + " cancel " + string(c.Status),
			Detail: fmt.Sprintf("%s; %s; key %s", amount, c.Reason, c.IdempotencyKey), Class: string(c.Status)})
		if c.FailureCode != "" {
			ev[len(ev)-1].Detail += "; refused: " + c.FailureCode + " " + c.FailureMessage
		}
	}
	for i := range actions {
		a := &actions[i]
		ev = append(ev, timelineEvent{At: a.CreatedAt, Kind: "action", Title: "Operator: " + string(a.Action), Action: a})
	}
	slices.SortStableFunc(ev, func(a, b timelineEvent) int { return a.At.Compare(b.At) })
	return ev
}

func (s *Server) consolePayment(c echo.Context) error {
	ctx := c.Request().Context()
	var (
		p       payment.Payment
		actions []payment.OperatorAction
		jobs    []store.Job
	)
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		var err error
		if p, err = s.store.PaymentWithHistory(ctx, tx, payment.Everyone(), c.Param("id")); err != nil {
			return err
		}
		if actions, err = s.store.OperatorActions(ctx, tx, p.ID); err != nil {
			return err
		}
		jobs, err = s.store.PaymentJobs(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return s.consoleFail(c, err)
	}
	setPaymentID(c, p.ID)
	var failed []payment.Cancel
	for _, cn := range p.Cancels {
		if cn.Status == payment.CancelFailed {
			failed = append(failed, cn)
		}
	}
	var lastCancel *payment.Cancel
	if n := len(p.Cancels); n > 0 {
		lastCancel = &p.Cancels[n-1]
	}
	var lastAttempt *payment.Attempt
	if n := len(p.Attempts); n > 0 {
		lastAttempt = &p.Attempts[n-1]
	}
	reason := ""
	if slices.Contains(attentionStatuses, p.Status) {
		reason = payment.AttentionReason(p, lastCancel, lastAttempt)
	}
	return s.render(c, http.StatusOK, "payment.html", map[string]any{
		"P": p, "Gateway": sideOf(p), "Timeline": timeline(p, actions), "Jobs": jobs,
		"Failed": failed, "Reason": reason, "Actions": paymentActions(p, failed),
	})
}

// actionChoice is an action the payment page offers, and why or why not.
type actionChoice struct {
	Action payment.Action
	Label  string
	Help   string
}

// paymentActions lists the actions worth offering for a payment; the
// server checks each again when it is taken.
func paymentActions(p payment.Payment, failed []payment.Cancel) []actionChoice {
	var out []actionChoice
	if p.PaymentKey != "" {
		out = append(out, actionChoice{payment.ActionLookup, "Look up now", "Ask the gateway now; the relay settles the payment from its record."})
	}
	if slices.Contains(attentionStatuses, p.Status) && p.PaymentKey != "" {
		out = append(out, actionChoice{payment.ActionResolve, "Resolve from the gateway", "A fresh lookup settles the payment to what the gateway's record shows; never to anything typed here."})
	}
	if p.CanRetry() {
		out = append(out, actionChoice{payment.ActionRetry, "Retry the job now", "Run the confirm or cancel job again now, under the same Idempotency-Key."})
	}
	if len(failed) > 0 {
		out = append(out, actionChoice{payment.ActionResendCancel, "Send the refused cancel again", "Under a new key, with our balance as refundableAmount, so it can never refund twice."})
	}
	if p.Status == payment.StatusUnknown && !p.Acknowledged() {
		out = append(out, actionChoice{payment.ActionAcknowledge, "Acknowledge", "Take it off the alert list, keeping its status (for example: refunded by phone)."})
	}
	return out
}

// consoleAct takes an operator action from the payment page: the first
// post shows what will happen and asks to confirm; the second takes it.
func (s *Server) consoleAct(c echo.Context) error {
	cs, _ := c.Get(ctxKeyConsole).(consoleSession)
	if cs.client.scope != apikey.ScopeOperator {
		return s.consoleError(c, http.StatusForbidden, "A readonly key can look but not act. Sign in with an operator key to take actions.")
	}
	action := payment.Action(formValue(c, "action"))
	// settle-cancel takes a decision, and refund-account the customer's
	// bank account, that the console's form does not ask for; they are
	// taken through the API (docs/runbook.md).
	if !slices.Contains(payment.Actions(), action) || action == payment.ActionRetryJob || action == payment.ActionSettleCancel ||
		action == payment.ActionRefundAccount {
		return s.consoleError(c, http.StatusBadRequest, "Unknown action.")
	}
	reason, cancelID := formValue(c, "reason"), formValue(c, "cancel")
	id := c.Param("id")
	if err := payment.ValidateReason(reason); err != nil {
		return s.consoleFail(c, err)
	}
	if formValue(c, "confirmed") != "yes" {
		p, err := s.store.Payment(c.Request().Context(), s.pool, id)
		if err != nil {
			return s.consoleFail(c, err)
		}
		return s.render(c, http.StatusOK, "confirm.html", map[string]any{
			"P": p, "Action": action, "Reason": reason, "Cancel": cancelID, "Effect": actionEffect(action),
		})
	}
	a, err := s.runAction(c.Request().Context(), operatorOf(c), action, id, cancelID, reason)
	if err != nil {
		return s.consoleFail(c, fmt.Errorf("error taking operator action %s: %w", action, err))
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("%s/payments/%s#action-%d", consolePath, id, a.ID))
}

// actionEffect says on the confirmation page what an action will do.
func actionEffect(a payment.Action) string {
	switch a {
	case payment.ActionLookup:
		return "A lookup goes into the outbox. The relay asks the gateway and settles the payment from its record; the audit row then says what it found."
	case payment.ActionResolve:
		return "A lookup that insists on a fresh answer goes into the outbox. The payment moves only to what the gateway's record shows."
	case payment.ActionRetry:
		return "The payment's confirm or cancel job runs again now, under the same Idempotency-Key; the gateway replays what it already did."
	case payment.ActionResendCancel:
		return "The refused cancel is sent again under a new Idempotency-Key, with our balance as refundableAmount: if money already went back, the gateway refuses it."
	case payment.ActionAcknowledge:
		return "The payment leaves the alert list and the attention page with its status unchanged, until its status moves."
	}
	return ""
}

// consoleJobStates are the job states the jobs page lists; the store finds
// no others (JobListByStates).
var consoleJobStates = []string{"retryable", "discarded"}

func (s *Server) consoleJobs(c echo.Context) error {
	states := consoleJobStates
	if st := c.QueryParam("state"); st != "" {
		if !slices.Contains(consoleJobStates, st) {
			return s.consoleError(c, http.StatusBadRequest, "state must be retryable or discarded")
		}
		states = []string{st}
	}
	jobs, err := s.store.JobsInStates(c.Request().Context(), s.pool, states, 200)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "jobs.html", map[string]any{"Jobs": jobs, "State": c.QueryParam("state")})
}

func (s *Server) consoleRetryJob(c echo.Context) error {
	cs, _ := c.Get(ctxKeyConsole).(consoleSession)
	if cs.client.scope != apikey.ScopeOperator {
		return s.consoleError(c, http.StatusForbidden, "A readonly key can look but not act. Sign in with an operator key to take actions.")
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return s.consoleError(c, http.StatusNotFound, "No such job.")
	}
	if _, err := s.retryJob(c.Request().Context(), operatorOf(c), id, formValue(c, "reason")); err != nil {
		return s.consoleFail(c, err)
	}
	return c.Redirect(http.StatusSeeOther, consolePath+"/jobs")
}

// consoleTitles are the pages' titles.
var consoleTitles = map[string]string{
	"login.html": "Sign in", "error.html": "Problem", "overview.html": "Overview", "attention.html": "Attention",
	"payment.html": "Payment", "jobs.html": "Jobs", "confirm.html": "Confirm", "books.html": "Books",
}

// consoleFuncs are the templates' helpers.
var consoleFuncs = template.FuncMap{
	"utc": func(t any) string {
		switch t := t.(type) {
		case time.Time:
			return t.UTC().Format(time.RFC3339)
		case *time.Time:
			if t != nil {
				return t.UTC().Format(time.RFC3339)
			}
		}
		return ""
	},
	"ago": func(now, t time.Time) string {
		return now.Sub(t).Round(time.Second).String()
	},
	"dur": func(d time.Duration) string {
		if d >= time.Second {
			return d.Round(time.Second).String()
		}
		return d.Round(100 * time.Microsecond).String()
	},
	"statusClass": func(s any) string { return "st-" + strings.ReplaceAll(fmt.Sprint(s), "_", "-") },
	"deref":       func(p *time.Time) time.Time { return *p },
	"lower":       strings.ToLower,
}
