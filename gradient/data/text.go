package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxTextBytes is the size limit LoadText applies to a corpus (1 GiB),
// counted after document separators are added.
const MaxTextBytes int64 = 1 << 30

// sniffLen is how much of a file is inspected to decide whether it is text.
const sniffLen = 8 << 10

// BoundaryWindow is how far past a target offset Corpus.Split and
// MakeShards look for the start of a line before cutting at the exact
// offset instead.
const BoundaryWindow = 4 << 10

// Corpus is the text loaded by LoadText.
type Corpus struct {
	// Name is the path the corpus was loaded from, as given.
	Name string
	// Bytes is the concatenation of the text files, each followed by '\n'
	// unless it already ended with one.
	Bytes []byte
	// Files is the number of text files in Bytes.
	Files int
	// Skipped is the number of binary files left out of a directory.
	Skipped int
}

// LoadText loads a text corpus from path with the default size limit
// MaxTextBytes. See LoadTextLimit.
func LoadText(path string) (*Corpus, error) {
	return LoadTextLimit(path, MaxTextBytes)
}

// LoadTextLimit loads a text corpus from path, which is either a single file
// or a directory. A directory is walked recursively and its regular files
// (and symbolic links to regular files) are read in sorted order of their
// slash-separated path relative to the directory. Entries whose name starts
// with '.' are skipped (directories with their contents), as are empty files
// and binary files; the number of binary files skipped is recorded in
// Corpus.Skipped. A file is binary if its first 8 KiB contain a NUL byte or
// more than a tenth of them are not valid UTF-8.
//
// Each file's bytes are appended to the corpus followed by '\n' unless they
// already end with one, so every document ends at a line boundary.
//
// The corpus may hold at most limit bytes (limit <= 0 means MaxTextBytes).
// Errors name the offending path: a missing path, a directory holding no
// text file, a path that is a single binary or empty file, or a corpus
// beyond the limit.
func LoadTextLimit(path string, limit int64) (*Corpus, error) {
	if limit <= 0 {
		limit = MaxTextBytes
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data: %w", err)
	}
	if !fi.IsDir() {
		defer f.Close()
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("data: %s: not a regular file or directory", path)
		}
		b, err := readLimited(f, path, fi.Size(), limit, limit)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("data: %s: empty file", path)
		}
		if isBinary(b) {
			return nil, fmt.Errorf("data: %s: binary file, not text", path)
		}
		out := appendDocument(make([]byte, 0, len(b)+1), b)
		if int64(len(out)) > limit {
			return nil, tooLarge(path, limit)
		}
		return &Corpus{Name: path, Bytes: out, Files: 1}, nil
	}
	f.Close()
	return loadDir(path, limit)
}

type textEntry struct {
	rel  string
	size int64
}

func loadDir(root string, limit int64) (*Corpus, error) {
	fsys := os.DirFS(root)
	var entries []textEntry
	err := fs.WalkDir(fsys, ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		var info fs.FileInfo
		if d.Type()&fs.ModeSymlink != 0 {
			// Follow links to files, never to directories (no cycles).
			// A dangling link is not a text file.
			info, err = fs.Stat(fsys, rel)
			if err != nil {
				return nil
			}
		} else {
			info, err = d.Info()
			if err != nil {
				return err
			}
		}
		if !info.Mode().IsRegular() || info.Size() == 0 {
			return nil
		}
		entries = append(entries, textEntry{rel: rel, size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("data: %w", rootedError(root, err))
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })

	var hint int64
	for _, e := range entries {
		hint += e.size + 1
	}
	c := &Corpus{Name: root, Bytes: make([]byte, 0, min(hint, limit))}
	for _, e := range entries {
		full := filepath.Join(root, filepath.FromSlash(e.rel))
		b, err := readFile(full, e.size, limit-int64(len(c.Bytes)), limit)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			continue
		}
		if isBinary(b) {
			c.Skipped++
			continue
		}
		c.Bytes = appendDocument(c.Bytes, b)
		if int64(len(c.Bytes)) > limit {
			return nil, tooLarge(full, limit)
		}
		c.Files++
	}
	if c.Files == 0 {
		return nil, fmt.Errorf("data: %s: no text files found (%d binary files skipped)", root, c.Skipped)
	}
	return c, nil
}

