package httpapi

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
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

// consoleAct takes an operator action from the payment page: the first
// post shows what will happen and asks to confirm; the second takes it.
func (s *Server) consoleAct(c echo.Context) error {
	cs, _ := c.Get(ctxKeyConsole).(consoleSession)
	if cs.client.scope != apikey.ScopeOperator {
		return s.consoleError(c, http.StatusForbidden, "A readonly key can look but not act. Sign in with an operator key to take actions.")
	}
	action := payment.Action(formValue(c, "action"))
	// settle-cancel takes a decision the console's form does not ask for;
	// it is taken through the API (docs/runbook.md).
	if !slices.Contains(payment.Actions(), action) || action == payment.ActionRetryJob || action == payment.ActionSettleCancel {
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
