package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Environment describes the measuring machine and dev in "name: value"
// lines: kernel, CPUs, memory, clock source, device, tool versions, cgroup
// CPU limit, hypervisor.
func Environment(dev Device) []string {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	run := func(name string, args ...string) string {
		b, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return l
	}
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	meminfo, _ := os.ReadFile("/proc/meminfo")
	netdev := read(filepath.Join("/sys/class/infiniband", dev.Name, "ports/1/gid_attrs/ndevs", strconv.Itoa(dev.GIDIndex)))
	hyper := "no"
	if bytes.Contains(cpuinfo, []byte(" hypervisor")) {
		hyper = "yes"
	}
	env := []string{
		"kernel: " + read("/proc/sys/kernel/osrelease"),
		fmt.Sprintf("cpus: %d (%s)", runtime.NumCPU(), field(cpuinfo, "model name")),
		"memory: " + memMiB(field(meminfo, "MemTotal")),
		"clocksource: " + read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
		fmt.Sprintf("device: %s (%s), gid index %d, %s", dev.Name, netdev, dev.GIDIndex, run("rdma", "link", "show", dev.Name+"/1")),
		"perftest: " + run("dpkg-query", "-W", "-f=${Version}", "perftest") + ", rdma-core: " + run("dpkg-query", "-W", "-f=${Version}", "rdma-core"),
		"go: " + runtime.Version(),
		"hypervisor: " + hyper,
	}
	if m := read("/sys/fs/cgroup/cpu.max"); m != "?" {
		env = append(env, "cpu.max: "+m)
	}
	return env
}

// field is the value of the first "name : value" line of a /proc file.
func field(b []byte, name string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// memMiB turns meminfo's "4007452 kB" into "3913 MiB".
func memMiB(v string) string {
	kb, err := strconv.Atoi(strings.TrimSuffix(v, " kB"))
	if err != nil {
		return v
	}
	return fmt.Sprintf("%d MiB", kb/1024)
}
