package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/systest"
)

// simSecretKey is the secret key gatewaysim accepts and the relay sends.
const simSecretKey = "test_sk_gatewaysim_bench"

// envPrefixes are the variables the bench sets itself for the processes it
// starts. scrubEnv drops inherited ones from the bench's own environment
// (which its children inherit), so a RELAY_WORKERS or LOG_LEVEL left in the
// caller's shell cannot quietly change what is measured.
var envPrefixes = []string{"DATABASE_", "API_", "RELAY_", "TOSS_", "SIM_", "LOG_LEVEL", "GOMAXPROCS", "GOGC", "GOMEMLIMIT"}

func scrubEnv() {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range envPrefixes {
			if strings.HasPrefix(name, p) {
				_ = os.Unsetenv(name)
				break
			}
		}
	}
}

// system is the system under test: gatewaysim, api and relay, each started
// from the built binaries (internal/systest) with the bench's own ports and
// environment, their output in DIR/NAME.log.
type system struct {
	bin    systest.Binaries
	logDir string
	dbURL  string

	simAddr, apiAddr, relayAddr string
	// apiBDir and apiBAddr: a second api build (-api-b) served side by
	// side with the first, for A/B comparisons of a proposed change.
	apiBDir, apiBAddr string

	// apiEnv is extra environment for the api (an experiment's tuning);
	// apiExtra, the running api's own phase setting (startAPI).
	apiEnv, apiExtra []string

	sim, api, apiB, relay *proc
	simc                  *gatewaysim.Client
	// relayWorkers is what the running relay was started with.
	relayWorkers int
	// postmaster is the database server's pid when it runs on this
	// machine, for its CPU time; 0 when it cannot be seen.
	postmaster int
}

// proc is one started process and its log file.
type proc struct {
	*systest.Process
	log *os.File
}

func newSystem(binDir, logDir, dbURL string) (*system, error) {
	s := &system{
		bin: systest.Binaries{
			API:        filepath.Join(binDir, "api"),
			Relay:      filepath.Join(binDir, "relay"),
			GatewaySim: filepath.Join(binDir, "gatewaysim"),
		},
		logDir: logDir, dbURL: dbURL,
	}
	for _, addr := range []*string{&s.simAddr, &s.apiAddr, &s.relayAddr, &s.apiBAddr} {
		a, err := systest.FreeAddr()
		if err != nil {
			return nil, err
		}
		*addr = a
	}
	for _, path := range []string{s.bin.API, s.bin.Relay, s.bin.GatewaySim} {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("error finding %s (run make build first): %w", path, err)
		}
	}
	s.simc = gatewaysim.NewClient("http://"+s.simAddr, nil)
	return s, nil
}

// migrate applies every migration, as a deploy would.
func (s *system) migrate(ctx context.Context) error {
	return systest.Migrate(ctx, s.bin, s.dbURL)
}

