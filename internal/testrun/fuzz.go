package testrun

import (
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// budgets is how many inputs each fuzz target runs: an execution count
// (-fuzztime=Nx), never a duration. Go 1.26's fuzz coordinator can fail a
// target with "context deadline exceeded" and no failing input at a
// duration's boundary on a busy machine (golang/go#75804); a count has no
// deadline to race, so a busy machine only makes the run take longer.
//
// N is sized to about 10 s of fuzzing on a quiet 2-core machine (2 workers,
// 20 CPU-seconds): executions per CPU-second of a 200000x run (user+sys of
// go test and its workers, less a 1x run's), times 20, two digits. CPU time
// rather than wall time because the machine was busy (load 11-16) when
// measured, 2026-12-02, Go 1.26.8; the comment is that rate. A duration
// run's "execs:" line undercounts: workers report only when a share ends.
// The msgr/cephx targets and msgr/msgr2.FuzzSecureFrame were measured the
// same way on 2026-12-03 (load 13-17).
var budgets = map[string]int{
	"config.FuzzParse":                        190000, // 9496
	"verbs.FuzzParseHugePageInfo":             250000, // 12330
	"verbs.FuzzParseGID":                      270000, // 13458
	"cmd/rdmaperf/internal/perf.FuzzParse":    240000, // 12180
	"msgr.FuzzParseAuthNonePayload":           230000, // 11441
	"msgr.FuzzConnectionInput":                230000, // 11454
	"msgr/msgr2.FuzzParseBanner":              310000, // 15564
	"msgr/msgr2.FuzzParsePreamble":            210000, // 10700
	"msgr/msgr2.FuzzParseFrame":               250000, // 12262
	"msgr/msgr2.FuzzUnmarshalPayload":         260000, // 12804
	"msgr/msgr2.FuzzUnmarshalMessage":         220000, // 11154
	"msgr/msgr2.FuzzAppendMessageFrameParts":  400000, // 20202
	"msgr/msgr2.FuzzSecureFrame":              280000, // 14075
	"msgr/cephx.FuzzDecodeKey":                270000, // 13405
	"msgr/cephx.FuzzParseKeyring":             210000, // 10336
	"msgr/cephx.FuzzMonClientPayloads":        370000, // 18484
	"msgr/cephx.FuzzOpen":                     320000, // 15936
	"msgr/cephx.FuzzServerPayloads":           270000, // 13736
	"msgr/cephx.FuzzParseAuthorizer":          420000, // 20877
	"msgr/cephx.FuzzAuthorizerClientPayloads": 240000, // 11869
	"rdmastack.FuzzParseExt":                  170000, // 8669
	"rdmastack.FuzzParseMeta":                 260000, // 13201
}

// defaultBudget is for a target not measured yet (listed above by nobody):
// the smallest measured budget, so a new target costs no more than the
// cheapest known one until someone measures it.
const defaultBudget = 170000

// FuzzTime is the -fuzztime value for target name of p: override when set
// (FUZZTIME; a count "5000x" keeps the guarantee above, a duration does
// not), else the target's budget.
func FuzzTime(p Package, name, override string) (value string, known bool) {
	if override != "" {
		return override, true
	}
	n, ok := budgets[p.Rel()+"."+name]
	if !ok {
		n = defaultBudget
	}
	return fmt.Sprintf("%dx", n), ok
}

// Fuzz runs every fuzz target of pkgs once with its budget, RDMA packages
// included (their decoders need no device). It returns the targets that
// passed and the names of those that failed, and prints the output of a
// failure (whose failing input go test wrote under testdata/fuzz).
func Fuzz(w io.Writer, pkgs []Package, override string) (passed int, failed []string) {
	for _, p := range pkgs {
		targets, err := FuzzTargets(p)
		if err != nil {
			fmt.Fprintf(w, "fuzz %s: listing targets: %v\n", p.Rel(), err)
			failed = append(failed, p.Rel()+" (fuzz targets)")
			continue
		}
		for _, name := range targets {
			ft, known := FuzzTime(p, name, override)
			if !known {
				fmt.Fprintf(w, "fuzz %s %s: no budget measured (internal/testrun budgets), using %s\n", p.Rel(), name, ft)
			}
			out, err := exec.Command("go", "test", "-run=^$", "-fuzz=^"+name+"$", "-fuzztime="+ft, p.ImportPath).CombinedOutput()
			if err != nil {
				fmt.Fprintf(w, "%s\nfuzz %s %s (%s): FAILED: %v\n", tail(string(out), 30), p.Rel(), name, ft, err)
				failed = append(failed, p.Rel()+"."+name)
				continue
			}
			fmt.Fprintf(w, "fuzz %s %s (%s): ok\n", p.Rel(), name, ft)
			passed++
		}
	}
	return passed, failed
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
