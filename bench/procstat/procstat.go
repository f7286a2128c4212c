// Package procstat reads processes' CPU time from Linux's /proc, for the
// benchmarks: the load benchmark's CPU per request and the store
// benchmark's PostgreSQL CPU per operation. Where /proc is not there, every
// figure is zero.
package procstat

import (
	"os"
	"strconv"
	"strings"
)

// TicksPerSecond is Linux's USER_HZ, the unit of /proc's CPU times.
const TicksPerSecond = 100

// Ticks is the user and system time of a process, in ticks.
func Ticks(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

// Postgres are the processes of this machine named postgres: a local
// PostgreSQL server's own and its backends.
func Postgres() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm"); strings.TrimSpace(string(comm)) == "postgres" {
			pids = append(pids, pid)
		}
	}
	return pids
}
