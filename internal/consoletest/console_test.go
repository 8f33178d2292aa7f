package consoletest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/httpapi"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// chromium finds the browser, or ends the test: a skip with the way to
// install it on a developer's machine, a failure in CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "the console's browser tests need chromium (Debian: apt-get install chromium; `make test` installs it as root)"
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal(msg + "; CI is set, so a missing browser is a failure, not a skip")
	}
	t.Skip(msg)
	return ""
}

// system is the api and a relay on one database, the relay working against
// gatewaysim.
type system struct {
	pool  *pgxpool.Pool
	store *store.Store
	sim   *gatewaysim.Simulator
	gw    *toss.Client
	api   *httptest.Server
}

func start(t *testing.T) *system {
	t.Helper()
	pool := dbtest.Pool(t)
	sim, err := gatewaysim.New(gatewaysim.Options{})
	require.NoError(t, err)
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	t.Cleanup(sim.Close)
	gw, err := toss.New(toss.Config{BaseURL: simSrv.URL, SecretKey: gatewaysim.DefaultSecretKey, Timeout: 5 * time.Second})
	require.NoError(t, err)

	st := store.New()
	workers := river.NewWorkers()
	require.NoError(t, relay.AddWorkers(workers, relay.Config{
		Pool: pool, Store: st, Gateways: map[string]relay.Gateway{payment.GatewayToss: gw}, Logger: slog.New(slog.DiscardHandler),
		Schedule: relay.Schedule{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	}))
	worker, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{paymentjob.Queue: {MaxWorkers: 5}},
		Workers:           workers,
		FetchPollInterval: 20 * time.Millisecond,
		FetchCooldown:     10 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.NoError(t, worker.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = worker.Stop(ctx)
	})

	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	api := httptest.NewServer(httpapi.New(httpapi.Config{Pool: pool, Store: st, Outbox: outbox}).Handler())
	t.Cleanup(api.Close)
	return &system{pool: pool, store: st, sim: sim, gw: gw, api: api}
}

func (s *system) key(t *testing.T, name string, scope apikey.Scope) string {
	t.Helper()
	key, err := apikey.Generate()
	require.NoError(t, err)
	hash := apikey.Hash(key)
	_, err = s.store.InsertAPIKey(t.Context(), s.pool, uuid.NewString(), name, apikey.DisplayPrefix(key), hash[:], scope, payment.DefaultOwner)
	require.NoError(t, err)
	return key
}

// unknownPayment makes what a confirm whose answers were all lost leaves: the
// gateway approved, and we gave up waiting (unknown). It is created through
// the API, with orderName as the checkout sent it.
func (s *system) unknownPayment(t *testing.T, key, orderID, orderName string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"orderId": orderID, "amount": 15000, "orderName": orderName})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.api.URL+"/v1/payments", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var created struct{ ID string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&created))
	_ = res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)

	auth, err := s.sim.Authorize(gatewaysim.AuthorizeRequest{OrderID: orderID, Amount: 15000, OrderName: "x"})
	require.NoError(t, err)
	approved := s.gw.Confirm(t.Context(), gateway.ConfirmRequest{PaymentKey: auth.PaymentKey, OrderID: orderID, Amount: 15000}, "confirm-lost-"+orderID)
	require.NotNil(t, approved.Payment, "the gateway approved")
	require.NoError(t, pgx.BeginFunc(t.Context(), s.pool, func(tx pgx.Tx) error {
		p, err := s.store.PaymentForUpdate(t.Context(), tx, created.ID)
		if err != nil {
			return err
		}
		if _, err := p.RequestConfirm(auth.PaymentKey, 15000, time.Now()); err != nil {
			return err
		}
		if err := s.store.SavePayment(t.Context(), tx, &p); err != nil {
			return err
		}
		p.GiveUpConfirm("PROVIDER_ERROR", "no answer within the retry budget")
		return s.store.SavePayment(t.Context(), tx, &p)
	}))
	// Old enough for the attention list's default (1m).
	_, err = s.pool.Exec(t.Context(), "UPDATE payments SET updated_at = now() - interval '10 minutes' WHERE id = $1", created.ID)
	require.NoError(t, err)
	return created.ID
}

// browser starts chromium with a tab in its own browser context (its own
// cookies), in the Asia/Seoul time zone so local times differ from UTC. dialogs
// counts JavaScript dialogs (an alert() that got through).
func browser(t *testing.T, path string, dialogs *atomic.Int32) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.DisableGPU, chromedp.WindowSize(1366, 900)}
	if os.Geteuid() == 0 {
		// Chromium refuses to run its sandbox as root (a CI container).
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:], opts...)...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}))
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Seoul"})
		return err
	})))
	return ctx
}

// text returns the page's visible text.
func text(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
	require.NoError(t, err)
	return s
}

func signIn(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Submit(chromedp.CSS("#key")),
		chromedp.WaitVisible(chromedp.CSS("section.cards")),
	))
}

// act fills in an action's reason on the payment page, submits it, and
// confirms on the page that follows.
func act(t *testing.T, ctx context.Context, action, reason string) {
	t.Helper()
	form := "#act-" + action
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(form+" input[name=reason]"), reason),
		chromedp.Click(chromedp.CSS(form+" button")),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.Click(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("table.timeline")),
	))
}

