package testrun

import (
	"os"
	"strconv"
	"strings"
)

// cpuTimes are this machine's CPU ticks from /proc/stat's "cpu" line: busy
// (every state but idle and iowait) and all.
type cpuTimes struct{ busy, all uint64 }

func readCPUTimes() (cpuTimes, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, false
	}
	var t cpuTimes
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, false
		}
		t.all += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t, true
}

// busySince is the share of the machine's CPU time (all CPUs) that was
// busy since t, in percent; -1 when unknown. It tells whether a phase
// waits (room for another beside it) or computes.
func busySince(t cpuTimes, ok bool) int {
	now, ok2 := readCPUTimes()
	if !ok || !ok2 || now.all <= t.all {
		return -1
	}
	return int(100 * (now.busy - t.busy) / (now.all - t.all))
}
