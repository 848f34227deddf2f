package client_test

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/client"
)

func TestLayoutValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		l    client.Layout
		ok   bool
	}{
		{"ok/default", client.Layout{}, true},
		{"ok/haproxy", client.Layout{Cert: "tls.crt", Key: "tls.key", Bundle: "ca.crt", Combined: "haproxy.pem", KeyMode: 0o640}, true},
		{"ok/read-only-key", client.Layout{KeyMode: 0o440}, true},
		{"fail/path", client.Layout{Cert: "../cert.pem"}, false},
		{"fail/subdir", client.Layout{Combined: "x/combined.pem"}, false},
		{"fail/dot", client.Layout{Key: ".key.pem"}, false},
		{"fail/data-link", client.Layout{Bundle: "..data"}, false},
		{"fail/same-name", client.Layout{Key: "cert.pem"}, false},
		{"fail/combined-is-key", client.Layout{Combined: "key.pem"}, false},
		{"fail/world-readable", client.Layout{KeyMode: 0o644}, false},
		{"fail/executable", client.Layout{KeyMode: 0o700}, false},
		{"fail/owner-cannot-read", client.Layout{KeyMode: 0o040}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.l.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestLayoutWrite writes with a layout as a proxy would want it and reads
// every visible name back, the combined file as HAProxy does (key and
// chain from one file), with the modes and the owner set.
func TestLayoutWrite(t *testing.T) {
	t.Parallel()
	sets := pairs(t, 2)
	for _, tc := range []struct {
		name string
		l    client.Layout
	}{
		{"ok/default-names-with-combined", client.Layout{Combined: "combined.pem"}},
		{"ok/renamed", client.Layout{Cert: "tls.crt", Key: "tls.key", Bundle: "ca.crt", Combined: "haproxy.pem", KeyMode: 0o640}},
		{"ok/owned-by-nobody", client.Layout{Combined: "all.pem", KeyMode: 0o640, Owner: &client.Owner{UID: 65534, GID: 65534}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.l.Owner != nil && os.Geteuid() != 0 {
				t.Skip("handing files to another user needs root")
			}
			dir := t.TempDir()
			for i, f := range sets {
				if err := tc.l.Write(dir, f, time.Now()); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				checkLayout(t, dir, tc.l, f)
			}
			if !tc.l.InPlace(dir) {
				t.Errorf("InPlace is false right after Write")
			}
			// ReadFiles does not depend on the visible names.
			if got, _, err := client.ReadFiles(dir); err != nil || !bytes.Equal(got.Key, sets[1].Key) {
				t.Errorf("ReadFiles after a layout write: %v", err)
			}
		})
	}
}

// checkLayout reads dir's visible names as l names them and compares them
// with f.
func checkLayout(t *testing.T, dir string, l client.Layout, f client.Files) {
	t.Helper()
	name := func(s, def string) string {
		if s == "" {
			return filepath.Join(dir, def)
		}
		return filepath.Join(dir, s)
	}
	certPath, keyPath := name(l.Cert, client.CertFile), name(l.Key, client.KeyFile)
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Errorf("visible cert and key do not load: %v", err)
	}
	if b, err := os.ReadFile(name(l.Bundle, client.BundleFile)); err != nil || !bytes.Equal(b, f.Bundle) {
		t.Errorf("bundle: %v", err)
	}
	combined := filepath.Join(dir, l.Combined)
	pair, err := tls.LoadX509KeyPair(combined, combined)
	if err != nil {
		t.Fatalf("combined file does not load as key and chain: %v", err)
	}
	if want, _ := tls.X509KeyPair(f.Cert, f.Key); len(pair.Certificate) != len(want.Certificate) ||
		!bytes.Equal(pair.Certificate[0], want.Certificate[0]) {
		t.Errorf("combined file holds %d certificates, not the leaf and chain written", len(pair.Certificate))
	}
	wantMode := l.KeyMode
	if wantMode == 0 {
		wantMode = client.DefaultKeyMode
	}
	for _, p := range []string{keyPath, combined} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v (%v), want %v", filepath.Base(p), fi.Mode().Perm(), err, wantMode)
			continue
		}
		if o := l.Owner; o != nil {
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != o.UID || int(st.Gid) != o.GID {
				t.Errorf("%s: owned by %d:%d, want %d:%d", filepath.Base(p), st.Uid, st.Gid, o.UID, o.GID)
			}
		}
	}
}

// TestLayoutInPlace: files written under one layout are not in place for
// another, so an agent restarted with new settings writes them again.
func TestLayoutInPlace(t *testing.T) {
	t.Parallel()
	f := pairs(t, 1)[0]
	dir := t.TempDir()
	if err := client.WriteFiles(dir, f, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		l    client.Layout
		want bool
	}{
		{"ok/same", client.Layout{}, true},
		{"fail/new-combined", client.Layout{Combined: "combined.pem"}, false},
		{"fail/renamed-cert", client.Layout{Cert: "tls.crt"}, false},
		{"fail/other-key-mode", client.Layout{KeyMode: 0o640}, false},
	} {
		if got := tc.l.InPlace(dir); got != tc.want {
			t.Errorf("%s: InPlace = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLayoutIn: a name may be given as a path directly in the directory,
// as the hook's ROTOR_CERT_FILE holds it; anywhere else is refused.
func TestLayoutIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, in, dir, want string
		ok                  bool
	}{
		{"ok/name", "tls.crt", dir, "tls.crt", true},
		{"ok/path-in-dir", filepath.Join(dir, "tls.crt"), dir, "tls.crt", true},
		{"ok/relative-path-in-dir", "out/tls.crt", "out", "tls.crt", true},
		{"ok/unclean-path-in-dir", dir + "/./tls.crt", dir + "/", "tls.crt", true},
		{"fail/elsewhere", "/etc/ssl/tls.crt", dir, "", false},
		{"fail/subdir", filepath.Join(dir, "sub", "tls.crt"), dir, "", false},
		{"fail/parent", filepath.Join(dir, "..", "tls.crt"), dir, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := client.Layout{Cert: tc.in}.In(tc.dir)
			if (err == nil) != tc.ok || (tc.ok && l.Cert != tc.want) {
				t.Errorf("In(%q) in %q = %q, %v; want %q ok=%v", tc.in, tc.dir, l.Cert, err, tc.want, tc.ok)
			}
		})
	}
}
