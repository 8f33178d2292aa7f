package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// observability is where the dashboard and the alert rules live.
var observability = filepath.Join("..", "..", "deploy", "observability")

// targetLabels are attached by Prometheus to every series it scrapes, so a
// query may use them although no registry exports them.
var targetLabels = []string{"instance", "job"}

// TestDashboardsAndAlertsUseExportedMetrics: every metric the Grafana
// dashboard and the Prometheus rules (and their unit tests) name is one the
// api's or the relay's registry exports, and every label they use is one of
// those metrics', so a renamed metric or label fails here, not in
// production's empty panels and silent alerts.
func TestDashboardsAndAlertsUseExportedMetrics(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)

	series := map[string][]string{} // series name → its labels
	own := map[string]Family{}      // the project's families
	for name, build := range map[string]func(DBConfig) *Registry{
		"api":   func(c DBConfig) *Registry { r, _ := ForAPI(c); return r },
		"relay": func(c DBConfig) *Registry { r, _ := ForRelay(c); return r },
	} {
		families, err := build(DBConfig{DB: pool}).Families()
		require.NoError(t, err, name)
		for _, f := range families {
			for s, labels := range seriesOf(f) {
				series[s] = append(series[s], labels...)
			}
			if strings.HasPrefix(f.Name, namespace+"_") {
				own[f.Name] = f
			}
		}
	}

	exprs := map[string]string{} // where → PromQL
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "prometheus-alerts.yaml", &rules)
	require.NotEmpty(t, rules.Groups)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["prometheus-alerts.yaml "+r.Alert+r.Record] = r.Expr
		}
	}

	var dashboard any
	raw, err := os.ReadFile(filepath.Join(observability, "grafana-dashboard.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &dashboard))
	walkJSON(dashboard, "grafana-dashboard.json", func(where, key string, v string) {
		if key == "expr" {
			exprs[where] = v
		}
	})
	require.Greater(t, len(exprs), 20, "the expressions of the dashboard and the rules were found")

	used := map[string]bool{}
	for where, expr := range exprs {
		refs, err := promQLRefs(expr)
		require.NoError(t, err, "%s: %s", where, expr)
		require.NotEmpty(t, refs.metrics, "%s names no metric: %s", where, expr)
		allowed := slices.Clone(targetLabels)
		for _, m := range refs.metrics {
			labels, ok := series[m]
			require.True(t, ok, "%s: %s is not exported by the api or the relay", where, m)
			allowed = append(allowed, labels...)
			used[m] = true
		}
		for _, l := range refs.labels {
			require.Contains(t, allowed, l, "%s: label %s is not one of %v's", where, l, refs.metrics)
		}
	}

	// The rules' unit tests feed series by name; they must be real ones too.
	var ruleTests struct {
		Tests []struct {
			InputSeries []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
		} `yaml:"tests"`
	}
	readYAML(t, "prometheus-alerts_test.yaml", &ruleTests)
	require.NotEmpty(t, ruleTests.Tests)
	for _, tt := range ruleTests.Tests {
		for _, in := range tt.InputSeries {
			refs, err := promQLRefs(in.Series)
			require.NoError(t, err, in.Series)
			require.Len(t, refs.metrics, 1, in.Series)
			require.Contains(t, series, refs.metrics[0], "prometheus-alerts_test.yaml: %s", in.Series)
		}
	}

	// And every metric of the project's own is on the dashboard or in a
	// rule: one nobody looks at is one nobody notices is broken.
	for name, f := range own {
		shown := false
		for s := range seriesOf(f) {
			shown = shown || used[s]
		}
		require.True(t, shown, "%s is on neither the dashboard nor in a rule", name)
	}
}

// seriesOf returns the series names a family exports, with their labels:
// a histogram's _bucket (with le), _sum and _count.
func seriesOf(f Family) map[string][]string {
	switch f.Type {
	case TypeHistogram:
		return map[string][]string{
			f.Name + "_bucket": append(slices.Clone(f.Labels), "le"),
			f.Name + "_sum":    f.Labels,
			f.Name + "_count":  f.Labels,
		}
	case TypeSummary:
		return map[string][]string{
			f.Name:            append(slices.Clone(f.Labels), "quantile"),
			f.Name + "_sum":   f.Labels,
			f.Name + "_count": f.Labels,
		}
	}
	return map[string][]string{f.Name: f.Labels}
}

func readYAML(t *testing.T, name string, dst any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(observability, name))
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	require.NoError(t, dec.Decode(dst), name)
}

