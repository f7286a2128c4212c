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

// Sample is the CPU time of each of a set of processes, in ticks: summing
// them at two moments and subtracting went backwards (and, unsigned,
// wrapped around to an absurd figure) when a process of the set ended in
// between, its time gone from /proc with it.
type Sample map[int]uint64

// Read samples pids.
func Read(pids []int) Sample {
	s := make(Sample, len(pids))
	for _, pid := range pids {
		s[pid] = Ticks(pid)
	}
	return s
}

// Since is the CPU time the processes of s used after before: a process
// started in between counts whole, one that ended in between not at all.
func (s Sample) Since(before Sample) uint64 {
	var n uint64
	for pid, t := range s {
		if b, ok := before[pid]; ok && t >= b {
			n += t - b
		} else {
			n += t // new, or a new process under a reused id
		}
	}
	return n
}
