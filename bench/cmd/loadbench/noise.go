package main

import (
	"maps"
	"os"
	"slices"
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
type cpuSnapshot struct {
	total, busy uint64
	ours        procstat.Sample
}

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
	pids := slices.Collect(maps.Keys(benchPIDs))
	benchPIDsMu.Unlock()
	s.ours = procstat.Read(append(pids, postgresPIDs()...))
	return s
}

// postgresPIDs are the PostgreSQL server's own processes and the backends
// of the bench's connections.
func postgresPIDs() []int {
	if otherPGBackends == nil {
		return nil
	}
	others := otherPGBackends()
	return slices.DeleteFunc(procstat.Postgres(), func(pid int) bool { return others[pid] })
}

// foreignShare is the share of all CPU time between a and b that processes
// other than the bench's (and PostgreSQL's) used.
func foreignShare(a, b cpuSnapshot) float64 {
	total := float64(b.total - a.total)
	if total <= 0 || b.busy < a.busy {
		return 0
	}
	foreign := float64(b.busy-a.busy) - float64(b.ours.Since(a.ours))
	return max(foreign, 0) / total
}
