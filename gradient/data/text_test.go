package data

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeTree creates the files (slash-separated relative path -> contents)
// under a new temporary directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, body := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// invalidUTF8 is text that is mostly not UTF-8 (Latin-1 high bytes) and
// has no NUL.
var invalidUTF8 = strings.Repeat("\xe9\xe8\xff\xfe text ", 50)

func TestLoadTextDir(t *testing.T) {
	root := writeTree(t, map[string]string{
		"b.txt":             "bee",
		"a.txt":             "aye\n",
		"a/x.txt":           "ex\nwhy",
		"a/deep/z.md":       "zed\n\n",
		"a/empty.txt":       "",
		"c/unicode.txt":     "héllo wörld ✓",
		".hidden.txt":       "hidden file",
		".git/config":       "hidden dir",
		"a/.cache/inner.go": "hidden nested dir",
		"img.png":           "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
		"a/latin.bin":       invalidUTF8,
	})
	c, err := LoadText(root)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by slash path: "a.txt" < "a/deep/z.md" < "a/x.txt" < "b.txt"
	// < "c/unicode.txt" ('.' sorts before '/').
	want := "aye\n" + "zed\n\n" + "ex\nwhy\n" + "bee\n" + "héllo wörld ✓\n"
	if got := string(c.Bytes); got != want {
		t.Errorf("Bytes = %q, want %q", got, want)
	}
	if c.Files != 5 || c.Skipped != 2 || c.Name != root {
		t.Errorf("Files, Skipped, Name = %d, %d, %q; want 5, 2, %q", c.Files, c.Skipped, c.Name, root)
	}

	// A path with a trailing separator and a symbolic link to the root
	// load the same text.
	for _, p := range []string{root + string(filepath.Separator), linkTo(t, root)} {
		if p == "" {
			continue
		}
		c2, err := LoadText(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c2.Bytes, c.Bytes) {
			t.Errorf("LoadText(%q) = %q, want %q", p, c2.Bytes, c.Bytes)
		}
	}
}

// linkTo returns a symbolic link to target, or "" where links are not
// supported.
func linkTo(t *testing.T, target string) string {
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		return ""
	}
	return link
}

func TestLoadTextFile(t *testing.T) {
	tests := []struct{ body, want string }{
		{"one line", "one line\n"},
		{"two\nlines\n", "two\nlines\n"},
		{"\n", "\n"},
		{"tab\tand ünïcode", "tab\tand ünïcode\n"},
	}
	for _, tt := range tests {
		root := writeTree(t, map[string]string{"f.txt": tt.body})
		p := filepath.Join(root, "f.txt")
		c, err := LoadText(p)
		if err != nil {
			t.Fatalf("LoadText(%q) with %q: %v", p, tt.body, err)
		}
		if string(c.Bytes) != tt.want || c.Files != 1 || c.Skipped != 0 {
			t.Errorf("LoadText with %q = %q (files %d, skipped %d), want %q", tt.body, c.Bytes, c.Files, c.Skipped, tt.want)
		}
	}
}

