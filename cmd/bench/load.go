package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// apiClient drives the api over HTTP the way a checkout does: create the
// payment, then confirm it with the paymentKey the gateway's widget handed
// back (with gatewaysim's auto-authorize, any fresh key will do).
type apiClient struct {
	base string
	auth string // the Authorization header value, or empty
	hc   *http.Client
}

func newAPIClient(addr, key string) *apiClient {
	c := &apiClient{
		base: "http://" + addr,
		hc: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				// One kept-alive connection per concurrent caller, as a
				// checkout service's pool would hold; no reconnects in the
				// measurement.
				MaxIdleConns:        4096,
				MaxIdleConnsPerHost: 4096,
				IdleConnTimeout:     time.Minute,
				DisableCompression:  true,
			},
		},
	}
	if key != "" {
		c.auth = "Bearer " + key
	}
	return c
}

// payment is one payment the bench made, kept for the check at the end.
type payment struct {
	orderID    string
	id         string
	paymentKey string
	amount     int64
	// accepted: the confirm was answered 202, so the payment must end
	// confirmed and charged exactly once.
	accepted bool
}

// ids hands out unique order ids and payment keys for one phase.
type ids struct {
	prefix string
	next   atomic.Int64
}

func newIDs(runTag, phase string) *ids {
	return &ids{prefix: runTag + "-" + phase + "-"}
}

func (g *ids) take() (orderID, paymentKey string, amount int64) {
	n := g.next.Add(1)
	s := strconv.FormatInt(n, 10)
	// Amounts vary so a mixed-up payment shows in the check.
	return "o" + g.prefix + s, "pk" + g.prefix + s, 1000 + 10*(n%997)
}

// apiAnswer is what the bench reads of an answer: a payment or a problem.
type apiAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Code   string `json:"code"`
}

func (c *apiClient) post(ctx context.Context, path string, body []byte) (int, apiAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, apiAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, apiAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, apiAnswer{}, err
	}
	var a apiAnswer
	_ = json.Unmarshal(b, &a)
	return resp.StatusCode, a, nil
}

// flow creates and confirms one payment. errKind names what went wrong
// ("" when both calls got the answer the contract promises).
func (c *apiClient) flow(ctx context.Context, g *ids) (p payment, create, confirm time.Duration, errKind string) {
	orderID, key, amount := g.take()
	p = payment{orderID: orderID, paymentKey: key, amount: amount}

	body := make([]byte, 0, 128)
	body = append(body, `{"orderId":"`...)
	body = append(body, orderID...)
	body = append(body, `","amount":`...)
	body = strconv.AppendInt(body, amount, 10)
	body = append(body, `,"orderName":"bench order"}`...)
	t0 := time.Now()
	status, a, err := c.post(ctx, "/v1/payments", body)
	create = time.Since(t0)
	if kind := answerError("create", status, http.StatusCreated, "ready", a, err); kind != "" {
		return p, create, 0, kind
	}
	p.id = a.ID

	body = body[:0]
	body = append(body, `{"paymentKey":"`...)
	body = append(body, key...)
	body = append(body, `","amount":`...)
	body = strconv.AppendInt(body, amount, 10)
	body = append(body, '}')
	t1 := time.Now()
	status, a, err = c.post(ctx, "/v1/payments/"+p.id+"/confirm", body)
	confirm = time.Since(t1)
	if kind := answerError("confirm", status, http.StatusAccepted, "confirming", a, err); kind != "" {
		return p, create, confirm, kind
	}
	p.accepted = true
	return p, create, confirm, ""
}

// refusedKind ends the errKind of a call the api refused as overloaded (503
// overloaded, docs/design.md "Overload"): it did nothing, and loadResult
// counts it apart from the errors. The bench never retries it.
const refusedKind = ": 503 overloaded"

func refused(errKind string) bool { return strings.HasSuffix(errKind, refusedKind) }

func answerError(call string, status, wantStatus int, wantState string, a apiAnswer, err error) string {
	switch {
	case err == nil && status == http.StatusServiceUnavailable && a.Code == "overloaded":
		return call + refusedKind
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return call + ": timeout"
	case err != nil:
		return call + ": transport error"
	case status != wantStatus:
		return fmt.Sprintf("%s: HTTP %d %s", call, status, a.Code)
	case a.Status != wantState:
		return fmt.Sprintf("%s: status %q", call, a.Status)
	}
	return ""
}

