package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

func TestMain(m *testing.M) {
	dbtest.Main(m)
}

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	t.Parallel()

	const url = "postgres://postgres@127.0.0.1:1/db"
	for _, tt := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"NoDatabaseURL", map[string]string{}, "DATABASE_URL is required"},
		{"BadDatabaseURL", map[string]string{"DATABASE_URL": "postgres://u:hunter2@host:notaport/db"}, "DATABASE_URL is invalid"},
		{"BadMaxConns", map[string]string{"DATABASE_URL": url, "DATABASE_MAX_CONNS": "0"}, "DATABASE_MAX_CONNS"},
		{"BadAddr", map[string]string{"DATABASE_URL": url, "API_ADDR": "8080"}, "API_ADDR"},
		{"BadShutdownTimeout", map[string]string{"DATABASE_URL": url, "API_SHUTDOWN_TIMEOUT": "soon"}, "API_SHUTDOWN_TIMEOUT"},
		{"NegativeShutdownTimeout", map[string]string{"DATABASE_URL": url, "API_SHUTDOWN_TIMEOUT": "-1s"}, "API_SHUTDOWN_TIMEOUT"},
		{"BadLogLevel", map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"NegativeMaxInFlight", map[string]string{"DATABASE_URL": url, "API_MAX_IN_FLIGHT": "-1"}, "API_MAX_IN_FLIGHT"},
		{"BadMaxInFlight", map[string]string{"DATABASE_URL": url, "API_MAX_IN_FLIGHT": "lots"}, "API_MAX_IN_FLIGHT"},
		{"NegativeMaxUnauthenticatedInFlight", map[string]string{"DATABASE_URL": url, "API_MAX_UNAUTHENTICATED_IN_FLIGHT": "-1"}, "API_MAX_UNAUTHENTICATED_IN_FLIGHT"},
		{"BadMaxUnauthenticatedInFlight", map[string]string{"DATABASE_URL": url, "API_MAX_UNAUTHENTICATED_IN_FLIGHT": "few"}, "API_MAX_UNAUTHENTICATED_IN_FLIGHT"},
		{"UnknownGateway", map[string]string{"DATABASE_URL": url, "API_GATEWAYS": "toss,paypal"}, "API_GATEWAYS"},
		{"UnknownDefaultGateway", map[string]string{"DATABASE_URL": url, "API_DEFAULT_GATEWAY": "Toss"}, "API_DEFAULT_GATEWAY"},
		{"BadPortOneWebhookSecret", map[string]string{"DATABASE_URL": url, "PORTONE_WEBHOOK_SECRET": "whsec_hunter2 not base64"}, "PORTONE_WEBHOOK_SECRET"},
		{"PortOneWithoutWebhookSecret", map[string]string{"DATABASE_URL": url, "API_GATEWAYS": "toss,portone"}, "PORTONE_WEBHOOK_SECRET is not set"},
		{"BadPortOneConfirmMode", map[string]string{"DATABASE_URL": url, "PORTONE_CONFIRM_MODE": "Manual"}, "PORTONE_CONFIRM_MODE must be browser or manual"},
		{"PprofNotLoopback", map[string]string{"DATABASE_URL": url, "PPROF_ADDR": ":6060"}, "PPROF_ADDR must be on a loopback host"},
		{"BadMetricsAddr", map[string]string{"DATABASE_URL": url, "API_METRICS_ADDR": "9090"}, "API_METRICS_ADDR"},
		{"BadDev", map[string]string{"DATABASE_URL": url, "API_DEV": "yes please"}, "API_DEV"},
		{"AmountCeilingTooHigh", map[string]string{"DATABASE_URL": url, "API_MAX_AMOUNT": "9007199254740992"}, "API_MAX_AMOUNT"},
		{"AmountCeilingZero", map[string]string{"DATABASE_URL": url, "API_MAX_AMOUNT": "0"}, "API_MAX_AMOUNT"},
		{"DefaultGatewayNotEnabled", map[string]string{"DATABASE_URL": url, "API_GATEWAYS": "portone", "API_DEFAULT_GATEWAY": "toss"}, "not among API_GATEWAYS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), nil, env(tt.vars), &stdout, &stderr)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "\n", "the reason is one line")
			require.NotContains(t, err.Error(), "hunter2", "the password is never repeated")
			require.Empty(t, stdout.String())
		})
	}
}

func TestMaxInFlightConfig(t *testing.T) {
	t.Parallel()
	url := "postgres://u@127.0.0.1:1/db"
	for _, tt := range []struct {
		vars map[string]string
		want int
	}{
		{map[string]string{}, 30},
		{map[string]string{"DATABASE_MAX_CONNS": "40"}, 60},
		{map[string]string{"API_MAX_IN_FLIGHT": "0"}, 0},
		{map[string]string{"API_MAX_IN_FLIGHT": "100", "DATABASE_MAX_CONNS": "40"}, 100},
	} {
		tt.vars["DATABASE_URL"] = url
		cfg, err := loadConfig(env(tt.vars))
		require.NoError(t, err)
		require.Equal(t, tt.want, cfg.maxInFlight, "%v", tt.vars)
	}
}

