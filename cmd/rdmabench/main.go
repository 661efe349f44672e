package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmabench/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// envInt is the integer in environment variable k, or def.
func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// command is how the user started the run, as the report shows it.
func command(target string, vars ...string) string {
	var b strings.Builder
	for _, k := range vars {
		if v := os.Getenv(k); v != "" {
			if strings.ContainsAny(v, " \t'\"$") {
				v = strconv.Quote(v)
			}
			fmt.Fprintf(&b, "%s=%s ", k, v)
		}
	}
	return b.String() + "make " + target
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: rdmabench bench|demo|run|report [flags] (see go doc ./cmd/rdmabench)")
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("rdmabench "+sub, flag.ContinueOnError)
	def := bench.DefaultSizes
	plan, out, reps, iters := sub, ".build/bench", envInt("BENCH_REPS", bench.FinalReps), 0
	if sub == "demo" {
		out, reps, iters = ".build/demo", envInt("DEMO_REPS", 3), envInt("DEMO_ITERS", 1000)
	}
	if os.Getenv("BENCH_QUICK") != "" {
		def = bench.QuickSizes
	}
	fs.StringVar(&plan, "plan", plan, "run: bench or demo")
	fs.StringVar(&out, "out", envStr("BENCH_OUT", out), "results directory")
	md := fs.String("md", envStr("BENCH_MD", "BENCHMARKS.md"), "report: the markdown file to rewrite (its generated section)")
	rp := fs.String("rdmaperf", ".build/rdmaperf", "the rdmaperf binary")
	repo := fs.String("repo", ".", "the repository (for soft-roce/vm-run.sh and the revision)")
	fs.IntVar(&reps, "reps", reps, "repetitions of each ratio point")
	fs.IntVar(&iters, "iters", iters, "demo: iterations per latency run")
	sizes := fs.String("sizes", envStr("BENCH_SIZES", strings.Trim(fmt.Sprint(def), "[]")), "bench: the curve's sizes")
	match := fs.String("match", "", `bench, run: only the runs whose "series test size" matches this regexp`)
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") != "", "bench: sizes "+strings.Trim(fmt.Sprint(bench.QuickSizes), "[]"))
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	sz, err := bench.ParseSizes(*sizes)
	if err == nil && *quick && os.Getenv("BENCH_SIZES") == "" {
		sz = bench.QuickSizes
	}
	if err != nil || reps < 1 {
		fmt.Fprintf(os.Stderr, "rdmabench: bad -sizes or -reps: %v\n", err)
		return 2
	}
	for _, p := range []*string{&out, rp, repo, md} {
		*p, _ = filepath.Abs(*p)
	}
	o := bench.Options{Plan: plan, Out: out, Rdmaperf: *rp, Reps: reps, Iters: iters, Sizes: sz, Quick: *quick, Match: *match, Log: os.Stderr}
	runArgs := []string{"-plan", sub, "-out", out, "-rdmaperf", *rp, "-reps", strconv.Itoa(reps), "-iters", strconv.Itoa(iters), "-sizes", strings.Trim(fmt.Sprint(sz), "[]"), "-match", *match}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "rdmabench %s: %v\n", sub, err)
		return 1
	}
	switch sub {
	case "run":
		if err := bench.Measure(ctx, o); err != nil {
			return fail(err)
		}
	case "report":
		if err := bench.WriteReport(out, *md, os.Stderr); err != nil {
			return fail(err)
		}
	case "bench":
		o.Command = command("bench", "BENCH_REPS", "BENCH_SIZES", "BENCH_QUICK")
		if _, err := bench.Drive(ctx, o, *repo, runArgs); err != nil {
			return fail(err)
		}
		if err := bench.WriteReport(out, *md, os.Stderr); err != nil {
			return fail(err)
		}
	case "demo":
		o.Command = command("demo", "DEMO_REPS", "DEMO_ITERS")
		if _, err := bench.Drive(ctx, o, *repo, runArgs); err != nil {
			return fail(err)
		}
		rs, _, err := bench.LoadResults(out)
		if err != nil {
			return fail(err)
		}
		if !bench.WriteDemo(os.Stdout, rs, reps) {
			return 1
		}
	default:
		fmt.Fprintf(os.Stderr, "rdmabench: unknown subcommand %q (bench, demo, run, report)\n", sub)
		return 2
	}
	return 0
}
