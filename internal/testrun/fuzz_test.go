package testrun

import (
	"testing"
)

// Every fuzz target of the module has a measured budget, and every budget
// names a target that exists: CI runs each target on its own budget.
func TestEveryFuzzTargetHasABudget(t *testing.T) {
	t.Chdir("../..") // the module root: ListPackages lists ./...
	pkgs, err := ListPackages("")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		names, err := FuzzTargets(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			seen[p.Rel()+"."+name] = true
			if _, known := FuzzTime(p, name, ""); !known {
				t.Errorf("fuzz target %s.%s has no budget in internal/testrun/fuzz.go: measure it as its comment says", p.Rel(), name)
			}
		}
	}
	for name := range budgets {
		if !seen[name] {
			t.Errorf("budget for %s, which is not a fuzz target of the module", name)
		}
	}
}