// waitOutcome reloads the page until the relay has recorded what the
// action's lookup found.
func waitOutcome(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	var page string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		require.NoError(t, chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.timeline"))))
		if page = text(t, ctx); strings.Contains(page, want) {
			return page
		}
	}
	require.Failf(t, "no outcome", "the page never showed %q:\n%s", want, page)
	return page
}

// screenshot saves the page as docs/NAME.png when CONSOLE_SCREENSHOTS names
// the docs directory (make console-screenshots), so a test run does not
// rewrite the committed images.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

func TestConsoleInBrowser(t *testing.T) {
	path := chromium(t)
	s := start(t)
	operatorKey := s.key(t, "on call", apikey.ScopeOperator)
	lookedUp := s.unknownPayment(t, operatorKey, "order-console-lookup", "Coffee beans 1kg")
	resolved := s.unknownPayment(t, operatorKey, "order-console-resolve", "<script>alert(1)</script>")

	var dialogs atomic.Int32
	ctx := browser(t, path, &dialogs)
	signIn(t, ctx, s.api.URL, operatorKey)
	overview := text(t, ctx)
	require.Contains(t, overview, "2\nunknown, not acknowledged")
	require.Contains(t, overview, "on call")
	screenshot(t, ctx, "console-overview")

	// Find the unknown payments on the attention page, with the reason.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/console/attention"]`)), chromedp.WaitVisible(chromedp.CSS("main table"))))
	attention := text(t, ctx)
	require.Contains(t, attention, "confirm gave up without a definite answer")
	require.Contains(t, attention, "order-console-lookup")

	// Lookup: the relay asks the gateway and settles the payment from its
	// record; the audit row says who, why and what was found.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/console/payments/%s"]`, lookedUp))),
		chromedp.WaitVisible(chromedp.CSS("#act-lookup"))))
	act(t, ctx, "lookup", "customer says the card was charged")
	page := waitOutcome(t, ctx, "found: gateway DONE")
	require.Contains(t, page, "lookup by on call")
	require.Contains(t, page, "customer says the card was charged")
	require.Contains(t, page, "unknown → confirmed")

	// Resolve the other one; its orderName is markup and must stay text.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(s.api.URL+"/console/payments/"+resolved), chromedp.WaitVisible(chromedp.CSS("#act-resolve"))))
	page = text(t, ctx)
	require.Contains(t, page, "<script>alert(1)</script>", "shown as text")
	scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.scripts.length"))
	require.NoError(t, err)
	require.Equal(t, 1, scripts, "only the console's own script element")
	act(t, ctx, "resolve", "card statement shows the charge")
	page = waitOutcome(t, ctx, "found: gateway DONE")
	require.Contains(t, page, "resolve by on call")
	require.Contains(t, page, "unknown → confirmed")
	require.NoError(t, chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.side"))))
	require.Regexp(t, `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GMT\+9|KST)`, text(t, ctx), "times in the viewer's zone")
	screenshot(t, ctx, "console-payment")
	require.Zero(t, dialogs.Load(), "no script ran from the orderName")

	var actions int
	require.NoError(t, s.pool.QueryRow(t.Context(), "SELECT count(*) FROM operator_actions").Scan(&actions))
	require.Equal(t, 2, actions)

	// A form without its CSRF token is refused, and writes nothing.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const f = document.querySelector("#act-lookup");
		f.querySelector("input[name=csrf]").remove();
		f.querySelector("input[name=reason]").value = "no token";
		f.submit();
		return true;
	})()`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("section.error"))))
	require.Contains(t, text(t, ctx), "security token")

	// A readonly key sees the console and cannot act: no action forms, and
	// a hand-made one (with its own valid CSRF token) is refused.
	readonlyKey := s.key(t, "auditor", apikey.ScopeReadonly)
	ro := browser(t, path, &dialogs)
	signIn(t, ro, s.api.URL, readonlyKey)
	require.NoError(t, chromedp.Do(ro, chromedp.Navigate(s.api.URL+"/console/payments/"+resolved), chromedp.WaitVisible(chromedp.CSS("table.timeline"))))
	require.Contains(t, text(t, ro), "Signed in read-only")
	forms, err := chromedp.Run(ro, chromedp.Evaluate[int]("document.querySelectorAll('form.action').length"))
	require.NoError(t, err)
	require.Zero(t, forms)
	_, err = chromedp.Run(ro, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const f = document.createElement("form");
		f.method = "post";
		f.action = "/console/payments/%s/act";
		const add = (n, v) => { const i = document.createElement("input"); i.name = n; i.value = v; f.appendChild(i); };
		add("csrf", document.querySelector("form.who input[name=csrf]").value);
		add("action", "lookup"); add("reason", "just looking"); add("confirmed", "yes");
		document.body.appendChild(f);
		f.submit();
		return true;
	})()`, resolved)))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ro, chromedp.WaitVisible(chromedp.CSS("section.error"))))
	require.Contains(t, text(t, ro), "readonly key can look but not act")
	require.NoError(t, s.pool.QueryRow(t.Context(), "SELECT count(*) FROM operator_actions").Scan(&actions))
	require.Equal(t, 2, actions, "neither refused form wrote anything")

	p, err := s.store.Payment(t.Context(), s.pool, resolved)
	require.NoError(t, err)
	require.Equal(t, payment.StatusConfirmed, p.Status)
}
