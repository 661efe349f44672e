// Command run is `make test`: the host half (vet, cgo-free build, -race
// tests, fuzzers) and the RDMA half (test binaries on rxe, in one two-host
// Soft-RoCE VM boot when the host has no device), counted from test2json
// events. Run from the repository root:
//
//	go run ./tests/run [all|host|rdma]
//
// Environment: CI (a skip is a failure), FUZZTIME (one -fuzztime for every
// fuzz target instead of the measured budgets, e.g. 1000x), RDMA_TEST_RACE=1
// (RDMA binaries with -race), RDMA_TEST_ARGS (extra flags for them, e.g.
// "-test.run TestX"), TESTRUN_PKGS (a regexp on package paths relative to
// the module, e.g. "^(verbs|mempool)$": run only those). The last line is "total: N passed, N failed, N
// skipped"; the exit status is 0 only when nothing failed.
//
// "run rdma-inner DIR" is what the VM runs: the binaries planned in DIR.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/asyncmsgr/asyncmsgr/internal/testrun"
)

func main() {
	mode := "all"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	o := testrun.Options{
		Out:      os.Stdout,
		BuildDir: ".build",
		CI:       os.Getenv("CI") != "",
		FuzzTime: os.Getenv("FUZZTIME"),
		RDMARace: os.Getenv("RDMA_TEST_RACE") != "",
		RDMAArgs: strings.Fields(os.Getenv("RDMA_TEST_ARGS")),
	}
	if mode == "rdma-inner" && len(os.Args) == 3 {
		if !testrun.Inner(o, os.Args[2]) {
			os.Exit(1)
		}
		return
	}
	if mode != "all" && mode != "host" && mode != "rdma" {
		fmt.Fprintln(os.Stderr, "usage: go run ./tests/run [all|host|rdma]")
		os.Exit(2)
	}
	self, err := os.Executable()
	if err == nil {
		err = os.MkdirAll(o.BuildDir, 0o755)
	}
	pkgs, lerr := testrun.ListPackages(os.Getenv("TESTRUN_PKGS"))
	if err != nil || lerr != nil {
		fmt.Fprintln(os.Stderr, "run:", err, lerr)
		os.Exit(1)
	}
	var total testrun.Counts
	var lines []string
	if mode != "rdma" {
		h := testrun.Host(o, pkgs)
		fmt.Println(h.Line("host"))
		total.Add(h.Counts)
		lines = append(lines, h.Line("host"))
	}
	if mode != "host" {
		c, suite := testrun.Container(o, pkgs)
		o.ContainerSuite = suite
		if c.Passed+len(c.Failed) > 0 {
			fmt.Println(c.Line("container (host)"))
			total.Add(c.Counts)
			lines = append(lines, c.Line("container (host)"))
		}
		r := testrun.RDMA(o, pkgs, self, filepath.Join("soft-roce", "vm-run.sh"))
		fmt.Println(r.Line("rdma"))
		total.Add(r.Counts)
		lines = append(lines, r.Line("rdma (rxe)"))
	}
	if len(total.Failed) > 0 {
		fmt.Println("failed:", strings.Join(total.Failed, " "))
	}
	if len(lines) > 1 {
		fmt.Println(strings.Join(lines, "; "))
	}
	fmt.Println("total: " + total.String())
	if len(total.Failed) > 0 {
		os.Exit(1)
	}
}
