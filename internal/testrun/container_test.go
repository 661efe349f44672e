package testrun

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asyncmsgr/asyncmsgr/tests/container"
)

func TestContainerPlan(t *testing.T) {
	b := Binary{Args: make([]string, 1, 8), Env: []string{"X=1"}}
	b.Args[0] = "-test.v=test2json"
	if got := containerPlan(Options{}, "tests/rdmasuite", b); len(got.Args) != 1 {
		t.Fatalf("without the image the plan is unchanged: %q", got.Args)
	}
	o := Options{ContainerSuite: "/b/rdmasuite.test"}
	suite := containerPlan(o, "tests/rdmasuite", b)
	if !slices.Contains(suite.Args, "-test.skip="+container.SuiteTests) {
		t.Fatalf("rdmasuite's first pass keeps the container's tests: %q", suite.Args)
	}
	c := containerPlan(o, containerPkg, b)
	if !slices.Contains(c.Args, "-test.skip=^TestHelpWithoutDevice$") ||
		!slices.Contains(c.Env, "ASYNCMSGR_CONTAINER_SUITE=/b/rdmasuite.test") {
		t.Fatalf("tests/container: %q %q", c.Args, c.Env)
	}
	// The worker pass is copied from b after the plan took its adapted copy.
	if len(b.Args) != 1 || b.Args[:2][1] != "" || len(b.Env) != 1 {
		t.Fatalf("b changed: %q %q", b.Args, b.Env)
	}
	if got := containerPlan(o, "verbs", b); len(got.Args) != 1 {
		t.Fatalf("other packages unchanged: %q", got.Args)
	}
}

// UseContainer adapts a plan that has the container tests before the image
// exists, and makes them wait in the guest for it; a plan without them is
// left alone. Inner does not run a binary whose image failed, and counts it.
func TestUseContainerWaitsForImage(t *testing.T) {
	suite := Binary{Name: "rdmasuite.test", File: "rdmasuite.test", Pkg: Module + "/tests/rdmasuite"}
	ctr := Binary{Name: "container.test", File: "container.test", Pkg: Module + "/" + containerPkg}
	second := suite
	second.Name, second.Pkg = "rdmasuite.test.dispatcher", suite.Pkg+" [dispatcher]"

	alone := Plan{Dir: t.TempDir(), Binaries: []Binary{suite, second}}
	alone.UseContainer(Options{})
	if len(alone.Binaries[0].Args) != 0 {
		t.Fatalf("no container tests, yet rdmasuite adapted: %q", alone.Binaries[0].Args)
	}

	pl := Plan{Dir: t.TempDir(), Binaries: []Binary{suite, second, ctr}}
	pl.UseContainer(Options{})
	if !slices.Contains(pl.Binaries[0].Args, "-test.skip="+container.SuiteTests) || len(pl.Binaries[1].Args) != 0 {
		t.Fatalf("rdmasuite passes: %q / %q", pl.Binaries[0].Args, pl.Binaries[1].Args)
	}
	if pl.Binaries[2].WaitFor != imageFile {
		t.Fatalf("container tests wait for %q", pl.Binaries[2].WaitFor)
	}
	// Without the suite in the plan the container tests still wait.
	only := Plan{Dir: t.TempDir(), Binaries: []Binary{ctr}}
	only.UseContainer(Options{})
	if only.Binaries[0].WaitFor != imageFile || len(only.Binaries[0].Env) != 0 {
		t.Fatalf("container tests alone: %+v", only.Binaries[0])
	}
	// The image failed: the guest does not run the container tests (an
	// old image would pass them) and their run fails.
	pl.Binaries = pl.Binaries[2:]
	if err := writeJSON(filepath.Join(pl.Dir, planFile), pl.Binaries); err != nil {
		t.Fatal(err)
	}
	pl.ImageBuilt(false)
	var out strings.Builder
	if Inner(Options{Out: &out}, pl.Dir) {
		t.Fatalf("Inner passed without the image: %s", out.String())
	}
	rc, err := os.ReadFile(filepath.Join(pl.Dir, "container.test.rc"))
	if err != nil || strings.TrimSpace(string(rc)) != "1" || !strings.Contains(out.String(), "not run") {
		t.Fatalf("rc %q %v, report %q", rc, err, out.String())
	}
}
