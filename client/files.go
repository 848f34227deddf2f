package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/fsutil"
)

// The files rotor-agent keeps in its output directory. Each visible name is
// a symlink into the current version: cert.pem -> ..data/cert.pem, where
// ..data is itself a symlink to a timestamped directory such as
// ..2026_11_27_18_00_00.123456789 (Kubernetes' AtomicWriter layout). These
// are the names inside every version; a Layout may give the visible links
// other names and add CombinedFile.
const (
	CertFile   = "cert.pem"   // leaf then chain, PEM
	KeyFile    = "key.pem"    // PKCS#8 private key, PEM, mode 0600
	BundleFile = "bundle.pem" // trust anchors, PEM

	dataLink    = "..data"
	dataTmpLink = "..data_tmp"
	// versionLayout names version directories; the leading ".." keeps them
	// out of globs such as *.pem and apart from the visible names.
	versionLayout = "..2006_01_02_15_04_05.000000000"
)

// Files are the three documents written and read together.
type Files struct {
	Cert, Key, Bundle []byte
}

// WriteFiles replaces the files in dir as one: it writes them into a fresh
// version directory, syncs them, then points ..data at it with a single
// rename. A reader that resolves ..data once (ReadFiles, TLSSource) sees
// the old set or the new set, never a mix and never a partial file. Readers
// that open cert.pem and key.pem separately may straddle a swap; they must
// retry when the pair does not match, or resolve ..data first.
//
// Only one writer may use dir at a time. now names the version directory.
// It is Layout{}.Write: the default names and modes.
func WriteFiles(dir string, f Files, now time.Time) error {
	return Layout{}.Write(dir, f, now)
}

// Write is WriteFiles with l's names, key mode, owner and combined file.
// Every file of the version, the combined one too, has its mode and owner
// before ..data points at it, so the swap makes all of them current at
// once. It fails before touching dir if l does not Validate.
func (l Layout) Write(dir string, f Files, now time.Time) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	version, err := newVersionDir(dir, now)
	if err != nil {
		return err
	}
	uid, gid := l.owner()
	for _, file := range l.contents(f) {
		// Each file is synced, and so is the version directory, before
		// ..data can point at it.
		if err := fsutil.WriteFileAtomicOwned(filepath.Join(dir, version, file.name), file.data, file.perm, uid, gid); err != nil {
			os.RemoveAll(filepath.Join(dir, version))
			return err
		}
	}
	if err := replaceSymlink(dir, dataTmpLink, dataLink, version); err != nil {
		os.RemoveAll(filepath.Join(dir, version))
		return err
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return err
	}
	for _, k := range l.links() {
		target := filepath.Join(dataLink, k.file)
		if cur, err := os.Readlink(filepath.Join(dir, k.name)); err == nil && cur == target {
			continue
		}
		if err := replaceSymlink(dir, "."+k.name+".tmp", k.name, target); err != nil {
			return err
		}
	}
	// Old versions are clutter, not a failure: the new set is in place, and
	// the next write tries the clean-up again.
	_ = removeOldVersions(dir, version)
	return nil
}

// newVersionDir creates an empty version directory named after now.
func newVersionDir(dir string, now time.Time) (string, error) {
	for i := 0; ; i++ {
		name := now.UTC().Add(time.Duration(i)).Format(versionLayout)
		err := os.Mkdir(filepath.Join(dir, name), 0o755)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) || i >= 100 {
			return "", fmt.Errorf("write files: %w", err)
		}
	}
}

// replaceSymlink makes dir/name point at target atomically: a temporary
// link renamed over the old one (or over a regular file left from before).
func replaceSymlink(dir, tmpName, name, target string) error {
	tmp := filepath.Join(dir, tmpName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write files: %w", err)
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("write files: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write files: swap %s: %w", name, err)
	}
	return nil
}

// removeOldVersions deletes version directories other than keep. A reader
// still inside one keeps its open files; one about to open fails with
// ENOENT and ReadFiles starts over.
func removeOldVersions(dir, keep string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clean up %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || n == keep || !isVersionName(n) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isVersionName(n string) bool {
	_, ok := VersionTime(n)
	return ok
}

// VersionTime is when a version directory was written, from its name: for
// files rotor-agent wrote, close after the certificate was issued.
func VersionTime(version string) (time.Time, bool) {
	if !strings.HasPrefix(version, "..") || len(version) != len(versionLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(versionLayout, version)
	return t, err == nil
}

// Version returns the name of the current version directory, "" (and no
// error) when nothing was written yet. It is one readlink: cheap enough to
// call on every TLS handshake to notice a rotation.
func Version(dir string) (string, error) {
	v, err := os.Readlink(filepath.Join(dir, dataLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", dir, err)
	}
	return v, nil
}

// ReadFiles reads the three files of one version and returns them with the
// version's name. It resolves ..data once and reads every file below that
// version, starting over if a rotation removed it meanwhile, so the files
// always belong together. Nothing written yet gives an error wrapping
// fs.ErrNotExist.
func ReadFiles(dir string) (Files, string, error) {
	var lastErr error
	for range 5 {
		version, err := Version(dir)
		if err != nil {
			return Files{}, "", err
		}
		if version == "" {
			return Files{}, "", fmt.Errorf("read %s: nothing written yet: %w", dir, fs.ErrNotExist)
		}
		var f Files
		f.Cert, err = os.ReadFile(filepath.Join(dir, version, CertFile))
		if err == nil {
			f.Key, err = os.ReadFile(filepath.Join(dir, version, KeyFile))
		}
		if err == nil {
			f.Bundle, err = os.ReadFile(filepath.Join(dir, version, BundleFile))
		}
		if err == nil {
			return f, version, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return Files{}, "", err
		}
		lastErr = err // the version was removed under us: resolve again
	}
	return Files{}, "", fmt.Errorf("read %s: rotating too fast to read: %w", dir, lastErr)
}
