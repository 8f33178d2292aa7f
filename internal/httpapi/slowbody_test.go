package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// slowBodyLength is the body a slow client declares: under the body limit,
// so only its pace, never its size, can get it refused.
const slowBodyLength = 60_000

// slowRoute is an unauthenticated route as a slow client attacks it: the
// request line and headers it sends at once, before a body that never
// finishes.
type slowRoute struct {
	name string
	head func() string
	// answers are the statuses a slow request may get; 0 is a connection
	// cut without an answer.
	answers []int
}

// cutOff are the answers of a request whose body was too slow.
var cutOff = []int{0, http.StatusRequestTimeout}

// slowRoutes are the routes reachable without a credential that read a
// body (server.go's routing and the console's sign-in, internal/console,
// which it mounts): the attack of issue 17. And
// two that never read one but that net/http would, to keep the connection,
// before it wrote their answer: an authenticated route without a key, and a
// path we do not serve.
func slowRoutes() []slowRoute {
	head := func(path, contentType string, extra ...string) string {
		method := "POST"
		if m, p, ok := strings.Cut(path, " "); ok {
			method, path = m, p
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s %s HTTP/1.1\r\nHost: api\r\nContent-Type: %s\r\nContent-Length: %d\r\n", method, path, contentType, slowBodyLength)
		for i := 0; i+1 < len(extra); i += 2 {
			fmt.Fprintf(&sb, "%s: %s\r\n", extra[i], extra[i+1])
		}
		sb.WriteString("\r\n")
		return sb.String()
	}
	return []slowRoute{
		{"TossWebhook", func() string { return head("/v1/webhooks/toss", "application/json") }, cutOff},
		// Well-formed signature headers, timestamped now: what a slow
		// client has to send to get its body read at all.
		{"PortOneWebhook", func() string {
			return head(portOneWebhookPath, "application/json",
				"webhook-id", "msg_slow", "webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10),
				"webhook-signature", "v1,"+strings.Repeat("A", 43)+"=")
		}, cutOff},
		// Any sign-in cookie: the console reads the form only with one.
		{"ConsoleSignIn", func() string {
			return head(consolePath+"/login", "application/x-www-form-urlencoded", "Cookie", consoleLoginCookie+"=anything")
		}, cutOff},
		{"PaymentsWithoutKey", func() string { return head("/v1/payments", "application/json") }, []int{http.StatusUnauthorized}},
		{"UnknownPath", func() string { return head("/v1/nothing-here", "application/json") }, []int{http.StatusNotFound}},
		{"SignInPageWithBody", func() string { return head("GET "+consolePath+"/login", "text/plain") }, []int{http.StatusOK}},
	}
}

// slowOutcome is how one slow request ended.
type slowOutcome struct {
	// status is the answer's status, 0 when the connection was cut without
	// one (or never answered: open).
	status int
	// open is true when the server was still reading when the test stopped
	// the client: not cut off.
	open    bool
	elapsed time.Duration
}

// slowRequest sends one request on a fresh TCP connection to addr: head at
// once, then the body a byte every gap, until the server answers or cuts the
// connection, or ctx ends (open). started is called once the first body
// byte is out.
func slowRequest(ctx context.Context, addr, head string, gap time.Duration, started func()) slowOutcome {
	start := time.Now()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return slowOutcome{open: ctx.Err() != nil, elapsed: time.Since(start)}
	}
	defer func() { _ = conn.Close() }()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0
			return
		}
		_ = resp.Body.Close()
		answered <- resp.StatusCode
	}()
	_, _ = conn.Write([]byte(head + "{"))
	if started != nil {
		started()
	}
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for {
		select {
		case status := <-answered:
			return slowOutcome{status: status, elapsed: time.Since(start)}
		case <-ctx.Done():
			// Still being read: the server would have gone on waiting.
			_ = conn.Close()
			<-answered
			return slowOutcome{open: true, elapsed: time.Since(start)}
		case <-tick.C:
			// A write into a connection the server cut fails; its answer (or
			// the cut) is what ends the request, so the error is not ours to
			// act on.
			_, _ = conn.Write([]byte(" "))
		}
	}
}

