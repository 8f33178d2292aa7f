package main

// The overload measurement: what the api does when offered more payments
// than it can take. Self-contained (its own types, the standard library
// only) so the bench can call measureOverload once it has an api running;
// until then a driver (a main that copies this file) runs it.
//
// It finds the api's maximum throughput with a closed loop, measures the
// latency of an open loop at a quarter of it (the unloaded figure), then
// offers Factor times the maximum, open loop, and reports for the accepted
// payments their p50 and p99, the share refused 503 overloaded, the share
// that failed otherwise (timeouts above all), and the api's RSS.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// overloadConfig says what to drive and for how long.
type overloadConfig struct {
	// BaseURL and APIKey reach the api (a checkout or operator key).
	BaseURL, APIKey string
	// PID is the api process, whose RSS is sampled (0: not sampled).
	PID int
	// Concurrency of the closed loop that finds the maximum throughput.
	Concurrency int
	// Probe is the closed loop's length, Unloaded and Overload the open
	// loops'.
	Probe, Unloaded, Overload time.Duration
	// Factor times the maximum is offered in the overload phase (2).
	Factor float64
	// Timeout bounds each request (the api's own bound is 10s).
	Timeout time.Duration
	// MaxPerSec, when set, is taken as the maximum throughput instead of
	// measuring it: to offer several builds or settings the same load.
	MaxPerSec float64
}

// overloadPhase is what one phase measured. Each payment started is a
// create and then its confirm; the counts and latencies are of requests,
// each accepted (201, 202), refused (503 overloaded) or failed.
type overloadPhase struct {
	Name          string
	OfferedPerSec float64 // payments started per second; 0 in the closed loop
	// Payments is how many were both created and confirmed;
	// PaymentsPerSec, over the phase's length.
	Payments       int
	PaymentsPerSec float64
	// Offered, Accepted, Refused, Failed count requests.
	Offered  int
	Accepted int
	Refused  int
	Failed   int
	// RefusedShare and FailedShare are of Offered.
	RefusedShare, FailedShare float64
	AcceptedPerSec            float64
	// P50 and P99 are of the accepted requests.
	P50, P99 time.Duration
	// RSS of the api, sampled every 50ms.
	RSSStartKiB, RSSPeakKiB, RSSEndKiB int64
	// PeakOutstanding is the most payments in progress at once (open loop).
	PeakOutstanding int64
	// FailedSample is one failure, for the report.
	FailedSample string

	cfg       *overloadConfig
	client    *http.Client
	runID     string
	startedAt time.Time
	elapsed   time.Duration

	mu        sync.Mutex
	latencies []time.Duration

	seq, offeredN, acceptN, refusedN, failedN atomic.Int64
	paymentsN                                 atomic.Int64
	outstandNow                               atomic.Int64
	outstanding                               sync.WaitGroup
	failedOnce                                sync.Once
	rssStop, rssDone                          chan struct{}
}

// overloadResult is the whole measurement.
type overloadResult struct {
	Max, Unloaded, Overload *overloadPhase
	// P99Ratio is the overload phase's p99 over the unloaded one's (goal ≤ 2).
	P99Ratio float64
	// RSSGrowth is the overload phase's peak RSS over its starting RSS.
	RSSGrowth float64
}

