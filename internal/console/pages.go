package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
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

// Register mounts the console's pages on g, the group of Path.
func (s *Console) Register(g *echo.Group) {
	g.Use(s.consoleHeaders)
	g.GET("/static/*", echo.WrapHandler(http.StripPrefix(consolePath+"/static/", http.FileServer(http.FS(staticFiles())))))
	g.GET("/login", s.consoleLoginPage)
	// Open to anyone: the form is read on the unauthenticated budget.
	s.host.OpenPOST(g, "/login", s.consoleLogin)
	g.POST("/logout", s.consoleLogout, s.consoleAuth)
	g.GET("", s.consoleOverview, s.consoleAuth)
	g.GET("/attention", s.consoleAttention, s.consoleAuth)
	g.GET("/payments/:id", s.consolePayment, s.consoleAuth)
	g.POST("/payments/:id/act", s.consoleAct, s.consoleAuth)
	g.GET("/jobs", s.consoleJobs, s.consoleAuth)
	g.POST("/jobs/:id/retry", s.consoleRetryJob, s.consoleAuth)
	g.GET("/books", s.consoleBooks, s.consoleAuth)
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (s *Console) render(c echo.Context, status int, name string, data map[string]any) error {
	if cs, ok := c.Get(ctxKeyConsole).(consoleSession); ok {
		data["Session"] = map[string]any{
			"Name": cs.id.Name, "Scope": string(cs.id.Scope), "CSRF": cs.csrf,
			"CanAct": cs.id.Scope == apikey.ScopeOperator,
		}
	}
	data["Page"] = name
	if _, ok := data["Title"]; !ok {
		data["Title"] = consoleTitles[name]
	}
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("error rendering %s: %w", name, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Console) consoleError(c echo.Context, status int, msg string) error {
	return s.render(c, status, "error.html", map[string]any{"Status": status, "Message": msg})
}

// consoleFail renders a domain error (bad input, a refused action) as a
// page with its status; anything else goes to the error handler as a 500.
func (s *Console) consoleFail(c echo.Context, err error) error {
	status, detail, ok := s.host.Problem(err)
	if !ok {
		return err
	}
	return s.consoleError(c, status, detail)
}

func (s *Console) consoleOverview(c echo.Context) error {
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
func (s *Console) readOnly(ctx context.Context, read func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, read)
}

func (s *Console) consoleAttention(c echo.Context) error {
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
func (s *Console) consolePayment(c echo.Context) error {
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
	s.host.NamePayment(c, p.ID)
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
	if slices.Contains(payment.AttentionStatuses(), p.Status) {
		reason = payment.AttentionReason(p, lastCancel, lastAttempt)
	}
	return s.render(c, http.StatusOK, "payment.html", map[string]any{
		"P": p, "Gateway": sideOf(p), "Timeline": timeline(p, actions), "Jobs": jobs,
		"Failed": failed, "Reason": reason, "Actions": paymentActions(p, failed),
	})
}

// consoleAct takes an operator action from the payment page: the first
// post shows what will happen and asks to confirm; the second takes it.
func (s *Console) consoleAct(c echo.Context) error {
	cs, _ := c.Get(ctxKeyConsole).(consoleSession)
	if cs.id.Scope != apikey.ScopeOperator {
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
	a, err := s.runAction(c.Request().Context(), cs.operator(), action, id, cancelID, reason)
	if err != nil {
		return s.consoleFail(c, fmt.Errorf("error taking operator action %s: %w", action, err))
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("%s/payments/%s#action-%d", consolePath, id, a.ID))
}

// actionEffect says on the confirmation page what an action will do.
var consoleJobStates = []string{"retryable", "discarded"}

func (s *Console) consoleJobs(c echo.Context) error {
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

func (s *Console) consoleRetryJob(c echo.Context) error {
	cs, _ := c.Get(ctxKeyConsole).(consoleSession)
	if cs.id.Scope != apikey.ScopeOperator {
		return s.consoleError(c, http.StatusForbidden, "A readonly key can look but not act. Sign in with an operator key to take actions.")
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return s.consoleError(c, http.StatusNotFound, "No such job.")
	}
	if _, err := s.retryJob(c.Request().Context(), cs.operator(), id, formValue(c, "reason")); err != nil {
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

// Bounds of the attention page: the JSON API's defaults for the same list
// (GET /v1/payments/attention).
const (
	// defaultAttentionOlderThan leaves out payments the relay is working on
	// right now: a confirm normally resolves within seconds.
	defaultAttentionOlderThan = time.Minute
	maxAttentionLimit         = 1000
)

// attentionQueryStatuses reads ?status=, a comma-separated subset of
// payment.AttentionStatuses; absent means all of them. It refuses what the
// JSON API's ?status= refuses, in the same words.
func attentionQueryStatuses(values []string) ([]payment.Status, error) {
	all := payment.AttentionStatuses()
	switch {
	case len(values) == 0 || values[0] == "":
		return all, nil
	case len(values) > 1:
		return nil, payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
			"the status query parameter must be given once, as a comma-separated list")
	}
	var out []payment.Status
	for _, name := range strings.Split(values[0], ",") {
		st := payment.Status(strings.TrimSpace(name))
		if !slices.Contains(all, st) {
			return nil, payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"status must be a comma-separated list of unknown, confirming and canceling, not %s", quote(string(st)))
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// quote quotes a visitor-supplied string for a message, cut short first.
func quote(s string) string {
	const maxLen = 40
	if r := []rune(s); len(r) > maxLen {
		s = string(r[:maxLen]) + "…"
	}
	return strconv.Quote(s)
}

// runAction runs one payment action in its own transaction, through the
// same payflow script as the JSON API's, and counts it once committed.
func (s *Console) runAction(ctx context.Context, op payflow.Operator, action payment.Action, paymentID, cancelID, reason string) (payment.OperatorAction, error) {
	var a payment.OperatorAction
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		a, err = s.flow.Act(ctx, tx, op, action, paymentID, cancelID, reason)
		return err
	})
	if err != nil {
		return a, err
	}
	s.metrics.OperatorAction(action)
	return a, nil
}

// retryJob runs one outbox job again in its own transaction and counts it.
func (s *Console) retryJob(ctx context.Context, op payflow.Operator, jobID int64, reason string) (payment.OperatorAction, error) {
	var a payment.OperatorAction
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		a, err = s.flow.RetryJob(ctx, tx, op, jobID, reason)
		return err
	})
	if err != nil {
		return a, err
	}
	s.metrics.OperatorAction(payment.ActionRetryJob)
	return a, nil
}

// booksRunsShown and booksDifferencesShown bound the Books page as they
// bound GET /v1/ops/books.
const (
	booksRunsShown        = 60
	booksDifferencesShown = 500
)

// consoleBooks is the Books page: the reconciliation report GET
// /v1/ops/books answers, read in one snapshot.
func (s *Console) consoleBooks(c echo.Context) error {
	ctx := c.Request().Context()
	var (
		runs []store.BooksRun
		rows []booksDifference
	)
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		var err error
		if runs, err = s.store.BooksRuns(ctx, tx, booksRunsShown); err != nil {
			return err
		}
		diffs, err := s.store.OpenBooksDifferences(ctx, tx, booksDifferencesShown)
		if err != nil {
			return err
		}
		rows = make([]booksDifference, len(diffs))
		for i, d := range diffs {
			rows[i] = toBooksDifference(d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "books.html", map[string]any{"Runs": runs, "Differences": rows})
}
