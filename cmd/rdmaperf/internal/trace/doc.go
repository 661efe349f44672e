// Package trace collects rdmaperf --trace's kernel-side counters: the
// doorbells this process rings (uverbs post commands the kernel receives,
// counted by an eBPF kprobe on ib_uverbs_post_send into an array map; the
// program is written with cilium/ebpf's asm package, so no compiler is
// needed at run time) and the device's hw_counters from sysfs (packets,
// retransmits, errors). It must not change what is measured: it only reads
// counters before and after a run.
package trace