// walkJSON calls fn for every string member of v.
func walkJSON(v any, where string, fn func(where, key, value string)) {
	switch v := v.(type) {
	case map[string]any:
		title, _ := v["title"].(string)
		if title != "" {
			where += " > " + title
		}
		for k, sub := range v {
			if s, ok := sub.(string); ok {
				fn(where+" "+k, k, s)
				continue
			}
			walkJSON(sub, where, fn)
		}
	case []any:
		for i, sub := range v {
			walkJSON(sub, fmt.Sprintf("%s[%d]", where, i), fn)
		}
	}
}

// promRefs are the metric and label names a PromQL expression uses.
type promRefs struct {
	metrics []string
	labels  []string
}

// promQLKeywords are the words of PromQL that are neither metrics nor
// followed by a parenthesised argument list.
var promQLKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"atan2": true, "start": true, "end": true,
}

// labelListKeywords take a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// grafanaVariable is a dashboard variable, as found in ranges
// ([$__rate_interval]) and label values.
var grafanaVariable = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// promQLRefs reads the metric and label names out of a PromQL expression
// (or a series selector), without a full parser: string literals and ranges
// are skipped, an identifier followed by "(" is a function or an
// aggregation, label names come from matchers and by/without/on/ignoring
// lists, and every other identifier that is not a keyword is a metric.
func promQLRefs(expr string) (promRefs, error) {
	s := grafanaVariable.ReplaceAllString(expr, "5m")
	var refs promRefs
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		return i
	}
	skipString := func(i int) (int, error) {
		quote := s[i]
		for i++; i < len(s); i++ {
			if s[i] == '\\' && quote != '`' {
				i++
				continue
			}
			if s[i] == quote {
				return i + 1, nil
			}
		}
		return 0, errors.New("unterminated string")
	}
	ident := func(i int) (string, int) {
		j := i
		for j < len(s) && isIdent(s[j]) {
			j++
		}
		return s[i:j], j
	}

	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return refs, err
			}
			i = j
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return refs, errors.New("unterminated range")
			}
			i += j + 1
		case c == '{':
			// Matchers: name op "value", separated by commas.
			for i++; ; {
				i = skipSpace(i)
				if i >= len(s) {
					return refs, errors.New("unterminated matchers")
				}
				switch {
				case s[i] == '}':
					i++
				case s[i] == ',':
					i++
					continue
				case s[i] == '"' || s[i] == '\'' || s[i] == '`':
					j, err := skipString(i)
					if err != nil {
						return refs, err
					}
					i = j
					continue
				case isIdentStart(s[i]):
					var name string
					name, i = ident(i)
					refs.labels = append(refs.labels, name)
					continue
				default: // an operator
					i++
					continue
				}
				break
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			var word string
			word, i = ident(i)
			next := skipSpace(i)
			switch {
			case labelListKeywords[word] && next < len(s) && s[next] == '(':
				end := strings.IndexByte(s[next:], ')')
				if end < 0 {
					return refs, errors.New("unterminated label list")
				}
				for _, l := range strings.Split(s[next+1:next+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						refs.labels = append(refs.labels, l)
					}
				}
				i = next + end + 1
			case promQLKeywords[word]:
			case next < len(s) && s[next] == '(':
				// A function or an aggregation.
			case next < len(s) && isIdentStart(s[next]) && aggregationClause(s[next:]):
				// An aggregation with its clause first: sum by (x) (...).
			default:
				refs.metrics = append(refs.metrics, word)
			}
		default:
			i++
		}
	}
	return refs, nil
}

// aggregationClause reports whether s starts with "by" or "without" and a
// label list.
func aggregationClause(s string) bool {
	for _, kw := range []string{"by", "without"} {
		if rest, ok := strings.CutPrefix(s, kw); ok && strings.HasPrefix(strings.TrimLeft(rest, " \t\n"), "(") {
			return true
		}
	}
	return false
}