// createAPIKey makes an API key with `api keys create NAME` when the api has
// that command. No command (an older api) is not an error: the bench then
// sends no Authorization header. ok says which.
func (s *system) createAPIKey(ctx context.Context, name string) (key string, ok bool, err error) {
	key, err = systest.CreateAPIKey(ctx, s.bin, s.dbURL, name)
	if err != nil && strings.Contains(err.Error(), "unknown command") {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return key, true, nil
}

// start starts path as name with env, logging to DIR/name.log, and waits
// until readyURL answers 200.
func (s *system) start(ctx context.Context, name, path string, env []string, readyURL string, args ...string) (*proc, error) {
	logFile, err := os.OpenFile(filepath.Join(s.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("error opening %s log: %w", name, err)
	}
	fmt.Fprintf(logFile, "\n==== bench: starting %s %s at %s\n", path, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	// StopWithParent: a bench killed outright must not leave an api or
	// relay running against the throwaway cluster.
	p := &proc{Process: systest.NewProcess(name, path, env, args...).LogTo(logFile).StopWithParent(), log: logFile}
	if err := p.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	if err := systest.WaitHTTP(ctx, readyURL, 30*time.Second); err != nil {
		if !p.Running() {
			err = fmt.Errorf("%s exited before it was ready; see %s: %w", name, logFile.Name(), err)
		}
		_ = p.stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// stop stops the process (SIGTERM, then SIGKILL after grace) and closes
// its log. A process that had exited on its own is an error.
func (p *proc) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	defer p.log.Close()
	if !p.Running() {
		return fmt.Errorf("%s had already exited; see %s", p.Name, p.log.Name())
	}
	return p.Stop(grace)
}

func (s *system) startSim(ctx context.Context) error {
	p, err := s.start(ctx, "gatewaysim", s.bin.GatewaySim, []string{
		"SIM_ADDR=" + s.simAddr, "SIM_SECRET_KEY=" + simSecretKey, "SIM_LOG_LEVEL=warn",
	}, "http://"+s.simAddr+"/healthz", "-auto-authorize")
	s.sim = p
	return err
}

// startAPI starts the api with its defaults (pool size, log level): the
// bench measures what ships. extra is a phase's own setting (e.g.
// API_MAX_IN_FLIGHT=0); it comes last, so it wins over -api-env (a process
// given a name twice gets the last value).
func (s *system) startAPI(ctx context.Context, extra ...string) error {
	p, err := s.start(ctx, "api", s.bin.API, s.apiEnvWith("API_ADDR="+s.apiAddr, extra), "http://"+s.apiAddr+"/readyz")
	s.api = p
	s.apiExtra = extra
	return err
}

// restartAPI stops the api and starts it again with extra.
func (s *system) restartAPI(ctx context.Context, extra ...string) error {
	if err := s.stopAPI(); err != nil {
		return err
	}
	return s.startAPI(ctx, extra...)
}

// startAPIB starts the -api-b build next to the first, same environment.
func (s *system) startAPIB(ctx context.Context) error {
	p, err := s.start(ctx, "api-b", filepath.Join(s.apiBDir, "api"), s.apiEnvWith("API_ADDR="+s.apiBAddr, s.apiExtra),
		"http://"+s.apiBAddr+"/readyz")
	s.apiB = p
	return err
}

func (s *system) apiEnvWith(addr string, extra []string) []string {
	env := append([]string{"DATABASE_URL=" + s.dbURL, addr}, s.apiEnv...)
	return append(env, extra...)
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
	p, err := s.start(ctx, "relay", s.bin.Relay, env, "http://"+s.relayAddr+"/readyz")
	s.relay = p
	s.relayWorkers = workers
	return err
}

func (s *system) stopRelay() error {
	err := s.relay.stop(60 * time.Second)
	s.relay = nil
	return err
}

func (s *system) stopAll() {
	for _, p := range []*proc{s.relay, s.api, s.apiB, s.sim} {
		if p != nil && p.Running() {
			_ = p.stop(30 * time.Second)
		}
	}
	s.relay, s.api, s.apiB, s.sim = nil, nil, nil, nil
}

// setGateway replaces gatewaysim's fault config: a fixed latency and
// auto-authorize (a confirm with an unknown paymentKey opens its session, so
// the bench need not play the checkout widget for every payment).
func (s *system) setGateway(ctx context.Context, latency time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return s.simc.SetConfig(ctx, gatewaysim.Config{AutoAuthorize: true, Latency: gatewaysim.Duration(latency)})
}

// resetGateway forgets every payment gatewaysim knows, after a phase's ledger
// was checked, so the next phase's ledger holds only its own.
func (s *system) resetGateway(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return s.simc.Reset(ctx)
}

func (s *system) ledger(ctx context.Context) ([]gatewaysim.LedgerEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	l, err := s.simc.Ledger(ctx)
	if err != nil {
		return nil, err
	}
	return l.Payments, nil
}

// pidOf is p's pid, or 0 when it is not running.
func pidOf(p *proc) int {
	if p == nil || !p.Running() {
		return 0
	}
	return p.Pid()
}
