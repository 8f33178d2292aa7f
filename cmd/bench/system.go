package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// simSecretKey is the secret key gatewaysim accepts and the relay sends.
const simSecretKey = "test_sk_gatewaysim_bench"

// system is the system under test: gatewaysim, api and relay, each started
// from the built binaries with the bench's own ports and environment.
type system struct {
	binDir string
	logDir string
	dbURL  string

	simAddr, apiAddr, relayAddr string
	// apiBDir and apiBAddr: a second api build (-api-b) served side by
	// side with the first, for A/B comparisons of a proposed change.
	apiBDir, apiBAddr string

	// apiEnv is extra environment for the api (an experiment's tuning).
	apiEnv []string

	sim, api, apiB, relay *proc
	// relayWorkers is what the running relay was started with.
	relayWorkers int
	// postmaster is the database server's pid when it runs on this
	// machine, for its CPU time; 0 when it cannot be seen.
	postmaster int
}

func newSystem(binDir, logDir, dbURL string) (*system, error) {
	s := &system{binDir: binDir, logDir: logDir, dbURL: dbURL}
	for _, addr := range []*string{&s.simAddr, &s.apiAddr, &s.relayAddr, &s.apiBAddr} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		*addr = "127.0.0.1:" + strconv.Itoa(port)
	}
	for _, name := range []string{"api", "relay", "gatewaysim"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return nil, fmt.Errorf("error finding %s in %s (run make build first): %w", name, binDir, err)
		}
	}
	return s, nil
}

func (s *system) bin(name string) string { return filepath.Join(s.binDir, name) }

// runAPI runs `api ARGS...` to completion and returns its stdout.
func (s *system) runAPI(ctx context.Context, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, s.bin("api"), args...)
	cmd.Env = childEnv([]string{"DATABASE_URL=" + s.dbURL})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// migrate applies every migration, as a deploy would.
func (s *system) migrate(ctx context.Context) error {
	out, errOut, err := s.runAPI(ctx, "migrate")
	if err != nil {
		return fmt.Errorf("error running api migrate: %w: %s%s", err, out, errOut)
	}
	return nil
}

// createAPIKey makes an API key with `api keys create NAME` when the api has
// that command. No command (an older api) is not an error: the bench then
// sends no Authorization header. ok says which.
func (s *system) createAPIKey(ctx context.Context, name string) (key string, ok bool, err error) {
	out, errOut, runErr := s.runAPI(ctx, "keys", "create", name)
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) && exitErr.ExitCode() == 2 && strings.Contains(errOut, "unknown command") {
		return "", false, nil
	}
	if runErr != nil {
		return "", false, fmt.Errorf("error running api keys create: %w: %s%s", runErr, out, errOut)
	}
	key = parseKey(out)
	if key == "" {
		return "", false, fmt.Errorf("api keys create printed no key: %q", out)
	}
	return key, true, nil
}

// parseKey finds the key in what `api keys create` printed: the output
// itself when it is one token, else the last token of the last line that
// is not blank. It tolerates "key: XYZ" and similar.
func parseKey(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) > 0 {
			return f[len(f)-1]
		}
	}
	return ""
}

func (s *system) startSim(ctx context.Context) error {
	p, err := startProc("gatewaysim", s.logDir, s.bin("gatewaysim"), []string{
		"SIM_ADDR=" + s.simAddr, "SIM_SECRET_KEY=" + simSecretKey, "SIM_LOG_LEVEL=warn",
	}, "-auto-authorize")
	if err != nil {
		return err
	}
	s.sim = p
	return waitReady(ctx, p, "http://"+s.simAddr+"/healthz", 20*time.Second)
}

// startAPI starts the api with its defaults (pool size, log level): the
// bench measures what ships.
func (s *system) startAPI(ctx context.Context) error {
	p, err := startProc("api", s.logDir, s.bin("api"), append([]string{
		"DATABASE_URL=" + s.dbURL, "API_ADDR=" + s.apiAddr,
	}, s.apiEnv...))
	if err != nil {
		return err
	}
	s.api = p
	return waitReady(ctx, p, "http://"+s.apiAddr+"/readyz", 30*time.Second)
}

// startAPIB starts the -api-b build next to the first, same environment.
func (s *system) startAPIB(ctx context.Context) error {
	p, err := startProc("api-b", s.logDir, filepath.Join(s.apiBDir, "api"), append([]string{
		"DATABASE_URL=" + s.dbURL, "API_ADDR=" + s.apiBAddr,
	}, s.apiEnv...))
	if err != nil {
		return err
	}
	s.apiB = p
	return waitReady(ctx, p, "http://"+s.apiBAddr+"/readyz", 30*time.Second)
}

func (s *system) stopAPI() error {
	err := s.api.stop(30 * time.Second)
	s.api = nil
	return err
}

