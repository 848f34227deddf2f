package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/signer"
)

var quiet = slog.New(slog.DiscardHandler)

// newPlan is a file-backend plan for a new CA in dir.
func newPlan(dir string) Plan {
	return Plan{Dir: dir, TrustDomain: "cluster.local", Issuer: Defaults(), RootLifetime: 10 * 365 * 24 * time.Hour,
		IssuerLifetime: 365 * 24 * time.Hour, Log: quiet}
}

// mustCreate makes a file-backend CA in dir, with edit applied to the plan.
func mustCreate(t testing.TB, dir string, edit func(*Plan)) *Created {
	t.Helper()
	p := newPlan(dir)
	if edit != nil {
		edit(&p)
	}
	ca, err := CreateCA(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestCreateCA creates CAs with the file backend and checks what lands on
// disk: certificates, key modes, the bundle, and an issuer.conf whose
// settings load as the CA would load them.
func TestCreateCA(t *testing.T) {
	t.Parallel()
	shared := t.TempDir()
	mustCreate(t, shared, nil) // a root for the existing-root case
	sharedRoot := filepath.Join(shared, RootCertFile)
	tests := []struct {
		name     string
		edit     func(dir string, p *Plan)
		rootFrom string // the root that must sign the issuer: "" = the new root.crt
		lifetime time.Duration
		key      rotor.KeyType
	}{
		{name: "ok/new-root", lifetime: 365 * 24 * time.Hour, key: rotor.ECDSAP256},
		{name: "ok/existing-root", edit: func(_ string, p *Plan) {
			p.RootCert, p.RootKey = sharedRoot, filepath.Join(shared, RootKeyFile)
		}, rootFrom: sharedRoot, lifetime: 365 * 24 * time.Hour, key: rotor.ECDSAP256},
		{name: "ok/issuer-cut-to-root", edit: func(_ string, p *Plan) {
			p.RootLifetime, p.IssuerLifetime = 24*time.Hour, 48*time.Hour
		}, lifetime: 24 * time.Hour, key: rotor.ECDSAP256},
		{name: "ok/p384-key-file-elsewhere", edit: func(dir string, p *Plan) {
			p.KeyType, p.Issuer.IssuerKey = rotor.ECDSAP384, filepath.Join(dir, "issuing.pem")
		}, lifetime: 365 * 24 * time.Hour, key: rotor.ECDSAP384},
		{name: "ok/ed25519", edit: func(_ string, p *Plan) { p.KeyType = rotor.Ed25519 },
			lifetime: 365 * 24 * time.Hour, key: rotor.Ed25519},
		{name: "ok/rsa-2048", edit: func(_ string, p *Plan) { p.KeyType = rotor.RSA2048 },
			lifetime: 365 * 24 * time.Hour, key: rotor.RSA2048},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mustCreate(t, filepath.Join(dir, "ca"), func(p *Plan) {
				if tt.edit != nil {
					tt.edit(dir, p)
				}
			})
			checkCreated(t, filepath.Join(dir, "ca"), tt.rootFrom, tt.lifetime, tt.key)
		})
	}
}

