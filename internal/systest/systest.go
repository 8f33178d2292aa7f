// Package systest runs the project's real binaries (api, relay, gatewaysim)
// and a throwaway Postgres as processes on loopback, for the end-to-end
// test and the chaos suite: build, start, stop, SIGKILL, freeze (SIGSTOP)
// and restart them; give Postgres a synchronous standby and fail over to it.
package systest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RepoRoot finds the module root by walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("error getting working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "cmd", "relay")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the payment-outbox repository")
		}
		dir = parent
	}
}

// Binaries are the built commands.
type Binaries struct {
	API, Relay, GatewaySim string
}

// Build compiles api, relay and gatewaysim into dir.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "./cmd/api", "./cmd/relay", "./cmd/gatewaysim")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("error building binaries: %w: %s", err, out)
	}
	return Binaries{
		API:        filepath.Join(dir, "api"),
		Relay:      filepath.Join(dir, "relay"),
		GatewaySim: filepath.Join(dir, "gatewaysim"),
	}, nil
}

// Process is one running binary with its output captured.
type Process struct {
	Name string
	path string
	args []string
	env  []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	out     *Output
	log     io.Writer // LogTo: where the output goes instead of out
	orphan  bool      // StopWithParent: SIGTERM when the starting process dies
	paused  bool      // SIGSTOPped and not yet SIGCONTed
	started time.Time // when the current run started
}

// Output collects a process's stdout and stderr, safe to read while the
// process writes.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Tail returns the last n bytes written.
func (o *Output) Tail(n int) string {
	s := o.String()
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// NewProcess describes a process; Start runs it. env is added to the
// current environment.
func NewProcess(name, path string, env []string, args ...string) *Process {
	return &Process{Name: name, path: path, args: args, env: env, out: &Output{}}
}

// Output returns what the process (all its runs) printed.
func (p *Process) Output() *Output { return p.out }

// LogTo sends the output of the process's next runs to w instead of
// keeping it in memory (Output then stays empty): for long runs, such as a
// benchmark's, whose logs would not fit.
func (p *Process) LogTo(w io.Writer) *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = w
	return p
}

// StopWithParent makes the next runs get SIGTERM when the process that
// started them dies, even by SIGKILL, so a killed benchmark leaves nothing
// running behind it. (Linux's parent-death signal; it follows the thread
// that started the process, which Go keeps alive.)
func (p *Process) StopWithParent() *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.orphan = true
	return p
}

