package testrun

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/asyncmsgr/asyncmsgr/tests/container"
)

// containerPkg runs the image (issue: CI on rxe-enabled containers).
const containerPkg = "tests/container"

// Container is the host side of the container tests, when tests/container
// is among pkgs: it builds the image (soft-roce/container.sh build: podman,
// no registry), then runs tests/container's host test (rdmaperf --help in a
// container on a host without an RDMA device). ran is false when nothing
// ran; ok is false when the image did not build (then the VM's container
// tests fail by themselves).
func Container(o Options, pkgs []Package) (r Result, ran, ok bool) {
	var pkg *Package
	for i := range pkgs {
		if pkgs[i].Rel() == containerPkg {
			pkg = &pkgs[i]
		}
	}
	if pkg == nil {
		return r, false, false
	}
	start := time.Now()
	fmt.Fprintln(o.Out, "== soft-roce/container.sh build")
	cmd := exec.Command(filepath.Join("soft-roce", "container.sh"), "build")
	cmd.Stdout, cmd.Stderr = o.Out, o.Out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(o.Out, "container build: %v\n", err)
		r.Failed = append(r.Failed, "container (build)")
		return r, true, false
	}
	fmt.Fprintf(o.Out, "== go test -run TestHelpWithoutDevice %s (image built in %.0fs)\n", containerPkg, time.Since(start).Seconds())
	c, err := goTestJSON(o, filepath.Join(o.BuildDir, "container-test.json"),
		[]string{"test", "-json", "-count=1", "-run", "^TestHelpWithoutDevice$", pkg.ImportPath})
	if err != nil {
		fmt.Fprintf(o.Out, "container host test: %v\n", err)
		c.PackageFailed(pkg.ImportPath)
	}
	r.Add(c.Counts())
	ciRule(o, "container", &r.Counts)
	return r, true, true
}

// UseContainer adapts the plan's first passes to the container tests
// (containerPlan) when tests/container is in the plan, before the image is
// built: they run the plan's own rdmasuite binary in it, and the guest
// runs them once ImageBuilt says the image is there. The VM thus boots as
// soon as the binaries are built (on a machine without the cached bases
// the image takes minutes: two debootstraps, then podman build).
func (pl *Plan) UseContainer(o Options) {
	if !slices.ContainsFunc(pl.Binaries, func(b Binary) bool { return b.Pkg == Module+"/"+containerPkg }) {
		return
	}
	o.ContainerSuite = pl.Suite()
	for i, b := range pl.Binaries {
		if !strings.Contains(b.Pkg, " [") {
			pl.Binaries[i] = containerPlan(o, strings.TrimPrefix(b.Pkg, Module+"/"), b)
		}
	}
}

// ImageBuilt tells the guest (through imageFile in the plan's directory,
// which the VM shares) whether Container built the image.
func (pl Plan) ImageBuilt(ok bool) {
	if pl.Dir == "" || len(pl.Binaries) == 0 {
		return // nothing runs in the guest
	}
	v := "failed\n"
	if ok {
		v = "ok\n"
	}
	_ = os.WriteFile(filepath.Join(pl.Dir, imageFile), []byte(v), 0o644)
}

// containerPlan adapts b, the first RDMA pass of package rel, to the
// container tests when Container builds the image: tests/container waits
// for the image, leaves its host test (already run) out and gets the suite
// binary when the plan has one; rdmasuite's first pass then leaves the
// tests the container runs to it.
func containerPlan(o Options, rel string, b Binary) Binary {
	switch {
	case rel == containerPkg:
		b.Args = append(append([]string(nil), b.Args...), "-test.skip=^TestHelpWithoutDevice$")
		b.WaitFor = imageFile
		if o.ContainerSuite != "" {
			b.Env = append(append([]string(nil), b.Env...), "ASYNCMSGR_CONTAINER_SUITE="+o.ContainerSuite)
		}
	case rel == "tests/rdmasuite" && o.ContainerSuite != "":
		b.Args = append(append([]string(nil), b.Args...), "-test.skip="+container.SuiteTests)
	}
	return b
}