// slowAttack keeps perRoute slow clients on every unauthenticated route of
// the server at addr, each sending its body a byte every gap and
// reconnecting whenever it is answered or cut off, until stop is called.
// wait blocks until every client has its first request's body under way.
type slowAttack struct {
	cancel   context.CancelFunc
	done     sync.WaitGroup
	started  sync.WaitGroup
	mu       sync.Mutex
	outcomes map[string][]slowOutcome
	// cutOnce counts the clients that have been cut off or answered at
	// least once.
	cutOnce atomic.Int64
	clients int
}

func startSlowAttack(addr string, routes []slowRoute, perRoute int, gap time.Duration) *slowAttack {
	ctx, cancel := context.WithCancel(context.Background())
	a := &slowAttack{cancel: cancel, outcomes: map[string][]slowOutcome{}}
	for _, r := range routes {
		for range perRoute {
			a.clients++
			a.started.Add(1)
			a.done.Go(func() {
				first := true
				var once sync.Once
				for ctx.Err() == nil {
					o := slowRequest(ctx, addr, r.head(), gap, func() { once.Do(a.started.Done) })
					if o.open && first {
						once.Do(a.started.Done)
					}
					a.mu.Lock()
					a.outcomes[r.name] = append(a.outcomes[r.name], o)
					a.mu.Unlock()
					if !o.open && first {
						a.cutOnce.Add(1)
					}
					first = false
					if !o.open {
						// A slow-body attack, not a flood of requests:
						// the next one after a pause.
						select {
						case <-ctx.Done():
						case <-time.After(gap):
						}
					}
				}
			})
		}
	}
	return a
}

// stop ends every slow client and returns the outcomes by route.
func (a *slowAttack) stop() map[string][]slowOutcome {
	a.cancel()
	a.done.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.outcomes
}

// checkout creates and confirms one payment through a real HTTP client, as
// a checkout would, and returns the two statuses (0 for a transport error).
func checkout(t *testing.T, hc *http.Client, baseURL, apiKey, orderID string) (create, confirm int) {
	t.Helper()
	post := func(path, body string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, baseURL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, ""
		}
		defer func() { _ = resp.Body.Close() }()
		var sb strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
		return resp.StatusCode, sb.String()
	}
	create, body := post("/v1/payments", `{"orderId":"`+orderID+`","amount":15000,"orderName":"Tea"}`)
	if create != http.StatusCreated {
		return create, 0
	}
	i := strings.Index(body, `"id":"`)
	require.GreaterOrEqual(t, i, 0, body)
	id := body[i+6 : i+6+36]
	confirm, _ = post("/v1/payments/"+id+"/confirm", `{"paymentKey":"pk_`+orderID+`","amount":15000}`)
	return create, confirm
}

