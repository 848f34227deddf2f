// Package fsutil writes files so that a reader sees the old content or the
// new, never a partial file, and a crash leaves no half-written file behind.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory, so the rename survives a
// crash. perm applies from the first byte: a key file is never briefly
// world-readable.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteFileAtomicOwned(path, data, perm, -1, -1)
}

// WriteFileAtomicOwned is WriteFileAtomic with the file handed to uid and
// gid (-1 leaves either as the writer's) while it is still empty and only
// the writer may open it, so it is never readable by a user it is not
// meant for, not even for a moment.
func WriteFileAtomicOwned(path string, data []byte, perm os.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	// CreateTemp made it 0600: only the writer can open it until perm.
	if uid != -1 || gid != -1 {
		if err := f.Chown(uid, gid); err != nil {
			f.Close()
			return fmt.Errorf("write %s: chown: %w", path, err)
		}
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: chmod: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	return SyncDir(dir)
}

// CreateFileExclusive writes data to path only if nothing is there yet,
// atomically: for keys that must never be overwritten.
func CreateFileExclusive(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err == nil {
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
	} else {
		f.Close()
		return fmt.Errorf("create %s: chmod: %w", path, err)
	}
	// A hard link fails if path exists, unlike rename: that is the point.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so renames and links in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