func TestPromQLRefs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		expr            string
		metrics, labels []string
	}{
		{`up`, []string{"up"}, nil},
		{`sum by (route, le) (rate(x_bucket{route!~"/metrics|unmatched", status=~"5.."}[$__rate_interval]))`,
			[]string{"x_bucket"}, []string{"route", "le", "route", "status"}},
		{`histogram_quantile(0.99, sum(rate(a[5m])) by (le)) > 0.5 and on (instance) b offset 5m`,
			[]string{"a", "b"}, []string{"le", "instance"}},
		{"max(a{kind!=\"x\"}) / ignoring(kind) group_left count without (job) (b) > bool 1e3", []string{"a", "b"}, []string{"kind", "kind", "job"}},
		{`absent(payment_outbox_breaker_state)`, []string{"payment_outbox_breaker_state"}, nil},
		{`a{instance="relay-1",kind="payment_confirm"}`, []string{"a"}, []string{"instance", "kind"}},
	} {
		refs, err := promQLRefs(tt.expr)
		require.NoError(t, err, tt.expr)
		require.Equal(t, tt.metrics, refs.metrics, tt.expr)
		require.Equal(t, tt.labels, refs.labels, tt.expr)
	}
	_, err := promQLRefs(`a{b="c}`)
	require.Error(t, err)
}

// TestBinaryRegistries: what each binary exports, by family.
func TestBinaryRegistries(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	names := func(r *Registry) []string {
		fams, err := r.Families()
		require.NoError(t, err)
		var out []string
		for _, f := range fams {
			if strings.HasPrefix(f.Name, namespace+"_") {
				out = append(out, f.Name)
			}
		}
		return out
	}
	db := []string{nameOutboxJobs, nameDBStatsReadSeconds, nameDBStatsUp, nameOutboxOldestAge, namePayments, namePaymentsUnknown,
		namePaymentsAcked, nameJobsDiscarded}

	api, _ := ForAPI(DBConfig{DB: pool})
	require.ElementsMatch(t, append([]string{nameHTTPRequestDuration, nameHTTPRequests, nameOperatorActions, nameHTTPOverloaded,
		nameHTTPUnauthOverloaded, nameHTTPUnauthBodyTimeout, nameGatewayWebhooks, nameSignInThrottled}, db...), names(api))

	relay, _ := ForRelay(DBConfig{DB: pool})
	require.ElementsMatch(t, append([]string{
		nameBreakerOpenings, nameBreakerState, nameGatewayCallDuration, nameGatewayCalls, nameReconcilerLookupsSent,
		nameRelayKeyRotations, nameRelayOutcomes, nameRelayRetries, nameRelaySnoozes,
		nameBooksRuns, nameBooksDifferencesFound, nameBooksDifferencesPersist,
		nameBooksLastSuccess, nameBooksOpenDifferences, nameBooksPersistingOpen,
	}, db...), names(relay))

	fams, err := api.Families()
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(fams, func(f Family) bool { return f.Name == "go_goroutines" }), "the Go runtime's")
	require.True(t, slices.ContainsFunc(fams, func(f Family) bool { return f.Name == "process_cpu_seconds_total" }), "the process's")
}

