package client

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// CombinedFile is the combined PEM's name inside a version directory: the
// key, the leaf and the chain in one file, for HAProxy and other servers
// that want a single file.
const CombinedFile = "combined.pem"

// DefaultKeyMode is the key file's mode unless a Layout says otherwise.
const DefaultKeyMode os.FileMode = 0o600

// Layout is how WriteFiles presents a version to the programs that read
// it by name: the visible names, who owns the files, who may read the key,
// and whether a combined PEM is written too. Inside a version directory
// the names are always CertFile, KeyFile, BundleFile and CombinedFile, so
// ReadFiles and TLSSource find them whatever the layout; only the visible
// links in the directory carry the layout's names. The zero Layout is
// cert.pem, key.pem and bundle.pem, key mode 0600, owned by the writer,
// no combined file.
type Layout struct {
	// Cert, Key and Bundle are the visible names, plain file names in the
	// directory (not paths: every file must be swapped by the one rename of
	// ..data); "" means CertFile, KeyFile and BundleFile.
	Cert, Key, Bundle string
	// Combined, if set, is the visible name of a file holding the key, the
	// leaf and its chain, written in the same version as the others. It is
	// as secret as the key and gets KeyMode.
	Combined string
	// KeyMode is the permission bits of the key and the combined file;
	// zero means DefaultKeyMode. Bits for others are refused.
	KeyMode os.FileMode
	// Owner, if set, owns every file of a version from before its first
	// byte is written, so a proxy running as another user can read a key
	// of mode 0600 or 0640 and nobody else ever could.
	Owner *Owner
}

// Owner is a file's owner and group; -1 leaves either as the writer's.
type Owner struct{ UID, GID int }

// Paths are the visible files of a Layout in a directory; Combined is ""
// when the layout has none.
type Paths struct{ Cert, Key, Bundle, Combined string }

// Paths are l's visible files in dir, for the programs told to read them.
func (l Layout) Paths(dir string) Paths {
	p := Paths{Cert: filepath.Join(dir, or(l.Cert, CertFile)), Key: filepath.Join(dir, or(l.Key, KeyFile)),
		Bundle: filepath.Join(dir, or(l.Bundle, BundleFile))}
	if l.Combined != "" {
		p.Combined = filepath.Join(dir, l.Combined)
	}
	return p
}

// link is one visible name, the file in the version it points at, and
// what the file is ("cert", "key", "bundle", "combined") for messages.
type link struct{ name, file, role string }

// links are the layout's visible names with their files, defaults filled.
func (l Layout) links() []link {
	out := []link{{or(l.Cert, CertFile), CertFile, "cert"}, {or(l.Key, KeyFile), KeyFile, "key"},
		{or(l.Bundle, BundleFile), BundleFile, "bundle"}}
	if l.Combined != "" {
		out = append(out, link{l.Combined, CombinedFile, "combined"})
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (l Layout) keyMode() os.FileMode {
	if l.KeyMode == 0 {
		return DefaultKeyMode
	}
	return l.KeyMode
}

// In returns l with every name given as a path directly inside dir (the
// form the agent's hook gets them in, ROTOR_CERT_FILE and the like) made a
// plain name. A path anywhere else is refused: every file must be in dir,
// so that one rename swaps them all.
func (l Layout) In(dir string) (Layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return l, fmt.Errorf("output directory %s: %w", dir, err)
	}
	for _, f := range []struct {
		name *string
		role string
	}{{&l.Cert, "cert"}, {&l.Key, "key"}, {&l.Bundle, "bundle"}, {&l.Combined, "combined"}} {
		if !strings.ContainsRune(*f.name, '/') {
			continue
		}
		p, err := filepath.Abs(*f.name)
		if err != nil || filepath.Dir(p) != abs {
			return l, fmt.Errorf("%s file %s is not directly in the output directory %s: every file must be, so that one rename swaps them all", f.role, *f.name, dir)
		}
		*f.name = filepath.Base(p)
	}
	return l, nil
}

// Validate checks that every name is a plain, distinct file name the
// layout's own files (..data, version directories, temporary links) cannot
// collide with, and that the key mode keeps the key from other users.
func (l Layout) Validate() error {
	seen := map[string]string{}
	for _, k := range l.links() {
		switch n := k.name; {
		case strings.ContainsRune(n, '/'):
			return fmt.Errorf("%s file name %q must be a plain name inside the output directory, not a path", k.role, n)
		case strings.HasPrefix(n, "."):
			return fmt.Errorf("%s file name %q must not start with a dot: those names are the writer's own (..data, versions)", k.role, n)
		case seen[n] != "":
			return fmt.Errorf("file name %q is given to both the %s and the %s file", n, seen[n], k.role)
		}
		seen[k.name] = k.role
	}
	if m := l.keyMode(); m&^0o660 != 0 || m&0o400 == 0 {
		return fmt.Errorf("key mode %04o: want permission bits that let the owner read, execute nothing and let no other user in, such as 0600 or 0640", m)
	}
	return nil
}

// versionFile is one file of a version directory.
type versionFile struct {
	name string
	data []byte
	perm os.FileMode
}

// contents are the files of one version with their modes.
func (l Layout) contents(f Files) []versionFile {
	out := []versionFile{{CertFile, f.Cert, 0o644}, {KeyFile, f.Key, l.keyMode()}, {BundleFile, f.Bundle, 0o644}}
	if l.Combined != "" {
		// Key first, then the leaf and its chain, as HAProxy's crt reads it.
		combined := append(append([]byte{}, f.Key...), f.Cert...)
		out = append(out, versionFile{CombinedFile, combined, l.keyMode()})
	}
	return out
}

// owner is the uid and gid to hand files to, -1 for the writer's.
func (l Layout) owner() (uid, gid int) {
	if l.Owner == nil {
		return -1, -1
	}
	return l.Owner.UID, l.Owner.GID
}

// InPlace reports whether the current version in dir is laid out as l
// says: every visible name links to its file, the combined file exists if
// one is wanted, and the key files have l's mode and owner. A writer that
// adopts files left by an earlier run with other settings writes them
// again when it is false.
func (l Layout) InPlace(dir string) bool {
	for _, k := range l.links() {
		if cur, err := os.Readlink(filepath.Join(dir, k.name)); err != nil || cur != filepath.Join(dataLink, k.file) {
			return false
		}
	}
	uid, gid := l.owner()
	for _, c := range l.contents(Files{}) {
		fi, err := os.Stat(filepath.Join(dir, dataLink, c.name))
		if err != nil || fi.Mode().Perm() != c.perm {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || (uid != -1 && int(st.Uid) != uid) || (gid != -1 && int(st.Gid) != gid) {
			return false
		}
	}
	return true
}