// rootedError rewrites the relative path of an error from os.DirFS into a
// path under root, so that the message names the real file.
func rootedError(root string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: filepath.Join(root, filepath.FromSlash(pe.Path)), Err: pe.Err}
	}
	return err
}

func readFile(path string, size, budget, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	if size > budget {
		// Too large to include, but a binary file would be skipped anyway:
		// look at its head before failing.
		head := make([]byte, sniffLen)
		n, err := io.ReadFull(f, head)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return nil, fmt.Errorf("data: read %s: %w", path, err)
		}
		if isBinary(head[:n]) {
			return head[:n], nil
		}
		return nil, tooLarge(path, limit)
	}
	return readLimited(f, path, size, budget, limit)
}

// readLimited reads all of r, failing once more than budget bytes arrive;
// limit is the corpus limit the budget was derived from, for the message.
func readLimited(r io.Reader, path string, size, budget, limit int64) ([]byte, error) {
	if budget < 0 {
		budget = 0
	}
	if size > budget {
		return nil, tooLarge(path, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(r, budget+1))
	if err != nil {
		return nil, fmt.Errorf("data: read %s: %w", path, err)
	}
	if n > budget {
		return nil, tooLarge(path, limit)
	}
	return buf.Bytes(), nil
}

func tooLarge(path string, limit int64) error {
	return fmt.Errorf("data: %s: corpus exceeds the size limit of %d bytes", path, limit)
}

// appendDocument appends b to dst and terminates it with '\n' if needed.
func appendDocument(dst, b []byte) []byte {
	dst = append(dst, b...)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		dst = append(dst, '\n')
	}
	return dst
}

// isBinary reports whether b looks like a binary file: a NUL byte in the
// first 8 KiB, or more than 10% of those bytes outside valid UTF-8.
func isBinary(b []byte) bool {
	s := b[:min(len(b), sniffLen)]
	if bytes.IndexByte(s, 0) >= 0 {
		return true
	}
	invalid, seen := 0, 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(s[i:]) && len(s) < len(b) {
				break // a rune cut by the end of the sample
			}
			invalid++
		}
		i += size
		seen = i
	}
	return invalid*10 > seen
}

// Split holds out the tail of the corpus for evaluation. The cut is placed
// evalFraction of the way from the end (rounded down to whole bytes of
// evaluation text), then moved forward to the first line start at or after
// it if one exists within BoundaryWindow bytes and before the end. Both
// results alias c.Bytes; train has its capacity limited so that appending to
// it cannot overwrite eval. evalFraction must be in [0, 1]; Split panics
// otherwise.
func (c *Corpus) Split(evalFraction float64) (train, eval []byte) {
	return splitTail(c.Bytes, evalFraction)
}

func splitTail(b []byte, f float64) (train, eval []byte) {
	if math.IsNaN(f) || f < 0 || f > 1 {
		panic(fmt.Sprintf("data: Split: eval fraction %v is not in [0, 1]", f))
	}
	n := len(b)
	k := int(float64(n) * f)
	cut := n - k
	if k > 0 && k < n {
		if p := lineStart(b, cut, BoundaryWindow); p >= 0 && p < n {
			cut = p
		}
	}
	return b[:cut:cut], b[cut:]
}

// lineStart returns the smallest p in [from, min(from+window, len(b))] that
// starts a line (p == 0 or b[p-1] == '\n'), or -1 if there is none.
func lineStart(b []byte, from, window int) int {
	if from <= 0 {
		return 0
	}
	if from > len(b) {
		return -1
	}
	end := min(from+window, len(b))
	if i := bytes.IndexByte(b[from-1:end], '\n'); i >= 0 {
		return from + i
	}
	return -1
}