// gathered returns the families of r as the exposition text, for asserting
// on series.
func gathered(t *testing.T, r *Registry) string {
	t.Helper()
	families, err := r.reg.Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			var v float64
			switch {
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			fmt.Fprintf(&b, "%s{%s} %g\n", f.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}

// testClock is a clock a test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestDBGauges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.Pool(t)
	st := store.New()
	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)

	newPayment := func(status payment.Status) payment.Payment {
		in := payment.Intent{OrderID: "order-" + uuid.NewString()[:8], OrderName: "Socks", Amount: 1000, Gateway: payment.GatewayToss}
		require.NoError(t, in.Validate())
		p, _, err := st.InsertPayment(ctx, pool, uuid.NewString(), in)
		require.NoError(t, err)
		if status != payment.StatusReady {
			_, err := p.RequestConfirm("pk_"+p.ID, 1000, time.Now())
			require.NoError(t, err)
			require.NoError(t, st.SavePayment(ctx, pool, &p))
			if status == payment.StatusUnknown {
				p.GiveUpConfirm("no_answer", "retry budget spent")
				require.NoError(t, st.SavePayment(ctx, pool, &p))
			}
		}
		return p
	}
	confirming := newPayment(payment.StatusConfirming)
	newPayment(payment.StatusUnknown)
	newPayment(payment.StatusReady)
	newPayment(payment.StatusReady)
	_, err = outbox.Insert(ctx, paymentjob.ConfirmArgs{PaymentID: confirming.ID}, nil)
	require.NoError(t, err)
	_, err = outbox.Insert(ctx, paymentjob.LookupArgs{PaymentID: confirming.ID}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	// The oldest pending job of a kind is measured from its creation.
	_, err = pool.Exec(ctx, "UPDATE river_job SET created_at = now() - interval '90 seconds' WHERE kind = 'payment_confirm'")
	require.NoError(t, err)

	clock := &testClock{now: time.Now()}
	r := NewRegistry(nil)
	RegisterDB(r, DBConfig{DB: pool, Stats: st, Now: clock.Now})
	got := gathered(t, r)
	for _, want := range []string{
		`payment_outbox_db_stats_up{} 1`,
		`payment_outbox_jobs{kind="payment_confirm",state="available"} 1`,
		`payment_outbox_jobs{kind="payment_confirm",state="running"} 0`,
		`payment_outbox_jobs{kind="payment_lookup",state="scheduled"} 1`,
		`payment_outbox_jobs{kind="payment_cancel",state="available"} 0`,
		`payment_outbox_oldest_pending_job_age_seconds{kind="payment_cancel"} 0`,
		`payment_outbox_oldest_pending_job_age_seconds{kind="payment_reconcile"} 0`,
		`payment_outbox_payments{status="confirming"} 1`,
		`payment_outbox_payments{status="unknown"} 1`,
		`payment_outbox_payments{status="canceling"} 0`,
		`payment_outbox_payments_unknown{} 1`,
	} {
		require.Contains(t, got, want)
	}
	// Settled and ready payments grow without bound: not counted (the
	// relay's outcome counters say how payments settle).
	require.NotContains(t, got, `payment_outbox_payments{status="ready"}`)
	require.NotContains(t, got, `payment_outbox_payments{status="canceled"}`)
	age := regexp.MustCompile(`payment_outbox_oldest_pending_job_age_seconds\{kind="payment_confirm"\} ([0-9.e+]+)`).FindStringSubmatch(got)
	require.NotNil(t, age, got)
	var seconds float64
	_, err = fmt.Sscan(age[1], &seconds)
	require.NoError(t, err)
	require.InDelta(t, 90, seconds, 5)

	// Read at most once per CacheFor: a new payment shows only later.
	newPayment(payment.StatusUnknown)
	require.Contains(t, gathered(t, r), `payment_outbox_payments_unknown{} 1`)
	clock.Advance(DefaultDBCacheFor)
	require.Contains(t, gathered(t, r), `payment_outbox_payments_unknown{} 2`)
	require.Contains(t, gathered(t, r), `payment_outbox_payments_acknowledged{} 0`)

	// An acknowledged payment leaves the unknown gauge (its alert stops)
	// and is counted apart; a discarded job is counted by its kind.
	acked := newPayment(payment.StatusUnknown)
	require.NoError(t, acked.Acknowledge(time.Now()))
	require.NoError(t, st.SavePayment(ctx, pool, &acked))
	_, err = outbox.Insert(ctx, paymentjob.CancelArgs{PaymentID: acked.ID, CancelID: uuid.NewString()}, nil)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE kind = 'payment_cancel'")
	require.NoError(t, err)
	clock.Advance(DefaultDBCacheFor)
	got = gathered(t, r)
	for _, want := range []string{
		`payment_outbox_payments{status="unknown"} 3`,
		`payment_outbox_payments_unknown{} 2`,
		`payment_outbox_payments_acknowledged{} 1`,
		`payment_outbox_jobs_discarded{kind="payment_cancel"} 1`,
		`payment_outbox_jobs_discarded{kind="payment_confirm"} 0`,
	} {
		require.Contains(t, got, want)
	}
}

// blockingStats is a database that never answers in time.
type blockingStats struct{ calls atomic.Int32 }

func (s *blockingStats) OutboxJobs(ctx context.Context, _ store.DBTX) ([]store.OutboxJobs, error) {
	s.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *blockingStats) PaymentsByStatus(ctx context.Context, _ store.DBTX) (map[payment.Status]int64, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *blockingStats) PaymentsAcknowledged(ctx context.Context, _ store.DBTX) (int64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func (s *blockingStats) DiscardedJobs(ctx context.Context, _ store.DBTX) (map[string]int64, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestDBGaugesSlowDatabase(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	stats := &blockingStats{}
	var logs bytes.Buffer
	clock := &testClock{now: time.Now()}
	r := NewRegistry(nil)
	RegisterDB(r, DBConfig{
		DB: pool, Stats: stats, Timeout: 50 * time.Millisecond, Now: clock.Now,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})

	start := time.Now()
	got := gathered(t, r)
	require.Less(t, time.Since(start), 2*time.Second, "the scrape does not hang on the database")
	require.Contains(t, got, `payment_outbox_db_stats_up{} 0`)
	require.NotContains(t, got, "payment_outbox_payments", "no figures rather than made-up ones")
	require.NotContains(t, got, "payment_outbox_jobs")
	require.Contains(t, logs.String(), "error reading database metrics")

	// The failure is cached too: a struggling database is not asked on
	// every scrape.
	gathered(t, r)
	require.Equal(t, int32(1), stats.calls.Load())
	clock.Advance(DefaultDBCacheFor)
	gathered(t, r)
	require.Equal(t, int32(2), stats.calls.Load())
}

func TestNilMetricsCountNothing(t *testing.T) {
	t.Parallel()
	var h *HTTP
	h.ObserveRequest("/", "GET", 200, time.Millisecond)
	var r *Relay
	r.GatewayCall(payment.OperationConfirm, gateway.ClassSuccess, time.Millisecond)
	r.Retry(payment.OperationConfirm)
	r.Snooze(payment.OperationConfirm, SnoozeBreakerOpen)
	r.KeyRotation(payment.OperationCancel)
	r.Outcome(payment.StatusConfirmed)
	r.LookupsEnqueued(3)
	r.BreakerOpened()
	r.BreakerHalfOpen()
	r.BreakerClosed()
}

func TestRelayCountersStartAtZero(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	NewRelay(r)
	got := gathered(t, r)
	// Present before the first event, so rate() and increase() see it.
	for _, want := range []string{
		`payment_outbox_gateway_calls_total{class="misconfigured",operation="confirm"} 0`,
		`payment_outbox_relay_snoozes_total{operation="cancel",reason="misconfigured"} 0`,
		`payment_outbox_relay_snoozes_total{operation="lookup",reason="breaker_open"} 0`,
		`payment_outbox_relay_key_rotations_total{operation="confirm"} 0`,
		`payment_outbox_relay_outcomes_total{status="unknown"} 0`,
		`payment_outbox_breaker_openings_total{} 0`,
	} {
		require.Contains(t, got, want)
	}
}

func TestHTTPMethodLabel(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	h := NewHTTP(r)
	h.ObserveRequest("/v1/payments", "POST", 201, time.Millisecond)
	h.ObserveRequest("/v1/payments", "PROPFIND", 405, time.Millisecond)
	h.ObserveRequest("/v1/payments", "X-ANYTHING-"+uuid.NewString(), 405, time.Millisecond)
	got := gathered(t, r)
	require.Contains(t, got, `payment_outbox_http_requests_total{method="POST",route="/v1/payments",status="201"} 1`)
	require.Contains(t, got, `payment_outbox_http_requests_total{method="other",route="/v1/payments",status="405"} 2`)
}

// TestAlertsHaveRunbooks: every alert links its section of docs/runbook.md,
// and the section exists, so the page an on-call person follows is never a
// 404 or a stale anchor.
func TestAlertsHaveRunbooks(t *testing.T) {
	t.Parallel()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "prometheus-alerts.yaml", &rules)
	runbook, err := os.ReadFile(filepath.Join("..", "..", "docs", "runbook.md"))
	require.NoError(t, err)
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			require.Equal(t, "https://github.com/payment-outbox/payment-outbox/blob/main/docs/runbook.md#"+strings.ToLower(r.Alert),
				r.Annotations["runbook_url"], r.Alert)
			require.Contains(t, string(runbook), "\n## "+r.Alert+"\n", "docs/runbook.md has a section for %s", r.Alert)
		}
	}
	require.Equal(t, alerts, strings.Count(string(runbook), "\n## PaymentOutbox"), "one section per alert, no stale ones")
}