// startRelay starts a relay with the given worker count and any extra
// environment (a tuning under test); everything else is its default.
func (s *system) startRelay(ctx context.Context, workers int, extraEnv []string) error {
	env := append([]string{
		"DATABASE_URL=" + s.dbURL,
		"TOSS_SECRET_KEY=" + simSecretKey,
		"TOSS_API_BASE_URL=http://" + s.simAddr,
		"RELAY_ADDR=" + s.relayAddr,
		"RELAY_WORKERS=" + strconv.Itoa(workers),
	}, extraEnv...)
	p, err := startProc("relay", s.logDir, s.bin("relay"), env)
	if err != nil {
		return err
	}
	s.relay = p
	s.relayWorkers = workers
	return waitReady(ctx, p, "http://"+s.relayAddr+"/readyz", 30*time.Second)
}

func (s *system) stopRelay() error {
	err := s.relay.stop(60 * time.Second)
	s.relay = nil
	return err
}

func (s *system) stopAll() {
	for _, p := range []*proc{s.relay, s.api, s.apiB, s.sim} {
		if p != nil && !p.exited() {
			_ = p.stop(30 * time.Second)
		}
	}
	s.relay, s.api, s.apiB, s.sim = nil, nil, nil, nil
}

// setGateway replaces gatewaysim's fault config: a fixed latency and
// auto-authorize (a confirm with an unknown paymentKey opens its session, so
// the bench need not play the checkout widget for every payment).
func (s *system) setGateway(ctx context.Context, latency time.Duration) error {
	body := fmt.Sprintf(`{"autoAuthorize":true,"latency":%q}`, latency.String())
	return s.simCall(ctx, http.MethodPut, "/sim/v1/config", body, nil)
}

// resetGateway forgets every payment gatewaysim knows, after a phase's ledger
// was checked, so the next phase's ledger holds only its own.
func (s *system) resetGateway(ctx context.Context) error {
	return s.simCall(ctx, http.MethodPost, "/sim/v1/reset", "", nil)
}

// ledgerEntry is what the bench reads of gatewaysim's ledger.
type ledgerEntry struct {
	PaymentKey  string `json:"paymentKey"`
	OrderID     string `json:"orderId"`
	Status      string `json:"status"`
	TotalAmount int64  `json:"totalAmount"`
	Approvals   int    `json:"approvals"`
}

func (s *system) ledger(ctx context.Context) ([]ledgerEntry, error) {
	var l struct {
		Payments []ledgerEntry `json:"payments"`
	}
	if err := s.simCall(ctx, http.MethodGet, "/sim/v1/ledger", "", &l); err != nil {
		return nil, err
	}
	return l.Payments, nil
}

func (s *system) simCall(ctx context.Context, method, path, body string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.simAddr+path, rd)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("error calling gatewaysim %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("gatewaysim %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("error decoding gatewaysim %s: %w", path, err)
		}
	}
	return nil
}

// cpuSnap is the CPU time used so far by each part of the system, by the
// bench itself and by the whole machine.
type cpuSnap struct {
	at          time.Time
	ticks       map[string]uint64
	pids        map[string]int
	busy, total uint64
}

func (s *system) snapCPU() cpuSnap {
	c := cpuSnap{at: time.Now(), ticks: map[string]uint64{}, pids: map[string]int{}}
	for name, p := range map[string]*proc{"api": s.api, "api-b": s.apiB, "relay": s.relay, "gatewaysim": s.sim} {
		if p == nil || p.exited() {
			continue
		}
		if st, err := readProcStat(p.pid()); err == nil {
			c.ticks[name] = st.ticks
			c.pids[name] = p.pid()
		}
	}
	if s.postmaster != 0 {
		c.ticks["postgres"] = treeTicks(s.postmaster)
		c.pids["postgres"] = s.postmaster
	}
	if st, err := readProcStat(os.Getpid()); err == nil {
		c.ticks["bench"] = st.ticks
		c.pids["bench"] = os.Getpid()
	}
	c.busy, c.total = machineTicks()
	return c
}

// cpuUse is the CPU a stretch of work cost: seconds per part, and the
// machine's busy share.
type cpuUse struct {
	Seconds     map[string]float64 `json:"seconds"`
	MachineBusy float64            `json:"machineBusyPct"`
}

func cpuBetween(a, b cpuSnap) cpuUse {
	u := cpuUse{Seconds: map[string]float64{}}
	for name, after := range b.ticks {
		before := a.ticks[name]
		if a.pids[name] != b.pids[name] {
			before = 0 // restarted in between: all of its time is ours
		}
		if after >= before {
			u.Seconds[name] = float64(after-before) / clockTicks
		}
	}
	if b.total > a.total {
		u.MachineBusy = 100 * float64(b.busy-a.busy) / float64(b.total-a.total)
	}
	return u
}

// perUnit converts CPU seconds to microseconds per unit of work.
func (u cpuUse) perUnit(n int) map[string]float64 {
	out := map[string]float64{}
	if n == 0 {
		return out
	}
	for name, s := range u.Seconds {
		out[name] = s * 1e6 / float64(n)
	}
	return out
}
