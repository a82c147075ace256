package vec

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the package's import boundary: the standard library,
// f32 and cpu only, in every build's files.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/shoal-network/shoal/tensor/internal/f32": true,
		"github.com/shoal-network/shoal/tensor/internal/cpu": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.Split(path, "/")[0], ".")
			if path == "C" || (!std && !allowed[path]) {
				t.Errorf("%s imports %q", name, path)
			}
		}
	}
}