func TestLoadTextErrors(t *testing.T) {
	root := writeTree(t, map[string]string{
		"bin/a.png":      "\x00\x01\x02",
		"bin/b.dat":      invalidUTF8,
		"bin/.hidden.md": "hidden text does not count",
		"empty.txt":      "",
		"pic.png":        "\x89PNG\x00\x00",
		"big.txt":        strings.Repeat("x", 100),
		"bigdir/a.txt":   strings.Repeat("y", 60),
		"bigdir/b.txt":   strings.Repeat("z", 60),
	})
	if err := os.Mkdir(filepath.Join(root, "void"), 0o755); err != nil {
		t.Fatal(err)
	}
	j := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	tests := []struct {
		name  string
		path  string
		limit int64
		want  string
		is    error
	}{
		{"missing", j("no/such/file"), 0, "data: open " + j("no/such/file") + ": no such file or directory", fs.ErrNotExist},
		{"empty dir", j("void"), 0, "data: " + j("void") + ": no text files found (0 binary files skipped)", nil},
		{"only binary", j("bin"), 0, "data: " + j("bin") + ": no text files found (2 binary files skipped)", nil},
		{"binary file", j("pic.png"), 0, "data: " + j("pic.png") + ": binary file, not text", nil},
		{"empty file", j("empty.txt"), 0, "data: " + j("empty.txt") + ": empty file", nil},
		{"file over limit", j("big.txt"), 50, "data: " + j("big.txt") + ": corpus exceeds the size limit of 50 bytes", nil},
		{"newline over limit", j("big.txt"), 100, "data: " + j("big.txt") + ": corpus exceeds the size limit of 100 bytes", nil},
		{"dir over limit", j("bigdir"), 100, "data: " + j("bigdir/b.txt") + ": corpus exceeds the size limit of 100 bytes", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadTextLimit(tt.path, tt.limit)
			if err == nil {
				t.Fatalf("LoadTextLimit(%q, %d) = %d bytes, want error %q", tt.path, tt.limit, len(c.Bytes), tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
		})
	}
	// Within the limit, the same paths load.
	if c, err := LoadTextLimit(j("bigdir"), 122); err != nil || len(c.Bytes) != 122 {
		t.Errorf("LoadTextLimit(bigdir, 122) = %v, want 122 bytes", err)
	}
}

func TestIsBinary(t *testing.T) {
	long := strings.Repeat("é", sniffLen) // 2 bytes a rune: the sample ends mid-rune
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"ascii", "hello, world\n", false},
		{"utf8", "naïve façade — ✓ 日本語", false},
		{"nul", "text\x00more", true},
		{"late nul", strings.Repeat("a", sniffLen) + "\x00", false},
		{"latin1 heavy", invalidUTF8, true},
		{"latin1 light", "caf\xe9 " + strings.Repeat("plain ascii ", 10), false},
		{"cut rune at sample end", long, false},
		{"truncated rune at file end", strings.Repeat("abc ", 10) + "\xe2\x9c", false},
		{"random", "\xff\xfe\xfd\xfc\xfb\xfa\xf9", true},
	}
	for _, tt := range tests {
		if got := isBinary([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: isBinary = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLoadTextGoroot(t *testing.T) {
	dir := filepath.Join(runtime.GOROOT(), "src", "net", "http")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("Go source not available: %v", err)
	}
	c, err := LoadText(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Files < 50 || len(c.Bytes) < 1<<20 {
		t.Errorf("LoadText(%s): %d files, %d bytes; want many", dir, c.Files, len(c.Bytes))
	}
	if !bytes.Contains(c.Bytes, []byte("package http")) || c.Bytes[len(c.Bytes)-1] != '\n' {
		t.Errorf("LoadText(%s): unexpected content", dir)
	}
	t.Logf("%s: %d files, %d bytes, skipped %d binary files", dir, c.Files, len(c.Bytes), c.Skipped)
}

func TestSplit(t *testing.T) {
	lines := []byte(strings.Repeat("the quick brown fox\n", 1000)) // 20000 bytes
	flat := bytes.Repeat([]byte("x"), 10000)
	tests := []struct {
		name     string
		data     []byte
		frac     float64
		wantEval int
	}{
		{"zero", lines, 0, 0},
		{"all", lines, 1, len(lines)},
		{"tenth at line start", lines, 0.1, 2000},
		{"moved to line start", lines, 0.1003, 2000},
		{"moved forward", lines, 0.0999, 1980},
		{"no newline", flat, 0.25, 2500},
		{"tiny fraction", flat, 1e-9, 0},
		{"empty", nil, 0.5, 0},
	}
	for _, tt := range tests {
		c := &Corpus{Bytes: tt.data}
		train, eval := c.Split(tt.frac)
		if len(eval) != tt.wantEval {
			t.Errorf("%s: Split(%v) eval = %d bytes, want %d", tt.name, tt.frac, len(eval), tt.wantEval)
		}
		if !bytes.Equal(append(bytes.Clone(train), eval...), tt.data) {
			t.Errorf("%s: train+eval is not the corpus", tt.name)
		}
		if cap(train) != len(train) {
			t.Errorf("%s: train capacity %d exceeds its length %d", tt.name, cap(train), len(train))
		}
		train2, eval2 := c.Split(tt.frac)
		if len(train2) != len(train) || !bytes.Equal(eval2, eval) {
			t.Errorf("%s: Split is not deterministic", tt.name)
		}
	}
	// Near the end, a cut never moves to the very end.
	tail := []byte(strings.Repeat("y", 99) + "\n")
	if _, eval := (&Corpus{Bytes: tail}).Split(0.5); len(eval) != 50 {
		t.Errorf("Split at the last line: eval = %d bytes, want 50", len(eval))
	}
	for _, f := range []float64{-0.1, 1.5, math.NaN()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Split(%v) did not panic", f)
				}
			}()
			(&Corpus{Bytes: lines}).Split(f)
		}()
	}
}