// TestSlowBodiesLeaveCheckoutsAnswered is issue 17's first finding: 100
// connections on each unauthenticated route sending a 60 kB body a byte at a
// time, over real TCP to a real listener, with the in-flight cap at its
// production default. Every checkout's create and confirm is still answered
// 2xx while they run, and every slow request is cut off (answered 408, or
// refused) rather than read for as long as it likes. Outcomes only: the
// bounds are generous, for a loaded machine.
func TestSlowBodiesLeaveCheckoutsAnswered(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.MaxInFlight = DefaultMaxInFlight(20)
		c.MaxUnauthenticatedInFlight = DefaultMaxUnauthenticatedInFlight(20)
		c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
		c.PortOneWebhookSecret = portOneTestSecret
	})
	srv := httptest.NewServer(b.handler)
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	attack := startSlowAttack(addr, slowRoutes(), 100, 250*time.Millisecond)
	defer attack.stop()
	attack.started.Wait()

	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	var creates, confirms, hooks []int
	for i := range 10 {
		order := fmt.Sprintf("order-slow-%d", i)
		create, confirm := checkout(t, hc, srv.URL, b.apiKey, order)
		creates, confirms = append(creates, create), append(confirms, confirm)
		// The gateway's own webhook, sent at its pace, is taken.
		resp, err := hc.Post(srv.URL+"/v1/webhooks/toss", "application/json", strings.NewReader(
			`{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"pk_`+order+`","orderId":"`+order+`","status":"DONE"}}`))
		if err == nil {
			_ = resp.Body.Close()
			hooks = append(hooks, resp.StatusCode)
		} else {
			hooks = append(hooks, 0)
		}
	}

	// Every slow client is cut off at least once: within the body deadline
	// and, generously, the time a loaded machine takes to schedule 300
	// connections.
	cutOff := func() bool { return attack.cutOnce.Load() == int64(attack.clients) }
	deadline := time.Now().Add(DefaultUnauthenticatedBodyTimeout + 30*time.Second)
	for !cutOff() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	outcomes := attack.stop()

	for i := range creates {
		require.Equal(t, http.StatusCreated, creates[i], "checkout %d's create is answered", i)
		require.Equal(t, http.StatusAccepted, confirms[i], "checkout %d's confirm is answered", i)
		require.Equal(t, http.StatusOK, hooks[i], "checkout %d's webhook is taken", i)
	}
	require.Equal(t, int64(attack.clients), attack.cutOnce.Load(), "every slow client was cut off")
	answers := map[string][]int{}
	for _, r := range slowRoutes() {
		answers[r.name] = r.answers
	}
	for route, list := range outcomes {
		cut := 0
		for _, o := range list {
			if o.open {
				continue
			}
			cut++
			// Cut off: answered 408 (body too slow), or the connection
			// closed under it, or answered what the route answers without
			// its body; never read to the end nor let through.
			require.Contains(t, answers[route], o.status, "%s: a slow request's answer", route)
			require.Less(t, o.elapsed, DefaultUnauthenticatedBodyTimeout+20*time.Second, "%s: cut off near the body deadline", route)
		}
		require.GreaterOrEqual(t, cut, 100, "%s: every client was cut off or answered", route)
	}
	require.Equal(t, "0", b.metricValue(t, "payment_outbox_http_overloaded_total"), "the checkout budget refused nothing")
	timeouts, err := strconv.Atoi(b.metricValue(t, "payment_outbox_http_unauthenticated_body_timeouts_total"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, timeouts, 300, "the cut-offs are counted")
}

// metricValue reads one unlabelled counter from the server's /metrics.
func (b *testBundle) metricValue(t *testing.T, name string) string {
	t.Helper()
	rec := b.do(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("%s is not on /metrics", name)
	return ""
}

// TestPortOneHeadersBeforeBody: a PortOne webhook that could never verify
// by its headers alone (none, stale, malformed, no secret here) is refused
// 401 before a byte of its body is read: a body that never comes gets its
// 401, not the 408 of a body read too slowly.
func TestPortOneHeadersBeforeBody(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
		c.PortOneWebhookSecret = portOneTestSecret
	})
	now := strconv.FormatInt(time.Now().Unix(), 10)
	sig := "v1," + strings.Repeat("A", 43) + "="
	head := func(headers ...string) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "POST %s HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", portOneWebhookPath, slowBodyLength)
		for i := 0; i+1 < len(headers); i += 2 {
			fmt.Fprintf(&sb, "%s: %s\r\n", headers[i], headers[i+1])
		}
		return sb.String() + "\r\n"
	}
	for name, tt := range map[string]struct {
		b    *testBundle
		head string
	}{
		"NoHeaders":       {b, head()},
		"NoID":            {b, head("webhook-timestamp", now, "webhook-signature", sig)},
		"NoTimestamp":     {b, head("webhook-id", "msg_1", "webhook-signature", sig)},
		"NoSignature":     {b, head("webhook-id", "msg_1", "webhook-timestamp", now)},
		"Stale":           {b, head("webhook-id", "msg_1", "webhook-timestamp", strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10), "webhook-signature", sig)},
		"Future":          {b, head("webhook-id", "msg_1", "webhook-timestamp", strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10), "webhook-signature", sig)},
		"TimestampNotInt": {b, head("webhook-id", "msg_1", "webhook-timestamp", "yesterday", "webhook-signature", sig)},
		"SignatureNotV1":  {b, head("webhook-id", "msg_1", "webhook-timestamp", now, "webhook-signature", "v2,"+strings.Repeat("A", 43)+"=")},
		"SignatureShort":  {b, head("webhook-id", "msg_1", "webhook-timestamp", now, "webhook-signature", "v1,AAAA")},
		"SignatureNotB64": {b, head("webhook-id", "msg_1", "webhook-timestamp", now, "webhook-signature", "v1,"+strings.Repeat("!", 44))},
		"IDTooLong":       {b, head("webhook-id", strings.Repeat("m", maxWebhookIDLen+1), "webhook-timestamp", now, "webhook-signature", sig)},
		"NoSecretHere":    {b.with(func(c *Config) { c.PortOneWebhookSecret = "" }), head("webhook-id", "msg_1", "webhook-timestamp", now, "webhook-signature", sig)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.b.handler)
			defer srv.Close()
			// The bound only stops a broken server from hanging the test.
			ctx, cancel := context.WithTimeout(t.Context(), DefaultUnauthenticatedBodyTimeout+30*time.Second)
			defer cancel()
			o := slowRequest(ctx, srv.Listener.Addr().String(), tt.head, time.Hour, nil)
			require.False(t, o.open, "answered")
			require.Equal(t, http.StatusUnauthorized, o.status, "refused on its headers, before its body")
		})
	}
	// Headers that pass still get the body read, and a slow one cut off.
	srv := httptest.NewServer(b.handler)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), DefaultUnauthenticatedBodyTimeout+30*time.Second)
	defer cancel()
	o := slowRequest(ctx, srv.Listener.Addr().String(), head("webhook-id", "msg_1", "webhook-timestamp", now, "webhook-signature", sig), time.Hour, nil)
	require.False(t, o.open, "cut off")
	require.Equal(t, http.StatusRequestTimeout, o.status)
	require.Equal(t, "1", b.metricValue(t, "payment_outbox_http_unauthenticated_body_timeouts_total"))
}