// measureOverload runs the three phases against a running api.
func measureOverload(ctx context.Context, cfg overloadConfig) (*overloadResult, error) {
	if cfg.Factor <= 0 {
		cfg.Factor = 2
	}
	client := overloadClient(cfg)
	run := fmt.Sprintf("ovl-%d-%d", time.Now().Unix(), rand.IntN(1e6))
	newPhase := func(name string) *overloadPhase {
		return &overloadPhase{Name: name, client: client, cfg: &cfg, runID: run + "-" + name}
	}

	res := &overloadResult{Max: newPhase("max")}
	if cfg.MaxPerSec > 0 {
		res.Max.PaymentsPerSec = cfg.MaxPerSec
	} else if err := res.Max.closedLoop(ctx, cfg.Concurrency, cfg.Probe); err != nil {
		return nil, err
	}
	if res.Max.PaymentsPerSec <= 0 && cfg.MaxPerSec <= 0 {
		return nil, fmt.Errorf("the closed loop accepted nothing (%s)", res.Max.FailedSample)
	}
	res.Unloaded = newPhase("unloaded")
	if err := res.Unloaded.openLoop(ctx, res.Max.PaymentsPerSec/4, cfg.Unloaded); err != nil {
		return nil, err
	}
	res.Overload = newPhase("overload")
	if err := res.Overload.openLoop(ctx, res.Max.PaymentsPerSec*cfg.Factor, cfg.Overload); err != nil {
		return nil, err
	}
	if res.Unloaded.P99 > 0 {
		res.P99Ratio = float64(res.Overload.P99) / float64(res.Unloaded.P99)
	}
	if res.Overload.RSSStartKiB > 0 {
		res.RSSGrowth = float64(res.Overload.RSSPeakKiB) / float64(res.Overload.RSSStartKiB)
	}
	return res, nil
}

// measureClosed runs one closed loop of conc callers for d: the throughput
// and latency at that concurrency (to see where the api saturates).
func measureClosed(ctx context.Context, cfg overloadConfig, name string, conc int) (*overloadPhase, error) {
	p := &overloadPhase{Name: name, client: overloadClient(cfg), cfg: &cfg,
		runID: fmt.Sprintf("ovl-%d-%d-c%d", time.Now().Unix(), rand.IntN(1e6), conc)}
	return p, p.closedLoop(ctx, conc, cfg.Probe)
}

func overloadClient(cfg overloadConfig) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			MaxIdleConns: 20000, MaxIdleConnsPerHost: 20000, IdleConnTimeout: time.Minute,
		},
	}
}

// closedLoop runs conc callers back to back for d.
func (p *overloadPhase) closedLoop(ctx context.Context, conc int, d time.Duration) error {
	p.begin()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				p.payment(context.WithoutCancel(ctx))
			}
		})
	}
	wg.Wait()
	return p.end()
}

// openLoop starts payments at rate per second for d, whatever becomes of
// the earlier ones, then waits for the last to finish.
func (p *overloadPhase) openLoop(ctx context.Context, rate float64, d time.Duration) error {
	p.OfferedPerSec = rate
	p.begin()
	start := time.Now()
	launched := int64(0)
	for {
		el := time.Since(start)
		if el >= d || ctx.Err() != nil {
			break
		}
		due := int64(el.Seconds() * rate)
		for ; launched < due; launched++ {
			p.outstanding.Add(1)
			if n := p.outstandNow.Add(1); n > p.PeakOutstanding {
				p.PeakOutstanding = n // only this goroutine writes it
			}
			go func() {
				defer p.outstanding.Done()
				defer p.outstandNow.Add(-1)
				p.payment(ctx)
			}()
		}
		time.Sleep(time.Millisecond)
	}
	// Over the whole phase, the wait for the last answer included: an api
	// that queues finishes its backlog after the offer stops.
	p.outstanding.Wait()
	p.elapsed = time.Since(start)
	return p.end()
}

func (p *overloadPhase) begin() {
	p.startedAt = time.Now()
	p.RSSStartKiB = overloadRSS(p.cfg.PID)
	p.RSSPeakKiB = p.RSSStartKiB
	p.rssStop, p.rssDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.rssDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.rssStop:
				return
			case <-t.C:
				if r := overloadRSS(p.cfg.PID); r > p.RSSPeakKiB {
					p.RSSPeakKiB = r
				}
			}
		}
	}()
}

