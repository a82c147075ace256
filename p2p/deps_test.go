package p2p

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package independent of the training protocol:
// nothing under p2p may import node, tracker, gradient or simulations.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/shoal-network/shoal/"
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"node", "tracker", "gradient", "simulations"} {
			if pkg == mod+banned || strings.HasPrefix(pkg, mod+banned+"/") {
				t.Errorf("p2p depends on %s", pkg)
			}
		}
	}
}
