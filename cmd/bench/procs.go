package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux the project runs on; reading it needs sysconf and so cgo.
const clockTicks = 100

// proc is one process of the system under test, started by the bench with its
// output going to DIR/NAME.log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// envPrefixes are the variables the bench sets itself for the processes it
// starts. Inherited ones are dropped, so a RELAY_WORKERS or LOG_LEVEL left in
// the caller's shell cannot quietly change what is measured.
var envPrefixes = []string{"DATABASE_", "API_", "RELAY_", "TOSS_", "SIM_", "LOG_LEVEL", "GOMAXPROCS", "GOGC", "GOMEMLIMIT"}

func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range envPrefixes {
			if strings.HasPrefix(kv, p) {
				drop = true
				break
			}
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startProc starts path with args and the given environment on top of the
// filtered inherited one.
func startProc(name, logDir, path string, env []string, args ...string) (*proc, error) {
	logFile, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("error opening %s log: %w", name, err)
	}
	fmt.Fprintf(logFile, "\n==== bench: starting %s %s at %s\n", path, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(path, args...)
	cmd.Env = childEnv(env)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Pdeathsig: a bench killed outright must not leave an api or relay
	// running against the throwaway cluster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("error starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for a graceful exit, then kills.
func (p *proc) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	defer p.log.Close()
	if p.exited() {
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s; killed", p.name, grace)
	}
}

// waitReady polls url until it answers 200, the process exits or the
// timeout passes.
func waitReady(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready (%v); see its log", p.name, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s", p.name, url, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePort asks the kernel for a loopback port nobody listens on. Another
// program could take it before the child binds it; the child then fails to
// start and says so, which is good enough for a benchmark.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("error finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// procStat holds the fields of /proc/PID/stat the bench reads.
type procStat struct {
	ppid         int
	ticks        uint64 // utime + stime
	childTicks   uint64 // cutime + cstime: children already reaped
	startTimeTck uint64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces; every field after it
	// follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return procStat{}, errors.New("short /proc stat")
	}
	num := func(field int) uint64 {
		v, _ := strconv.ParseUint(f[field-3], 10, 64)
		return v
	}
	return procStat{
		ppid:         int(num(4)),
		ticks:        num(14) + num(15),
		childTicks:   num(16) + num(17),
		startTimeTck: num(22),
	}, nil
}

// treeTicks is the CPU time of pid and every descendant it has had: the
// postmaster's own time, the time of the backends it has reaped, and the
// time of those still running.
func treeTicks(root int) uint64 {
	st, err := readProcStat(root)
	if err != nil {
		return 0
	}
	total := st.ticks + st.childTicks
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		if cst, err := readProcStat(pid); err == nil && cst.ppid == root {
			total += cst.ticks
		}
	}
	return total
}

// machineTicks returns busy and total jiffies of the whole machine.
func machineTicks() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	var idle uint64
	for i, s := range fields[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return total - idle, total
}

// statusKB reads a "Vm..." line of /proc/PID/status in KiB.
func statusKB(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
