package testrun

import (
	"slices"
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
