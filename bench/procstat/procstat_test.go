package procstat

import (
	"os"
	"os/exec"
	"testing"
)

// A process that ends between two samples takes none of the time back
// (the sums of the two moments went backwards and wrapped around), and one
// that starts in between counts whole.
func TestSinceNeverGoesBackwards(t *testing.T) {
	before := Sample{1: 500, 2: 70, 3: 10}
	after := Sample{1: 520, 4: 30}             // 2 and 3 ended; 4 started
	if got := after.Since(before); got != 50 { // 20 of 1's, 30 of 4's
		t.Fatalf("Since = %d, want 50", got)
	}
	reused := Sample{3: 4} // 3's id taken by a new process with less time
	if got := reused.Since(before); got != 4 {
		t.Fatalf("Since over a reused id = %d, want 4", got)
	}
}

// Read reads an ended process as nothing, so that Since counts nothing of it.
func TestReadSamplesAnEndedProcessAsNothing(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	s := Read([]int{cmd.Process.Pid})
	if n, ok := s[cmd.Process.Pid]; !ok || n != 0 {
		t.Fatalf("an ended process read as %d ticks (%v)", n, ok)
	}
}