func (p *overloadPhase) end() error {
	if p.elapsed == 0 {
		p.elapsed = time.Since(p.startedAt)
	}
	close(p.rssStop)
	<-p.rssDone
	p.RSSEndKiB = overloadRSS(p.cfg.PID)
	p.Offered = int(p.offeredN.Load())
	p.Accepted, p.Refused, p.Failed = int(p.acceptN.Load()), int(p.refusedN.Load()), int(p.failedN.Load())
	p.AcceptedPerSec = float64(p.Accepted) / p.elapsed.Seconds()
	p.Payments = int(p.paymentsN.Load())
	p.PaymentsPerSec = float64(p.Payments) / p.elapsed.Seconds()
	if p.Offered > 0 {
		p.RefusedShare = float64(p.Refused) / float64(p.Offered)
		p.FailedShare = float64(p.Failed) / float64(p.Offered)
	}
	slices.Sort(p.latencies)
	p.P50, p.P99 = overloadQuantile(p.latencies, 0.50), overloadQuantile(p.latencies, 0.99)
	return nil
}

// payment creates a payment and confirms it. Each call is counted on its
// own: accepted (with its latency), refused 503 overloaded, or failed; a
// refused or failed create is not followed by its confirm.
func (p *overloadPhase) payment(ctx context.Context) {
	n := p.seq.Add(1)
	order := fmt.Sprintf("%s-%d", p.runID, n)
	body, ok := p.call(ctx, "/v1/payments", `{"orderId":"`+order+`","amount":1000,"orderName":"overload"}`, http.StatusCreated)
	if !ok {
		return
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		p.fail(fmt.Sprintf("create answer without an id: %.200s", body))
		return
	}
	if _, ok := p.call(ctx, "/v1/payments/"+created.ID+"/confirm", `{"paymentKey":"pk_`+order+`","amount":1000}`, http.StatusAccepted); ok {
		p.paymentsN.Add(1)
	}
}

// call sends one request and counts its outcome.
func (p *overloadPhase) call(ctx context.Context, path, reqBody string, want int) ([]byte, bool) {
	p.offeredN.Add(1)
	start := time.Now()
	status, body, err := p.post(ctx, path, reqBody)
	el := time.Since(start)
	switch {
	case err == nil && status == want:
		p.acceptN.Add(1)
		p.mu.Lock()
		p.latencies = append(p.latencies, el)
		p.mu.Unlock()
		return body, true
	case err == nil && status == http.StatusServiceUnavailable && bytes.Contains(body, []byte(`"code":"overloaded"`)):
		p.refusedN.Add(1)
	case err != nil:
		p.fail(err.Error())
	default:
		p.fail(strconv.Itoa(status) + " " + strings.TrimSpace(string(body)))
	}
	return nil, false
}

func (p *overloadPhase) fail(what string) {
	p.failedN.Add(1)
	p.failedOnce.Do(func() { p.FailedSample = what })
}

func (p *overloadPhase) post(ctx context.Context, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.BaseURL+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// overloadRSS reads a process's resident set in KiB (0 when unknown).
func overloadRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func overloadQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// String is the phase as one report line.
func (p *overloadPhase) String() string {
	offered := "closed loop"
	if p.OfferedPerSec > 0 {
		offered = fmt.Sprintf("offered %.0f payments/s", p.OfferedPerSec)
	}
	sample := ""
	if p.FailedSample != "" {
		sample = "; a failure: " + p.FailedSample
	}
	return fmt.Sprintf("%-8s %s: %.0f payments/s; requests: accepted %d of %d, refused %.1f%%, failed %.1f%%, accepted p50 %.1f ms, p99 %.1f ms; RSS %d→%d MiB (peak %d), peak outstanding %d%s",
		p.Name, offered, p.PaymentsPerSec, p.Accepted, p.Offered, 100*p.RefusedShare, 100*p.FailedShare,
		float64(p.P50.Microseconds())/1000, float64(p.P99.Microseconds())/1000,
		p.RSSStartKiB>>10, p.RSSEndKiB>>10, p.RSSPeakKiB>>10, p.PeakOutstanding, sample)
}
