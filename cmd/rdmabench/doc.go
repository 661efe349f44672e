// Command rdmabench is the benchmark driver behind `make bench` and `make
// demo`: it runs C perftest and rdmaperf side by side on one RDMA device
// (this host's, or rxe in the Soft-RoCE VM that it boots through
// soft-roce/vm-run.sh), then turns the results into BENCHMARKS.md and
// BENCHMARKS.png (bench) or a comparison table on the terminal (demo).
//
//	rdmabench bench [-reps N] [-sizes "2 4096"] [-quick]   # make bench
//	rdmabench demo [-reps N] [-iters N]                    # make demo
//	rdmabench run -plan bench|demo -out DIR ...            # on the device (in the VM)
//	rdmabench report -out DIR [-md BENCHMARKS.md]          # re-render from DIR
//	rdmabench bench -match 'msgr-rdma msgr_lat 2$'         # a developer's partial run
//
// Everything it knows lives in internal/bench; this package only parses
// flags and wires the phases. It must not measure anything itself.
package main
