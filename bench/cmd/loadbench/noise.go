package main

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// The machine may be shared (builds and tests of other work): the bench
// measures how much of the CPUs other processes took during each
// measurement, so that a noisy run shows as one.

var (
	benchPIDsMu sync.Mutex
	benchPIDs   = map[int]bool{os.Getpid(): true}
)

func trackPID(pid int)   { benchPIDsMu.Lock(); benchPIDs[pid] = true; benchPIDsMu.Unlock() }
func untrackPID(pid int) { benchPIDsMu.Lock(); delete(benchPIDs, pid); benchPIDsMu.Unlock() }

// cpuSnapshot is the machine's CPU time and the part of it the bench, its
// servers and the PostgreSQL server used, in clock ticks.
type cpuSnapshot struct{ total, busy, ours uint64 }

// otherPGBackends, when set, lists the PostgreSQL backends of other work:
// their time is not the bench's.
var otherPGBackends func() map[int]bool

func snapshotCPU() cpuSnapshot {
	var s cpuSnapshot
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		s.total += n
		// Not idle, iowait, nor irq and softirq: the loopback traffic of the
		// bench itself is processed there, and charged to no process.
		if i != 3 && i != 4 && i != 5 && i != 6 {
			s.busy += n
		}
	}
	benchPIDsMu.Lock()
	for pid := range benchPIDs {
		s.ours += procTicks(pid)
	}
	benchPIDsMu.Unlock()
	s.ours += postgresTicks()
	return s
}

// postgresTicks is the CPU time of the PostgreSQL server's own processes
// and of the backends of the bench's connections.
func postgresTicks() uint64 {
	var others map[int]bool
	if otherPGBackends != nil {
		others = otherPGBackends()
	} else {
		return 0
	}
	var n uint64
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || others[pid] {
			continue
		}
		if comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm"); strings.TrimSpace(string(comm)) == "postgres" {
			n += procTicks(pid)
		}
	}
	return n
}

// ticksPerSecond is Linux's USER_HZ, the unit of /proc's CPU times.
const ticksPerSecond = 100

// procTicks is the user and system time of a process.
func procTicks(pid int) uint64 {
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

// foreignShare is the share of all CPU time between a and b that processes
// other than the bench's (and PostgreSQL's) used.
func foreignShare(a, b cpuSnapshot) float64 {
	total := float64(b.total - a.total)
	if total <= 0 || b.busy < a.busy {
		return 0
	}
	foreign := float64(b.busy-a.busy) - float64(b.ours-a.ours)
	return max(foreign, 0) / total
}