func TestMaxUnauthenticatedInFlightConfig(t *testing.T) {
	t.Parallel()
	url := "postgres://u@127.0.0.1:1/db"
	for _, tt := range []struct {
		vars map[string]string
		want int
	}{
		{map[string]string{}, 5},
		{map[string]string{"DATABASE_MAX_CONNS": "40"}, 10},
		{map[string]string{"DATABASE_MAX_CONNS": "4"}, 2},
		{map[string]string{"API_MAX_UNAUTHENTICATED_IN_FLIGHT": "0"}, 0},
		{map[string]string{"API_MAX_UNAUTHENTICATED_IN_FLIGHT": "12"}, 12},
	} {
		tt.vars["DATABASE_URL"] = url
		cfg, err := loadConfig(env(tt.vars))
		require.NoError(t, err)
		require.Equal(t, tt.want, cfg.maxUnauthenticatedInFlight, "%v", tt.vars)
	}
}

func TestLoadGateways(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name        string
		vars        map[string]string
		wantEnabled []string
		wantDefault string
	}{
		{"Unset", map[string]string{}, []string{"toss"}, "toss"},
		{"DefaultOnly", map[string]string{"API_DEFAULT_GATEWAY": "portone"}, []string{"portone"}, "portone"},
		{"EnabledOnly", map[string]string{"API_GATEWAYS": "portone, toss"}, []string{"portone", "toss"}, "portone"},
		{"Both", map[string]string{"API_GATEWAYS": "toss,portone,toss", "API_DEFAULT_GATEWAY": "portone"}, []string{"toss", "portone"}, "portone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enabled, def, err := loadGateways(env(tt.vars))
			require.NoError(t, err)
			require.Equal(t, tt.wantEnabled, enabled)
			require.Equal(t, tt.wantDefault, def)
		})
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()

	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"serve-forever"}, env(nil), &stdout, &stderr)
	var ue *usageError
	require.ErrorAs(t, err, &ue)
	require.Contains(t, ue.msg, "serve-forever")

	err = run(t.Context(), []string{"migrate", "now"}, env(nil), &stdout, &stderr)
	require.ErrorAs(t, err, &ue)

	// Misused key commands are refused before any database is needed.
	for _, args := range [][]string{
		{"keys"}, {"keys", "create"}, {"keys", "create", "a", "b"}, {"keys", "create", " "},
		{"keys", "create", "line\nbreak"}, {"keys", "list", "all"}, {"keys", "revoke"}, {"keys", "rotate", "x"},
		{"keys", "create", "a", "--scope"}, {"keys", "create", "a", "--scope", "admin"}, {"keys", "create", "--scope=root", "a"},
		{"ops"}, {"ops", "lookup"}, {"ops", "lookup", "id"}, {"ops", "lookup", "id", "--reason"}, {"ops", "refund", "id", "--reason", "x"},
		{"ops", "retry-job", "seven", "--reason", "x"}, {"ops", "actions", "a", "b"},
	} {
		err = run(t.Context(), args, env(nil), &stdout, &stderr)
		require.ErrorAs(t, err, &ue, "%q", args)
	}

	require.NoError(t, run(t.Context(), []string{"-h"}, env(nil), &stdout, &stderr))
	require.Contains(t, stdout.String(), "usage: api")
	require.Contains(t, stdout.String(), "api keys create NAME")
}

