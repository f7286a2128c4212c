package main

import (
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/customerd/customerd/bench/procstat"
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
		s.ours += procstat.Ticks(pid)
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
	for _, pid := range procstat.Postgres() {
		if !others[pid] {
			n += procstat.Ticks(pid)
		}
	}
	return n
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