// TestUnauthenticatedBudget: the unauthenticated routes' work has a budget
// of its own. With both budgets at one, a Toss webhook held in its work (on
// the payment's row lock) leaves the checkout's slot free: a create is
// answered 201; a second webhook, and a sign-in, are refused 503 overloaded,
// counted apart from the checkout budget's refusals; once the held webhook
// is done, webhooks are taken again.
func TestUnauthenticatedBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.MaxInFlight = 1
		c.MaxUnauthenticatedInFlight = 1
	})
	ctx := t.Context()
	p := b.createPayment(t, "order-held-hook", 15000)
	b.confirmPayment(t, p.ID, "pk_held_hook", 15000)
	hook := `{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"pk_held_hook","orderId":"order-held-hook","status":"DONE"}}`

	lockTx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lockTx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = lockTx.Exec(ctx, "SELECT 1 FROM payments WHERE id = $1::uuid FOR UPDATE", p.ID)
	require.NoError(t, err)
	held := make(chan int, 1)
	go func() { held <- b.as("", "").postJSON(t, "/v1/webhooks/toss", hook).Code }()
	require.Eventually(t, func() bool { return b.server.unauthenticated.inFlight() == 1 }, 10*time.Second, time.Millisecond,
		"the webhook is at work")
	require.Zero(t, b.server.checkout.inFlight(), "holding no checkout slot")

	b.createPayment(t, "order-beside-hook", 15000)
	rec := b.as("", "").postJSON(t, "/v1/webhooks/toss", hook)
	requireProblem(t, rec, http.StatusServiceUnavailable, codeOverloaded)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	rec = b.as("", "").do(t, http.MethodPost, consolePath+"/login", "csrf=x&key=y",
		"Content-Type", "application/x-www-form-urlencoded", "Cookie", consoleLoginCookie+"=x")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "2", b.metricValue(t, "payment_outbox_http_unauthenticated_overloaded_total"))
	require.Equal(t, "0", b.metricValue(t, "payment_outbox_http_overloaded_total"))

	require.NoError(t, lockTx.Rollback(ctx))
	require.Equal(t, http.StatusOK, <-held)
	require.Zero(t, b.server.unauthenticated.inFlight())
	require.Equal(t, http.StatusOK, b.as("", "").postJSON(t, "/v1/webhooks/toss", hook).Code)
}

