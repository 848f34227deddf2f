// Package procstat reads what a process has cost from Linux's /proc: CPU
// time (utime+stime) and resident memory, so the harness can give server
// CPU per certificate and a CA's or an agent's footprint.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times. It is 100
// on every Linux architecture Go supports (sysconf would need cgo).
const clockTick = 10 * time.Millisecond

// CPU is the user plus system time process pid has used so far.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields after its closing one. utime and stime are fields 14
	// and 15, so the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: bad times %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// RSS is process pid's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	return statusKB(pid, "VmRSS:")
}

// PeakRSS is the largest resident set size process pid has had (VmHWM).
func PeakRSS(pid int) (int64, error) {
	return statusKB(pid, "VmHWM:")
}

// statusKB reads one "Name: N kB" line of /proc/<pid>/status, in bytes.
func statusKB(pid int, name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("procstat: %s %q: %w", name, rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("procstat: /proc/%d/status has no %s", pid, name)
}

// SumCPU is the CPU time of every process in pids that still exists: for
// Postgres backends, which come and go with the pool's connections.
func SumCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		if d, err := CPU(pid); err == nil {
			sum += d
		}
	}
	return sum
}