// checkCreated checks a directory CreateCA made, and loads it as serve
// would.
func checkCreated(t *testing.T, dir, rootFrom string, lifetime time.Duration, kt rotor.KeyType) {
	t.Helper()
	settings, err := Settings{}.WithFile(filepath.Join(dir, ConfigFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := settings.Validate(); err != nil || settings.Signer != signer.BackendFile {
		t.Fatalf("issuer.conf: %+v: %v", settings, err)
	}
	modes := map[string]os.FileMode{settings.IssuerKey: 0o600, settings.IssuerCert: 0o644,
		filepath.Join(dir, BundleFile): 0o644, filepath.Join(dir, ConfigFile): 0o644}
	if rootFrom == "" {
		rootFrom = filepath.Join(dir, RootCertFile)
		modes[filepath.Join(dir, RootKeyFile)], modes[rootFrom] = 0o600, 0o644
	} else if exists(filepath.Join(dir, RootKeyFile)) || exists(filepath.Join(dir, RootCertFile)) {
		t.Error("a CA with an existing root made a root of its own")
	}
	for f, want := range modes {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", f, st.Mode().Perm(), err, want)
		}
	}
	root := readCerts(t, rootFrom)[0]
	bundle := readCerts(t, filepath.Join(dir, BundleFile))
	if len(bundle) != 1 || !bundle[0].Equal(root) {
		t.Errorf("bundle.pem holds %d certificates, want the root alone", len(bundle))
	}
	if !root.IsCA || root.MaxPathLen != 1 || root.CheckSignatureFrom(root) != nil {
		t.Errorf("root: CA %v, path length %d, self-signed %v", root.IsCA, root.MaxPathLen, root.CheckSignatureFrom(root))
	}
	issuer := readCerts(t, settings.IssuerCert)
	if len(issuer) != 1 || !issuer[0].IsCA || issuer[0].MaxPathLen != 0 || !issuer[0].MaxPathLenZero {
		t.Fatalf("issuer.crt: %d certificates, want one CA with path length 0", len(issuer))
	}
	if err := issuer[0].CheckSignatureFrom(root); err != nil {
		t.Errorf("issuer is not signed by the root: %v", err)
	}
	if life := time.Until(issuer[0].NotAfter); life < lifetime-time.Hour || life > lifetime+time.Hour {
		t.Errorf("issuer valid for %v, want about %v", life, lifetime)
	}
	if got, _ := rotor.KeyTypeOf(issuer[0].PublicKey); got != kt {
		t.Errorf("issuer key %s, want %s", got, kt)
	}
	// What serve does with it: load the issuer, check the key signs, and
	// issue a leaf that chains to the bundle.
	l := &Loader{Base: settings, BundleFile: filepath.Join(dir, BundleFile), Log: quiet}
	loaded, err := l.Load(context.Background(), nil)
	if err != nil {
		t.Fatalf("load what CreateCA made: %v", err)
	}
	defer loaded.Close()
	if err := loaded.Key.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkIssues(t, loaded.Trust)
}

// TestCreateCARefuses: a CA that cannot be made leaves no file behind and
// touches none that was there.
func TestCreateCARefuses(t *testing.T) {
	t.Parallel()
	existing := t.TempDir()
	mustCreate(t, existing, nil)
	before := e2etest.Snapshot(t, existing)
	looseKey := filepath.Join(t.TempDir(), "root.key")
	key, _ := os.ReadFile(filepath.Join(existing, RootKeyFile))
	if err := os.WriteFile(looseKey, key, 0o644); err != nil {
		t.Fatal(err)
	}
	kmsKey := "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"
	root := filepath.Join(existing, RootCertFile)
	tests := []struct {
		name     string
		existing bool // in the directory of an existing CA
		edit     func(*Plan)
		settings bool // ErrSettings expected
	}{
		{"fail/overwrite", true, nil, false},
		{"fail/root-key-others-can-read", false, func(p *Plan) { p.RootCert, p.RootKey = root, looseKey }, false},
		{"fail/root-key-not-the-roots", false, func(p *Plan) { p.RootCert, p.RootKey = root, filepath.Join(existing, IssuerKeyFile) }, false},
		{"fail/root-cert-is-a-leaf", false, func(p *Plan) { p.RootCert, p.RootKey = filepath.Join(existing, IssuerCertFile), looseKey }, false},
		{"fail/unknown-signer", false, func(p *Plan) { p.Issuer.Signer = "vault" }, true},
		{"fail/pkcs11-without-pin", false, func(p *Plan) {
			p.Issuer.Signer, p.Issuer.PKCS11Module, p.Issuer.PKCS11Token = "pkcs11", "/nonexistent.so", "t"
		}, true},
		{"fail/kms-insecure-endpoint-not-loopback", false, func(p *Plan) {
			p.Issuer.Signer, p.Issuer.KMSKey, p.Issuer.KMSInsecureEndpoint = "gcpkms", kmsKey, "10.0.0.1:443"
		}, true},
		{"fail/issuer-key-with-pkcs11", false, func(p *Plan) { p.Issuer.Signer, p.Issuer.IssuerKey = "pkcs11", "k.pem" }, true},
		{"fail/ed25519-in-pkcs11", false, func(p *Plan) {
			p.KeyType = rotor.Ed25519
			p.Issuer.Signer, p.Issuer.PKCS11Module, p.Issuer.PKCS11Token, p.PIN = "pkcs11", "/nonexistent.so", "t", "1234"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			if tt.existing {
				dir = existing
			}
			p := newPlan(dir)
			if tt.edit != nil {
				tt.edit(&p)
			}
			_, err := CreateCA(context.Background(), p)
			if err == nil || errors.Is(err, ErrSettings) != tt.settings {
				t.Fatalf("CreateCA = %v, want an error, settings error %v", err, tt.settings)
			}
			if tt.name == "fail/overwrite" && !errors.Is(err, fs.ErrExist) {
				t.Errorf("overwrite: %v, want fs.ErrExist", err)
			}
			if !tt.existing {
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("refused CreateCA left %d files", len(entries))
				}
			}
		})
	}
	if after := e2etest.Snapshot(t, existing); after != before {
		t.Error("a refused CreateCA changed an existing CA's files")
	}
}

// TestDevelopment: a fresh directory gets both CAs, a second start reuses
// them, and a lost issuer is made again under the same root.
func TestDevelopment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := Development{Dir: dir, TrustDomain: "cluster.local", RootLifetime: 24 * time.Hour, IssuerLifetime: time.Hour, Log: quiet}
	s, bundle, err := d.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rootBefore := snapshotFile(t, filepath.Join(dir, RootCertFile))
	issuerBefore := snapshotFile(t, s.IssuerCert)
	if _, _, err := d.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if snapshotFile(t, s.IssuerCert) != issuerBefore || snapshotFile(t, filepath.Join(dir, RootCertFile)) != rootBefore {
		t.Fatal("a second start replaced the development CA")
	}
	for _, f := range []string{s.IssuerCert, s.IssuerKey} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	s2, bundle2, err := d.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if bundle2 != bundle || snapshotFile(t, filepath.Join(dir, RootCertFile)) != rootBefore || snapshotFile(t, s2.IssuerCert) == issuerBefore {
		t.Fatal("a lost issuer was not made again under the same root")
	}
	if err := os.Remove(filepath.Join(dir, RootCertFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Ensure(context.Background()); err == nil || !strings.Contains(err.Error(), "restore the root") {
		t.Fatalf("an issuer without its root: %v", err)
	}
}

func readCerts(t testing.TB, path string) []*x509.Certificate {
	t.Helper()
	certs, err := ReadCertificates(path, "test file")
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func snapshotFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
