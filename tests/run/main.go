// Command run is `make test`: the host half (vet, cgo-free build, -race
// tests, fuzzers) and the RDMA half (test binaries on rxe, in one two-host
// Soft-RoCE VM boot when the host has no device), counted from test2json
// events. Run from the repository root:
//
//	go run ./tests/run [all|host|rdma]
//
// "all" first builds the RDMA test binaries (one go test -c) while podman
// builds the container image, then boots the VM (whose container tests
// wait for the image) and runs the host half beside it: the VM's guest
// waits on timers and its emulated wire much of the time, and the fuzzers
// fill those gaps, so the two halves together take about as long as the
// VM alone. The VM's console goes to
// .build/rdmatests/console.log and is printed after the host half.
//
// Environment: CI (a skip is a failure), FUZZTIME (one -fuzztime for every
// fuzz target instead of the measured budgets, e.g. 1000x), RDMA_TEST_RACE=1
// (RDMA binaries with -race), RDMA_TEST_ARGS (extra flags for them, e.g.
// "-test.run TestX"), TESTRUN_PKGS (a regexp on package paths relative to
// the module, e.g. "^(verbs|mempool)$": run only those), TESTRUN_SERIAL=1
// (the halves one after the other). The last line is "total: N passed, N
// failed, N skipped"; the exit status is 0 only when nothing failed.
//
// "run rdma-inner DIR" is what the VM runs: the binaries planned in DIR.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

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
	begin := time.Now()
	var total testrun.Counts
	var lines []string
	add := func(name string, r testrun.Result) {
		fmt.Println(r.Line(name))
		total.Add(r.Counts)
		lines = append(lines, r.Line(name))
	}
	host := func() {
		start := time.Now()
		add("host", testrun.Host(o, pkgs))
		fmt.Printf("host half took %.0fs\n", time.Since(start).Seconds())
	}
	if mode == "host" {
		host()
	} else {
		// The RDMA binaries compile while podman builds the image (which
		// waits on the network and disk much of the time); the VM boots
		// once the binaries are built, and its container tests, run last,
		// wait there for the image (testrun.Plan.ImageBuilt).
		start := time.Now()
		var c testrun.Result
		var ran bool
		var cout bytes.Buffer
		co := o
		co.Out = &cout
		built := make(chan struct{})
		imaged := make(chan struct{})
		var pl testrun.Plan
		go func() {
			var ok bool
			c, ran, ok = testrun.Container(co, pkgs)
			<-built
			pl.ImageBuilt(ok)
			close(imaged)
		}()
		pl = testrun.BuildRDMA(o, pkgs)
		pl.UseContainer(o)
		close(built)
		fmt.Printf("build (rdma binaries) took %.0fs; the image builds beside the VM\n", time.Since(start).Seconds())
		image := func() {
			<-imaged
			os.Stdout.Write(cout.Bytes())
			if ran {
				add("container (host)", c)
			}
		}

		var console io.Writer = os.Stdout
		var report bytes.Buffer
		vo := o
		serial := mode == "rdma" || os.Getenv("TESTRUN_SERIAL") != ""
		if !serial {
			f, err := os.Create(filepath.Join(pl.Dir, "console.log"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "run:", err)
				os.Exit(1)
			}
			defer f.Close()
			console, vo.Out = f, &report
		}
		var r testrun.Result
		var vmTook time.Duration
		vm := func() {
			start := time.Now()
			r = testrun.RunRDMA(vo, pl, self, filepath.Join("soft-roce", "vm-run.sh"), console)
			vmTook = time.Since(start)
		}
		if serial {
			if mode == "all" {
				host()
			}
			vm()
			image()
		} else {
			fmt.Println("== rdma half in the VM, beside the host half (console: .build/rdmatests/console.log)")
			var wg sync.WaitGroup
			wg.Go(vm)
			host()
			image()
			wg.Wait()
			if b, err := os.ReadFile(filepath.Join(pl.Dir, "console.log")); err == nil {
				os.Stdout.Write(b)
			}
			os.Stdout.Write(report.Bytes())
		}
		add("rdma (rxe)", r)
		fmt.Printf("rdma half took %.0fs\n", vmTook.Seconds())
	}
	if len(total.Failed) > 0 {
		fmt.Println("failed:", strings.Join(total.Failed, " "))
	}
	if len(lines) > 1 {
		fmt.Println(strings.Join(lines, "; "))
	}
	fmt.Printf("took %.0fs\n", time.Since(begin).Seconds())
	fmt.Println("total: " + total.String())
	if len(total.Failed) > 0 {
		os.Exit(1)
	}
}
