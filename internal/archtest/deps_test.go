package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/shoal-network/shoal"

// rule restricts the dependencies of the packages under a prefix. Every
// package of this module they depend on, directly or not, and every
// third-party package they import directly, must match a prefix in allow
// (nil: anything); no dependency at all, standard library included, may
// match deny.
type rule struct {
	pkg   string
	allow []string
	deny  []string
}

const cid = "github.com/ipfs/go-cid"

var rules = []rule{
	{pkg: module + "/checkpoint/content", allow: []string{cid, "github.com/multiformats/go-multihash"}},
	{pkg: module + "/tensor", allow: []string{module + "/tensor"}},
	{pkg: module + "/gradient", allow: []string{module + "/tensor", module + "/gradient", module + "/checkpoint/content", cid, "github.com/multiformats/go-multihash"}},
	{pkg: module + "/checkpoint", allow: []string{module + "/tensor", module + "/checkpoint", cid, "github.com/multiformats/go-multihash"}},
	// tracker/group runs the tracker as a raft group: etcd's raft and
	// the protobuf its messages are.
	{pkg: module + "/tracker", allow: []string{module + "/tracker", module + "/checkpoint/content", module + "/gradient/codec", module + "/gradient/aggregate", module + "/tensor", cid, "github.com/multiformats/go-multihash", "gopkg.in/yaml.v3", "go.etcd.io/bbolt",
		"go.etcd.io/raft/v3", "google.golang.org/protobuf"}},
	{pkg: module + "/node", deny: []string{module + "/p2p", "github.com/libp2p/", "net"}},
	{pkg: module + "/simulations", deny: []string{module + "/p2p"}},
}

type listed struct {
	ImportPath string
	Deps       []string
	Imports    []string
}

func goList(t *testing.T, pattern string) []listed {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps,Imports", pattern).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestDependencyDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not available")
	}
	std := map[string]bool{}
	for _, p := range goList(t, "std") {
		std[p.ImportPath] = true
	}
	for _, r := range rules {
		for _, p := range goList(t, r.pkg+"/...") {
			// The simulator's sub-packages may drive the real stack, and
			// the node core's sub-packages (the daemon) run it over p2p.
			subSim := (r.pkg == module+"/simulations" || r.pkg == module+"/node") && p.ImportPath != r.pkg
			for _, d := range p.Deps {
				for _, bad := range r.deny {
					if !subSim && (d == bad || strings.HasPrefix(d, strings.TrimSuffix(bad, "/")+"/")) {
						t.Errorf("%s depends on %s, which its layer must not use", p.ImportPath, d)
					}
				}
			}
			if r.allow == nil {
				continue
			}
			check := func(d string) {
				for _, a := range r.allow {
					if d == a || strings.HasPrefix(d, a+"/") {
						return
					}
				}
				t.Errorf("%s depends on %s, outside its layer (allowed: %v)", p.ImportPath, d, r.allow)
			}
			for _, d := range p.Deps {
				if strings.HasPrefix(d, module+"/") {
					check(d)
				}
			}
			for _, d := range p.Imports {
				if !std[d] && !strings.HasPrefix(d, module+"/") {
					check(d)
				}
			}
		}
	}
}