// Pid is the process id of the current run, 0 before the first Start.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Start runs the process. Its output accumulates across restarts.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	var out io.Writer = p.out
	if p.log != nil {
		out = p.log
	}
	cmd.Stdout, cmd.Stderr = out, out
	if p.orphan {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("error starting %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done, p.paused, p.started = cmd, done, false, time.Now()
	return nil
}

// StartedAt is when the process's current run started.
func (p *Process) StartedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// Running reports whether the process is up.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL: the process gets no chance to finish anything.
func (p *Process) Kill() error {
	return p.signal(syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM and waits up to grace, then kills. A paused process
// is resumed first: stopped, it could not act on the SIGTERM.
func (p *Process) Stop(grace time.Duration) error {
	if p.Paused() {
		if err := p.Resume(); err != nil {
			return err
		}
	}
	err := p.signal(syscall.SIGTERM, grace)
	if errors.Is(err, errTimeout) {
		return p.Kill()
	}
	return err
}

// Pause sends SIGSTOP: the process freezes where it is, with its
// connections open, its locks and its jobs held, and its timers unfired,
// until Resume. To everyone else it looks alive and silent, like a process
// in a long GC pause or on a frozen VM.
func (p *Process) Pause() error {
	if err := p.send(syscall.SIGSTOP); err != nil {
		return err
	}
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	return nil
}

// Resume sends SIGCONT to a paused process: it carries on from where it
// froze, unaware that time passed.
func (p *Process) Resume() error {
	if err := p.send(syscall.SIGCONT); err != nil {
		return err
	}
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	return nil
}

// Paused reports whether the process is paused (and has not exited since).
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused || p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// send delivers sig to the running process without waiting for anything;
// a process that has exited is not an error.
func (p *Process) send(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("error signalling %s: never started", p.Name)
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("error signalling %s: %w", p.Name, err)
	}
	return nil
}

var errTimeout = errors.New("process did not exit in time")

func (p *Process) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("error signalling %s: %w", p.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return errTimeout
	}
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("error finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitHTTP waits until url answers 200.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never answered 200: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Migrate runs `api migrate` against dbURL.
func Migrate(ctx context.Context, bin Binaries, dbURL string) error {
	cmd := exec.CommandContext(ctx, bin.API, "migrate")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("error migrating: %w: %s", err, out)
	}
	return nil
}

// CreateAPIKey runs `api keys create NAME` and returns the key it printed
// (its last line).
func CreateAPIKey(ctx context.Context, bin Binaries, dbURL, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin.API, append([]string{"keys", "create", name}, args...)...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("error creating API key: %w: %s", err, stderr.String())
	}
	lines := strings.Fields(strings.TrimSpace(stdout.String()))
	if len(lines) == 0 {
		return "", errors.New("api keys create printed no key")
	}
	return lines[len(lines)-1], nil
}

// LocalPostgres is a throwaway cluster run by scripts/localpg, which the
// chaos suite can restart under the running system, give a synchronous
// standby, and fail over.
type LocalPostgres struct {
	script string
	dir    string
	port   string
	URL    string
}

// Addr is the host:port the server listens on.
func (pg *LocalPostgres) Addr() string {
	return net.JoinHostPort("127.0.0.1", pg.port)
}

// StartStandby makes a streaming standby of pg (which must be running) in
// dir on port, starts it and returns it (scripts/localpg standby). pg then
// waits for it on every commit (synchronous replication, with
// synchronous_commit on), so every commit pg acknowledged survives a
// failover to it; the standby itself, once promoted, waits for nobody.
func (pg *LocalPostgres) StartStandby(ctx context.Context, dir string, port int) (*LocalPostgres, error) {
	standby := &LocalPostgres{script: pg.script, dir: dir, port: fmt.Sprint(port)}
	cmd := exec.CommandContext(ctx, pg.script, "standby", pg.dir, dir, standby.port)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("error starting a standby of local Postgres: %w: %s", err, stderr.String())
	}
	standby.URL = strings.TrimSpace(string(out))
	return standby, nil
}

// Promote makes a standby a primary that takes writes; it returns once it
// does.
func (pg *LocalPostgres) Promote(ctx context.Context) error {
	if out, err := exec.CommandContext(ctx, pg.script, "promote", pg.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("error promoting local Postgres standby: %w: %s", err, out)
	}
	return nil
}

// StartLocalPostgres starts a cluster in dir on port.
func StartLocalPostgres(ctx context.Context, root, dir string, port int) (*LocalPostgres, error) {
	pg := &LocalPostgres{script: filepath.Join(root, "scripts", "localpg"), dir: dir, port: fmt.Sprint(port)}
	if err := pg.Start(ctx); err != nil {
		return nil, err
	}
	return pg, nil
}

// LocalPostgresAvailable reports whether this machine has server binaries.
func LocalPostgresAvailable(root string) bool {
	return exec.Command(filepath.Join(root, "scripts", "localpg"), "bindir").Run() == nil
}

// Start starts (or restarts) the cluster.
func (pg *LocalPostgres) Start(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, pg.script, "start", pg.dir, pg.port)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("error starting local Postgres: %w: %s", err, stderr.String())
	}
	pg.URL = strings.TrimSpace(string(out))
	return nil
}

// Stop stops the cluster (fast shutdown: connections are cut).
func (pg *LocalPostgres) Stop(ctx context.Context) error {
	if out, err := exec.CommandContext(ctx, pg.script, "stop", pg.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("error stopping local Postgres: %w: %s", err, out)
	}
	return nil
}
