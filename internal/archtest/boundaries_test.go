package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// boundary forbids the direct imports of one package (not its
// sub-packages) that match a prefix in deny; with pure set, its non-test
// files may also start no goroutine and read no clock: the protocol's
// state machines take time and randomness as inputs, so that every driver
// (the daemon, the simulator, the tests) runs the same code
// deterministically.
type boundary struct {
	pkg  string
	deny []string
	pure bool
}

// machine is what a pure state machine may not import: the operating
// system, the network, global randomness, locks, and the packages that
// own goroutines, sockets or disks.
var machine = []string{"os", "net", "math/rand", "sync", "syscall", "go.etcd.io/bbolt", "github.com/libp2p/",
	module + "/p2p", module + "/node/daemon", module + "/simulations", module + "/tracker/boltstore", module + "/tracker/dashboard"}

var boundaries = []boundary{
	{pkg: module + "/node", deny: append([]string{module + "/tracker"}, machine...), pure: true},
	{pkg: module + "/tracker", deny: machine, pure: true},
	{pkg: module + "/tracker/round", deny: []string{module + "/tracker", module + "/tracker/boltstore", "go.etcd.io/bbolt", module + "/node", module + "/p2p"}},
	{pkg: module + "/tracker/wire", deny: []string{module + "/tracker", module + "/tracker/boltstore", "go.etcd.io/bbolt", module + "/node", module + "/p2p"}},
	{pkg: module + "/checkpoint/content", deny: []string{module + "/p2p", "github.com/libp2p/", module + "/tracker", module + "/node"}},
	{pkg: module + "/p2p", deny: []string{module + "/tracker", module + "/node", module + "/simulations", module + "/gradient"}},
	{pkg: module + "/simulations/engine", deny: []string{module + "/p2p", "github.com/libp2p/", module + "/node/daemon"}},
	{pkg: module + "/p2p/blob", deny: []string{module + "/tracker", module + "/node", module + "/simulations", module + "/gradient"}},
}

// clock lists the functions of package time that read or wait on the
// machine's clock.
var clock = map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
	"Tick": true, "NewTimer": true, "NewTicker": true}

// matches reports whether an import path is pre or lies below it.
func matches(path, pre string) bool {
	pre = strings.TrimSuffix(pre, "/")
	return path == pre || strings.HasPrefix(path, pre+"/")
}

func TestBoundaries(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not available")
	}
	for _, b := range boundaries {
		ps := goList(t, b.pkg)
		if len(ps) != 1 {
			t.Fatalf("go list %s: %d packages", b.pkg, len(ps))
		}
		for _, imp := range ps[0].Imports {
			for _, d := range b.deny {
				// The coordinator's own name is a prefix of its
				// sub-packages: deny it exactly.
				if imp == d || (d != module+"/tracker" && matches(imp, d)) {
					t.Errorf("%s imports %s, which its boundary forbids", b.pkg, imp)
				}
			}
		}
		if b.pure {
			checkPure(t, b.pkg)
		}
	}
}

// checkPure parses a package's non-test files and reports go statements
// and calls of the clock.
func checkPure(t *testing.T, pkg string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	dir := strings.TrimSpace(string(out))
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		timeName := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"time"` {
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: a state machine starts a goroutine", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && timeName != "" && x.Name == timeName && clock[n.Sel.Name] {
					t.Errorf("%s: a state machine reads the clock (time.%s): time is an input", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
}