func TestRunKeys(t *testing.T) {
	t.Parallel()
	vars := env(map[string]string{"DATABASE_URL": dbtest.URL(t)})
	keys := func(t *testing.T, args ...string) (string, string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"keys"}, args...), vars, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	out, errOut, err := keys(t, "create", "checkout service")
	require.NoError(t, err)
	key := strings.TrimSuffix(out, "\n")
	require.Equal(t, key+"\n", out, "stdout is the key alone")
	require.True(t, apikey.WellFormed(key), key)
	require.Contains(t, errOut, "shown only this once")
	id := strings.Fields(strings.TrimPrefix(errOut, "api: created checkout API key "))[0]

	out2, _, err := keys(t, "create", "checkout service")
	require.NoError(t, err)
	require.NotEqual(t, out, out2, "every key is new")

	out, _, err = keys(t, "list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ID\s+NAME\s+SCOPE\s+OWNER\s+PREFIX\s+CREATED\s+LAST USED\s+REVOKED$`, lines[0])
	require.Contains(t, lines[1], id)
	require.Contains(t, lines[1], " checkout ", "a key made without --scope is a checkout's")
	require.Contains(t, lines[1], " default ", "a key made without --owner is the default owner's")
	require.Contains(t, lines[1], "checkout service")
	require.Contains(t, lines[1], apikey.DisplayPrefix(key)+"…")
	require.NotContains(t, out, key, "the key is never shown again")
	require.Regexp(t, `\s-\s+-$`, lines[1], "never used, not revoked")

	out, _, err = keys(t, "revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "revoked API key "+id)
	out, _, err = keys(t, "revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "already revoked")
	out, _, err = keys(t, "list")
	require.NoError(t, err)
	require.Regexp(t, `\s-\s+\S+Z$`, strings.Split(out, "\n")[1], "the revoked key shows when")

	for _, bad := range []string{"0190a0c8-0000-7000-8000-000000000000", "not-an-id"} {
		_, _, err = keys(t, "revoke", bad)
		require.ErrorContains(t, err, "no API key with id")
	}

	for _, scope := range []string{"operator", "readonly"} {
		_, errOut, err = keys(t, "create", "--scope", scope, "ops "+scope)
		require.NoError(t, err)
		require.Contains(t, errOut, "created "+scope+" API key")
	}
	out, _, err = keys(t, "list")
	require.NoError(t, err)
	require.Regexp(t, `ops operator\s+operator\s`, out)
	require.Regexp(t, `ops readonly\s+readonly\s`, out)

	// A second checkout service gets its own owner, added on first use and
	// said so; its next key (a rotation) joins it without a word.
	_, errOut, err = keys(t, "create", "shop b", "--owner", "shop-b")
	require.NoError(t, err)
	require.Contains(t, errOut, "added owner shop-b")
	require.Contains(t, errOut, "owner shop-b")
	_, errOut, err = keys(t, "create", "--owner=shop-b", "shop b rotated")
	require.NoError(t, err)
	require.NotContains(t, errOut, "added owner")
	out, _, err = keys(t, "list")
	require.NoError(t, err)
	require.Regexp(t, `shop b\s+checkout\s+shop-b\s`, out)
	require.Regexp(t, `shop b rotated\s+checkout\s+shop-b\s`, out)

	for _, bad := range []string{"Shop-B", "-shop", "", "shop b", strings.Repeat("s", 64)} {
		_, _, err = keys(t, "create", "bad owner", "--owner", bad)
		var ue *usageError
		require.ErrorAs(t, err, &ue, "owner %q", bad)
		require.Contains(t, err.Error(), "owner must be")
	}
	_, _, err = keys(t, "create", "no owner value", "--owner")
	require.ErrorContains(t, err, "owner needs a value")
}

func TestRunMigrate(t *testing.T) {
	t.Parallel()

	// An empty database of our own, so the first run has work to do.
	ctx := t.Context()
	serverURL := dbtest.ServerURL(t)
	admin, err := pgx.Connect(ctx, serverURL)
	require.NoError(t, err)
	name := fmt.Sprintf("api_migrate_%d", time.Now().UnixNano())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = admin.Close(ctx)
	})
	url := serverURL + " dbname=" + name // keyword/value form: a later keyword wins
	if u, err := neturl.Parse(serverURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path, u.RawPath = "/"+name, ""
		url = u.String()
	}

	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"migrate"}, env(map[string]string{"DATABASE_URL": url}), &stdout, &stderr))
	require.Contains(t, stdout.String(), "api: applied river migration")
	require.Contains(t, stdout.String(), "api: applied migration 0001_payments")

	stdout.Reset()
	require.NoError(t, run(ctx, []string{"migrate"}, env(map[string]string{"DATABASE_URL": url}), &stdout, &stderr))
	require.Equal(t, "api: migrations up to date\n", stdout.String())
}

func TestRunMigrateUnreachableDatabase(t *testing.T) {
	t.Parallel()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"migrate"}, env(map[string]string{
		"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere?connect_timeout=2",
	}), &stdout, &stderr)
	require.ErrorContains(t, err, "error migrating")
}

