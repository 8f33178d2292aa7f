package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The machine: what it is (machineInfo, for the report's header) and where
// its CPU went, read from /proc.

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux the project runs on; reading it needs sysconf and so cgo.
const clockTicks = 100

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

// cpuSnap is the CPU time used so far by each part of the system, by the
// bench itself and by the whole machine.
type cpuSnap struct {
	at          time.Time
	ticks       map[string]uint64
	pids        map[string]int
	busy, total uint64
	wal         walPos // the database's, when the bench read it (bench.snap)
}

func (s *system) snapCPU() cpuSnap {
	c := cpuSnap{at: time.Now(), ticks: map[string]uint64{}, pids: map[string]int{}}
	for name, p := range map[string]*proc{"api": s.api, "api-b": s.apiB, "relay": s.relay, "gatewaysim": s.sim} {
		pid := pidOf(p)
		if pid == 0 {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			c.ticks[name] = st.ticks
			c.pids[name] = pid
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

// snap is snapCPU with the database's WAL position.
func (b *bench) snap(ctx context.Context) cpuSnap {
	c := b.sys.snapCPU()
	c.wal = b.db.walPos(ctx)
	return c
}

// cpuUse is the CPU a stretch of work cost: seconds per part, and the
// machine's busy share.
type cpuUse struct {
	Seconds     map[string]float64 `json:"seconds"`
	MachineBusy float64            `json:"machineBusyPct"`
	// WAL bytes written and write transactions begun in the database.
	WALBytes float64 `json:"walBytes"`
	Xacts    float64 `json:"writeXacts"`
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
	if a.wal.lsn > 0 && b.wal.lsn >= a.wal.lsn {
		u.WALBytes, u.Xacts = b.wal.lsn-a.wal.lsn, b.wal.xid-a.wal.xid
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

type machine struct {
	CPUs     int     `json:"cpus"`
	MemGiB   float64 `json:"memGiB"`
	CPUModel string  `json:"cpuModel"`
	Kernel   string  `json:"kernel"`
	OS       string  `json:"os"`
	Go       string  `json:"go"`
	Postgres string  `json:"postgres"`
	Commit   string  `json:"commit"`
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemGiB = float64(int(kb/1024/1024*10+0.5)) / 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil && len(st) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}