// TestReadyzSaturated: /readyz says 503 not_ready, with the reason, while
// the checkout budget's slots are held rather than turning over (three
// quarters of them for more than a second), and ready again once they turn
// over; a burst shorter than that does not flip it, and /healthz stays 200
// throughout. The slots' ages are read on the server's clock, which the test
// moves by hand.
func TestReadyzSaturated(t *testing.T) {
	t.Parallel()
	clock := newTestClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	b := setup(t, func(c *Config) {
		c.MaxInFlight = 2
		c.Now = clock.Now
	})
	ctx := t.Context()
	held := b.createPayment(t, "order-saturate", 15000)
	ready := func() *httptest.ResponseRecorder { return b.do(t, http.MethodGet, "/readyz", "") }
	require.Equal(t, http.StatusOK, ready().Code)

	lockTx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lockTx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = lockTx.Exec(ctx, "SELECT 1 FROM payments WHERE id = $1::uuid FOR UPDATE", held.ID)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			b.postJSON(t, "/v1/payments/"+held.ID+"/confirm", `{"paymentKey":"pk_saturate","amount":15000}`)
		})
	}
	require.Eventually(t, func() bool { return b.server.checkout.inFlight() == 2 }, 10*time.Second, time.Millisecond)

	// Full, but only just: a burst, not a starved process.
	require.Equal(t, http.StatusOK, ready().Code)
	clock.Advance(saturatedAfter / 2)
	require.Equal(t, http.StatusOK, ready().Code)

	clock.Advance(saturatedAfter)
	p := requireProblem(t, ready(), http.StatusServiceUnavailable, codeNotReady)
	require.Contains(t, p.Detail, "saturated: 2 of the 2 requests")
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/healthz", "").Code, "alive all the same")

	require.NoError(t, lockTx.Rollback(ctx))
	wg.Wait()
	require.Equal(t, http.StatusOK, ready().Code, "ready again once the slots turn over")
}

// TestFiguresCheckoutUnderSlowBodies prints, rather than asserts, issue 17's
// "done when" figure: a checkout's create + confirm latency (p50, p99) over
// real TCP, unloaded and then under 100 slow-body connections on each
// unauthenticated route, with both budgets at their production defaults. It
// runs only with HTTPAPI_FIGURES=1: a timing on a shared machine is a
// measurement to read, not a test to pass.
func TestFiguresCheckoutUnderSlowBodies(t *testing.T) {
	if os.Getenv("HTTPAPI_FIGURES") != "1" {
		t.Skip("set HTTPAPI_FIGURES=1 to measure")
	}
	b := setup(t, func(c *Config) {
		c.MaxInFlight = DefaultMaxInFlight(20)
		c.MaxUnauthenticatedInFlight = DefaultMaxUnauthenticatedInFlight(20)
		c.Gateways = []string{payment.GatewayToss, payment.GatewayPortOne}
		c.PortOneWebhookSecret = portOneTestSecret
	})
	srv := httptest.NewServer(b.handler)
	defer srv.Close()
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	// Each phase runs for several body deadlines, so the slow clients are
	// cut off and reconnect while it does.
	const phaseFor = 4 * DefaultUnauthenticatedBodyTimeout
	var n int
	measure := func(phase string) (p50, p99 time.Duration) {
		var took []time.Duration
		for i, end := 0, time.Now().Add(phaseFor); time.Now().Before(end); i++ {
			start := time.Now()
			create, confirm := checkout(t, hc, srv.URL, b.apiKey, fmt.Sprintf("order-%s-%d", phase, i))
			took = append(took, time.Since(start))
			require.Equal(t, http.StatusCreated, create, phase)
			require.Equal(t, http.StatusAccepted, confirm, phase)
		}
		slices.Sort(took)
		n = len(took)
		return took[n/2], took[n*99/100]
	}
	measure("warmup")
	p50, p99 := measure("unloaded")
	unloaded := n

	var open []slowRoute
	for _, r := range slowRoutes() {
		if slices.Equal(r.answers, cutOff) {
			open = append(open, r)
		}
	}
	attack := startSlowAttack(srv.Listener.Addr().String(), open, 100, 250*time.Millisecond)
	attack.started.Wait()
	lp50, lp99 := measure("loaded")
	outcomes := attack.stop()
	cut := 0
	for _, list := range outcomes {
		for _, o := range list {
			if !o.open {
				cut++
			}
		}
	}
	t.Logf("create+confirm: unloaded %d checkouts p50 %s p99 %s; under %d slow-body connections (100 per route, %d requests cut off) %d checkouts p50 %s p99 %s; p99 ratio %.2f",
		unloaded, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), attack.clients, cut, n,
		lp50.Round(10*time.Microsecond), lp99.Round(10*time.Microsecond), float64(lp99)/float64(p99))
}
