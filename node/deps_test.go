package node

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestCoreDependencies: the node core is a state machine over messages
// and CIDs. It depends on the round's spec, the wire messages and the CID
// rule of this module, and on go-cid beside the standard library; the
// models, checkpoints (node/engine) and the network (node/daemon) stay
// out of it. The spec checks codec and aggregation-rule specs with the
// grammar of the packages that implement them (one source), so those two
// pure packages and the tensor kernels they stand on come along, unused
// by the core.
func TestCoreDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not available")
	}
	const module = "github.com/shoal-network/shoal/"
	allowed := []string{module + "tracker/round", module + "tracker/wire", module + "checkpoint/content"}
	grammar := []string{module + "gradient/codec", module + "gradient/aggregate", module + "tensor"}
	out, err := exec.Command("go", "list", "-f", `{{join .Deps "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, module) && !slices.Contains(allowed, d) && !slices.ContainsFunc(grammar, func(g string) bool { return d == g || strings.HasPrefix(d, g+"/") }) {
			t.Errorf("the node core depends on %s (allowed in this module: %v)", d, allowed)
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.Contains(d, ".") && !strings.HasPrefix(d, module) && d != "github.com/ipfs/go-cid" {
			t.Errorf("the node core imports %s", d)
		}
		if d == "math/rand" || d == "math/rand/v2" || d == "sync" || d == "os" || d == "net" {
			t.Errorf("the node core imports %s: it holds no randomness, locks, files or sockets", d)
		}
	}
}
