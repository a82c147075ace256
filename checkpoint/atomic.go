package checkpoint

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// WriteFileAtomic writes the output of write to path so that path holds
// either its previous content or the complete new one, even if the process
// dies midway: the data goes to a temporary file in the same directory,
// which is synced, closed and renamed over path, and the directory is
// synced. On error the temporary file is removed.
func WriteFileAtomic(path string, perm os.FileMode, write func(w io.Writer) error) error {
	return writeFileAtomic(path, perm, write, true)
}

// writeFileAtomic is WriteFileAtomic, leaving the directory unsynced if
// syncDir is false (the caller syncs it once after several writes).
func writeFileAtomic(path string, perm os.FileMode, write func(w io.Writer) error, syncDir bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if syncDir {
		syncDirectory(dir)
	}
	return nil
}

// syncDirectory makes the renames in dir durable. Errors are ignored: not
// every file system can sync a directory.
func syncDirectory(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// isTemp reports whether name is that of a temporary file of
// WriteFileAtomic.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}