// loadResult is what one load run produced.
type loadResult struct {
	Payments int            // created and confirmed (both calls answered as promised)
	Refused  int            // the create or the confirm refused 503 overloaded (not in Errors)
	Errors   map[string]int // by kind
	Missed   int            // open loop: starts skipped because too many were in flight
	Elapsed  time.Duration
	total    []time.Duration // per payment: create + confirm (open loop: from the scheduled start)
	create   []time.Duration
	confirm  []time.Duration
	made     []payment
}

func (r *loadResult) merge(o *loadResult) {
	r.Payments += o.Payments
	r.Refused += o.Refused
	r.Missed += o.Missed
	for k, v := range o.Errors {
		if r.Errors == nil {
			r.Errors = map[string]int{}
		}
		r.Errors[k] += v
	}
	r.total = append(r.total, o.total...)
	r.create = append(r.create, o.create...)
	r.confirm = append(r.confirm, o.confirm...)
	r.made = append(r.made, o.made...)
}

func (r *loadResult) record(p payment, total, create, confirm time.Duration, errKind string) {
	if p.id != "" || errKind == "" {
		r.made = append(r.made, p)
	}
	if refused(errKind) {
		r.Refused++
		return
	}
	if errKind != "" {
		if r.Errors == nil {
			r.Errors = map[string]int{}
		}
		r.Errors[errKind]++
		return
	}
	r.Payments++
	r.total = append(r.total, total)
	r.create = append(r.create, create)
	r.confirm = append(r.confirm, confirm)
}

// errorsAndRefused is Errors with the refusals as one more kind, for the
// phases that report every failed payment together.
func (r *loadResult) errorsAndRefused() map[string]int {
	if r.Refused == 0 {
		return r.Errors
	}
	m := map[string]int{"refused" + refusedKind: r.Refused}
	for k, v := range r.Errors {
		m[k] += v
	}
	return m
}

func (r *loadResult) perSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Payments) / r.Elapsed.Seconds()
}

// closedLoop runs conc callers, each making payments back to back, for dur
// or, when budget is positive, until budget payments have been started.
func (c *apiClient) closedLoop(ctx context.Context, conc int, dur time.Duration, budget int, g *ids) *loadResult {
	results := make([]loadResult, conc)
	var wg sync.WaitGroup
	var started atomic.Int64
	start := time.Now()
	deadline := start.Add(dur)
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if budget > 0 {
			return started.Add(1) <= int64(budget)
		}
		return time.Now().Before(deadline)
	}
	for i := range conc {
		wg.Add(1)
		go func(r *loadResult) {
			defer wg.Done()
			for more() {
				t := time.Now()
				p, cr, co, kind := c.flow(ctx, g)
				r.record(p, time.Since(t), cr, co, kind)
				if kind != "" {
					// Do not spin on a broken api.
					time.Sleep(10 * time.Millisecond)
				}
			}
		}(&results[i])
	}
	wg.Wait()
	out := &loadResult{Elapsed: time.Since(start)}
	for i := range results {
		out.merge(&results[i])
	}
	return out
}

// openLoop starts payments at a fixed rate whatever the answers do (a
// closed loop would slow down with the system and hide its queueing), for
// dur. Latency counts from each payment's scheduled start, so a stall in the
// generator itself is not forgiven either.
func (c *apiClient) openLoop(ctx context.Context, rate float64, dur time.Duration, maxInFlight int, g *ids) *loadResult {
	out := &loadResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	interval := time.Duration(float64(time.Second) / rate)
	n := int(math.Round(dur.Seconds() * rate))
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		if inFlight.Load() >= int64(maxInFlight) {
			out.Missed++
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			p, cr, co, kind := c.flow(ctx, g)
			total := time.Since(due)
			mu.Lock()
			out.record(p, total, cr, co, kind)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.Elapsed = time.Since(start)
	return out
}

// latency is a latency distribution in milliseconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(d []time.Duration) latency {
	if len(d) == 0 {
		return latency{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	ms := func(v time.Duration) float64 { return math.Round(float64(v)/1e3) / 1e3 }
	return latency{N: len(s), P50: ms(rank(s, 0.50)), P95: ms(rank(s, 0.95)), P99: ms(rank(s, 0.99)), Max: ms(s[len(s)-1])}
}

// rank is the nearest-rank percentile of sorted s.
func rank[T any](s []T, q float64) T {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
