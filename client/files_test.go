package client_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

// pairs issues n certificates with their keys as the files the agent
// writes.
func pairs(t *testing.T, n int) []client.Files {
	t.Helper()
	ca := catest.New(t, catest.Options{})
	c := newClient(t, ca)
	token := ca.Token(t, webapp)
	var out []client.Files
	for range n {
		got, cert := issue(t, c, token)
		key, err := rotor.EncodePrivateKeyPEM(cert.PrivateKey.(crypto.Signer))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, client.Files{Cert: got.PEM, Key: key, Bundle: ca.Bundle.PEM})
	}
	return out
}

func TestWriteFiles(t *testing.T) {
	t.Parallel()
	sets := pairs(t, 2)
	dir := t.TempDir()
	// A regular file left by an older tool is replaced by the link.
	if err := os.WriteFile(filepath.Join(dir, client.CertFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, f := range sets {
		if err := client.WriteFiles(dir, f, time.Now()); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, version, err := client.ReadFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Cert, f.Cert) || !bytes.Equal(got.Key, f.Key) || !bytes.Equal(got.Bundle, f.Bundle) {
			t.Errorf("write %d: read back different files", i)
		}
		if v, _ := client.Version(dir); v != version || !strings.HasPrefix(v, "..") {
			t.Errorf("version %q, ReadFiles said %q", v, version)
		}
	}
	for _, name := range []string{client.CertFile, client.KeyFile, client.BundleFile} {
		target, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || target != filepath.Join("..data", name) {
			t.Errorf("%s -> %q (%v), want a link into ..data", name, target, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, client.CertFile), filepath.Join(dir, client.KeyFile)); err != nil {
		t.Errorf("visible files do not load: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, client.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// ..data, one version directory and the three visible links: the old
	// version and the temporary link are gone.
	if len(names) != 5 {
		t.Errorf("directory holds %v, want ..data, one version and three links", names)
	}
}

func TestReadFilesEmpty(t *testing.T) {
	t.Parallel()
	if _, _, err := client.ReadFiles(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFiles on an empty directory: %v, want fs.ErrNotExist", err)
	}
}

// TestNoTornReads rotates the files many times while readers load them in
// tight loops. A reader that resolves ..data once (ReadFiles, as TLSSource
// does) must always get a matching key pair. A reader that opens the
// visible names one by one must never see a partial file; it may straddle a
// swap (cert.pem from one version, key.pem from the next), which
// LoadX509KeyPair reports as a mismatch, so that is counted, not failed.
func TestNoTornReads(t *testing.T) {
	t.Parallel()
	sets := pairs(t, 4)
	dir := t.TempDir()
	if err := client.WriteFiles(dir, sets[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	const rotations = 100
	var (
		done                          atomic.Bool
		consistent, visible, straddle atomic.Int64
		wg                            sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for !done.Load() {
			f, _, err := client.ReadFiles(dir)
			if err == nil {
				_, err = tls.X509KeyPair(f.Cert, f.Key)
			}
			if err != nil {
				t.Errorf("consistent read %d: %v", consistent.Load(), err)
				return
			}
			consistent.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for !done.Load() {
			switch matched, err := readVisible(dir); {
			case err != nil:
				t.Errorf("visible read %d: %v", visible.Load(), err)
				return
			case matched:
				visible.Add(1)
			default:
				straddle.Add(1)
			}
		}
	}()
	for i := 1; i <= rotations; i++ {
		if err := client.WriteFiles(dir, sets[i%len(sets)], time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	t.Logf("%d rotations: %d consistent reads, %d visible-path reads, %d straddled a swap",
		rotations, consistent.Load(), visible.Load(), straddle.Load())
	if consistent.Load() < rotations || visible.Load() < rotations {
		t.Errorf("readers ran %d and %d times, want at least one per rotation", consistent.Load(), visible.Load())
	}
}

// readVisible is tls.LoadX509KeyPair on the visible names, taken apart so
// a straddled swap (two whole files that do not match) can be told from a
// partial file (an error) without reading error text.
func readVisible(dir string) (matched bool, err error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, client.CertFile))
	if err != nil {
		return false, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, client.KeyFile))
	if err != nil {
		return false, err
	}
	chain, err := rotor.ParseCertificates(certPEM)
	if err != nil {
		return false, err
	}
	key, err := rotor.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return false, err
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(chain[0].PublicKey) {
		return false, nil
	}
	_, err = tls.X509KeyPair(certPEM, keyPEM)
	return err == nil, err
}
