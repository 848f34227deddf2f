package procstat

import (
	"os"
	"testing"
	"time"
)

// TestSelf reads this test process's own figures: it has used some CPU
// (it spins until it has) and holds some memory.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for {
		d, err := CPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		if d > before {
			break
		}
		for i := 0; i < 1e6; i++ { // burn a little CPU between reads
			_ = time.Now()
		}
	}
	rss, err := RSS(pid)
	if err != nil || rss <= 0 {
		t.Fatalf("RSS = %d, %v", rss, err)
	}
	peak, err := PeakRSS(pid)
	if err != nil || peak < rss {
		t.Fatalf("peak RSS %d below RSS %d (%v)", peak, rss, err)
	}
	if SumCPU([]int{pid, -1}) <= 0 {
		t.Fatal("SumCPU of this process and a missing one is zero")
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("CPU of pid -1: no error")
	}
}
