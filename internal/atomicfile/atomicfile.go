// Package atomicfile replaces files atomically: readers see the old
// content or the new, never a mix or a truncated file, even across a crash.
package atomicfile

import (
	"os"
	"path/filepath"

	"github.com/pkg/errors"
)

// WriteFile writes data to a temporary file in path's directory, fsyncs
// it, renames it over path and fsyncs the directory. On any error path is
// left as it was and the temporary file is removed.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	if err = f.Chmod(perm); err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	if err = f.Sync(); err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	if err = f.Close(); err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	if err = os.Rename(tmp, path); err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	// The rename is durable once the directory is.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
