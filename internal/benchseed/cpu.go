package benchseed

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clockTicks is the kernel's USER_HZ, 100 on every Linux the bench runs on.
const clockTicks = 100

// serverCPU returns the CPU time the database server has used so far (the
// postmaster and all its children), or false when the server is not a
// process on this machine. With other work on the machine, CPU time says
// more about a seed's cost than the wall clock.
func serverCPU(ctx context.Context, pool *pgxpool.Pool) (time.Duration, bool) {
	var backend int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, false
	}
	postmaster, _, ok := procStat(backend)
	if !ok {
		return 0, false
	}
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(postmaster) + "/comm"); !strings.HasPrefix(string(comm), "postgres") && !strings.HasPrefix(string(comm), "postmaster") {
		return 0, false
	}
	_, total, _ := procStat(postmaster)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if ppid, ticks, ok := procStat(pid); ok && ppid == postmaster {
			total += ticks
		}
	}
	return time.Duration(total) * time.Second / clockTicks, true
}

// procStat reads a process's parent and its user+system CPU ticks, with
// those of its waited-for children.
func procStat(pid int) (ppid int, ticks int64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += v
	}
	return ppid, ticks, true
}