func TestRunServe(t *testing.T) {
	t.Parallel()

	dbURL := dbtest.URL(t)
	var keyOut bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"keys", "create", "serve test"},
		env(map[string]string{"DATABASE_URL": dbURL}), &keyOut, io.Discard))
	key := strings.TrimSpace(keyOut.String())

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	stdoutR, stdoutW := io.Pipe()
	var stderr syncWriter
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(map[string]string{
			"DATABASE_URL":         dbURL,
			"API_ADDR":             "127.0.0.1:0",
			"API_SHUTDOWN_TIMEOUT": "5s",
			"LOG_LEVEL":            "debug",
		}), stdoutW, &stderr)
		_ = stdoutW.Close()
	}()

	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	require.NoError(t, err)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "api: listening on ")
	require.True(t, ok, line)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()

	get := func(path string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, get("/healthz"))
	require.Equal(t, http.StatusOK, get("/readyz"))
	// Without API_METRICS_ADDR the metrics are here, for an operator or
	// readonly key only.
	require.Equal(t, http.StatusUnauthorized, get("/metrics"))
	// Open, like the probes: API clients may read it before they have a key.
	require.Equal(t, http.StatusOK, get("/openapi.json"))

	post := func(authorization string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/v1/payments",
			strings.NewReader(`{"orderId":"order-api-1","amount":1000,"orderName":"Socks"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post(""))
	require.Equal(t, http.StatusCreated, post("Bearer "+key))

	// `api ops` goes through the running api as an operator key, which
	// audits it; a checkout key is refused.
	var opKeyOut bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"keys", "create", "on call", "--scope", "operator"},
		env(map[string]string{"DATABASE_URL": dbURL}), &opKeyOut, io.Discard))
	opsEnv := func(key string) func(string) string {
		return env(map[string]string{"API_URL": "http://" + addr, "API_KEY": key})
	}
	var paymentID string
	require.NoError(t, pgx.BeginFunc(t.Context(), mustPool(t, dbURL), func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "SELECT id::text FROM payments WHERE order_id = 'order-api-1'").Scan(&paymentID)
	}))
	var opsOut bytes.Buffer
	err = run(t.Context(), []string{"ops", "acknowledge", paymentID, "--reason", "checking"}, opsEnv(key), &opsOut, io.Discard)
	require.ErrorContains(t, err, "403 insufficient_scope")
	err = run(t.Context(), []string{"ops", "acknowledge", paymentID, "--reason", "checking"}, opsEnv(strings.TrimSpace(opKeyOut.String())), &opsOut, io.Discard)
	require.ErrorContains(t, err, "409 invalid_state", "a ready payment is on no alert list")
	require.NoError(t, run(t.Context(), []string{"ops", "actions", paymentID}, opsEnv(strings.TrimSpace(opKeyOut.String())), &opsOut, io.Discard))
	require.JSONEq(t, `{"actions":[]}`, opsOut.String(), "a refused action leaves no audit row")

	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was canceled")
	}
	require.Contains(t, stderr.String(), `"msg":"request"`)
	require.Contains(t, stderr.String(), `"msg":"shut down"`)
}

// TestRunServeMetricsListener: with API_METRICS_ADDR the metrics are on a
// listener of their own, without a key, and nowhere on the public one.
func TestRunServeMetricsListener(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(map[string]string{
			"DATABASE_URL":     dbURL,
			"API_ADDR":         "127.0.0.1:0",
			"API_METRICS_ADDR": "127.0.0.1:0",
		}), stdoutW, io.Discard)
		_ = stdoutW.Close()
	}()
	lines := bufio.NewReader(stdoutR)
	line, err := lines.ReadString('\n')
	require.NoError(t, err)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "api: listening on ")
	require.True(t, ok, line)
	line, err = lines.ReadString('\n')
	require.NoError(t, err)
	metricsAddr, ok := strings.CutPrefix(strings.TrimSpace(line), "api: metrics on ")
	require.True(t, ok, line)
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()

	get := func(url string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(body)
	}
	status, body := get("http://" + metricsAddr + "/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "payment_outbox_http_requests_total")
	status, _ = get("http://" + metricsAddr + "/v1/payments")
	require.Equal(t, http.StatusNotFound, status, "the metrics listener serves nothing else")
	status, _ = get("http://" + addr + "/metrics")
	require.Equal(t, http.StatusNotFound, status, "nor the public listener the metrics")

	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was canceled")
	}
}

// syncWriter is a bytes.Buffer that the server's goroutines may share.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// mustPool opens a pool on url for the test's duration.
func mustPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestPortOneConfirmModeConfig(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db"}
	cfg, err := loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, payment.PortOneConfirmBrowser, cfg.portOneConfirmMode, "today's flow unless asked")
	vars["PORTONE_CONFIRM_MODE"] = "manual"
	cfg, err = loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, payment.PortOneConfirmManual, cfg.portOneConfirmMode)
}

func TestWebhookLookupIntervalConfig(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db"}
	cfg, err := loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, payflow.DefaultWebhookLookupInterval, cfg.webhookLookupInterval)
	vars["WEBHOOK_LOOKUP_INTERVAL"] = "30s"
	cfg, err = loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, cfg.webhookLookupInterval)
	vars["WEBHOOK_LOOKUP_INTERVAL"] = "100ms"
	_, err = loadConfig(env(vars))
	require.ErrorContains(t, err, "WEBHOOK_LOOKUP_INTERVAL must be a duration from 1s to 1h")
}
