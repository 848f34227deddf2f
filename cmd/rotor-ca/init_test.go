package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/signer"
)

// TestInit creates CAs with the file backend as an operator would and
// checks what lands on disk: certificates, key modes, the bundle and an
// issuer.conf that names the key that certifies the issuer.
func TestInit(t *testing.T) {
	t.Parallel()
	shared := t.TempDir()
	initCA(t, nil, shared) // a root for the existing-root cases
	sharedRoot := filepath.Join(shared, rootCertFile)
	tests := []struct {
		name     string
		args     func(dir string) []string
		rootFrom string // the root that must sign the issuer: "" = the new root.crt
		lifetime time.Duration
		curve    elliptic.Curve
	}{
		{name: "ok/new-root", args: func(string) []string { return nil }, lifetime: 365 * 24 * time.Hour, curve: elliptic.P256()},
		{name: "ok/existing-root", args: func(string) []string {
			return []string{"--root-cert", sharedRoot, "--root-key", filepath.Join(shared, rootKeyFile)}
		}, rootFrom: sharedRoot, lifetime: 365 * 24 * time.Hour, curve: elliptic.P256()},
		{name: "ok/issuer-cut-to-root", args: func(string) []string {
			return []string{"--root-lifetime", "24h", "--issuer-lifetime", "48h"}
		}, lifetime: 24 * time.Hour, curve: elliptic.P256()},
		{name: "ok/p384-key-file-elsewhere", args: func(dir string) []string {
			return []string{"--key-algorithm", "ecdsa-p384", "--issuer-key", filepath.Join(dir, "keys", "issuing.pem")}
		}, lifetime: 365 * 24 * time.Hour, curve: elliptic.P384()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := tt.args(dir)
			if len(args) > 0 && strings.HasSuffix(args[len(args)-1], "issuing.pem") {
				if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			out := initCA(t, nil, dir, args...)
			checkInitFiles(t, dir, tt.rootFrom, tt.lifetime, tt.curve)
			// The printed serve commands work as they are.
			var commands [][]string
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				if line := sc.Text(); strings.HasPrefix(line, "rotor-ca serve ") {
					commands = append(commands, strings.Fields(line)[1:])
				}
			}
			if len(commands) != 2 {
				t.Fatalf("init printed %d serve commands, want 2 (--issuer-config and flags):\n%s", len(commands), out)
			}
			root := filepath.Join(dir, bundleFile)
			for _, cmd := range commands {
				ca := serveCA(t, nil, root, append(cmd[1:], "--data-dir", filepath.Join(dir, "data"))...)
				if code := ca.Stop(t); code != 0 {
					t.Fatalf("serve %v exited %d", cmd, code)
				}
			}
		})
	}
}

// checkInitFiles checks a directory init made.
func checkInitFiles(t *testing.T, dir, rootFrom string, lifetime time.Duration, curve elliptic.Curve) {
	t.Helper()
	settings, err := issuerSettings{}.withFile(filepath.Join(dir, issuerConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := settings.validate(); err != nil || settings.Signer != signer.BackendFile {
		t.Fatalf("issuer.conf: %+v: %v", settings, err)
	}
	modes := map[string]os.FileMode{settings.IssuerKey: 0o600, settings.IssuerCert: 0o644,
		filepath.Join(dir, bundleFile): 0o644, filepath.Join(dir, issuerConfigFile): 0o644}
	if rootFrom == "" {
		rootFrom = filepath.Join(dir, rootCertFile)
		modes[filepath.Join(dir, rootKeyFile)], modes[rootFrom] = 0o600, 0o644
	} else if exists(filepath.Join(dir, rootKeyFile)) || exists(filepath.Join(dir, rootCertFile)) {
		t.Error("init with an existing root made a root of its own")
	}
	for f, want := range modes {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", f, st.Mode().Perm(), err, want)
		}
	}
	root := readCerts(t, rootFrom)[0]
	bundle := readCerts(t, filepath.Join(dir, bundleFile))
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
	if pub, ok := issuer[0].PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != curve {
		t.Errorf("issuer key %T, want ECDSA on %s", issuer[0].PublicKey, curve.Params().Name)
	}
	key, err := signer.Open(t.Context(), signer.Config{Backend: signer.BackendFile, KeyFile: settings.IssuerKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.CheckCertificate(key, issuer[0]); err != nil {
		t.Error(err)
	}
}

// TestInitRefuses: bad flags are usage errors (exit 2), a failure is exit
// 1, and neither leaves a file behind or touches one that was there.
func TestInitRefuses(t *testing.T) {
	t.Parallel()
	existing := t.TempDir()
	initCA(t, nil, existing)
	before := snapshot(t, existing)
	looseKey := filepath.Join(t.TempDir(), "root.key")
	key, _ := os.ReadFile(filepath.Join(existing, rootKeyFile))
	if err := os.WriteFile(looseKey, key, 0o644); err != nil {
		t.Fatal(err)
	}
	kmsKey := "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"
	tests := []struct {
		name string
		dir  string // "" = a fresh one that must stay empty
		args []string
		code int
	}{
		{"fail/overwrite", existing, nil, 1},
		{"fail/root-cert-without-key", "", []string{"--root-cert", filepath.Join(existing, rootCertFile)}, 2},
		{"fail/root-key-others-can-read", "", []string{"--root-cert", filepath.Join(existing, rootCertFile), "--root-key", looseKey}, 1},
		{"fail/root-key-not-the-roots", "", []string{"--root-cert", filepath.Join(existing, rootCertFile), "--root-key", filepath.Join(existing, issuerKeyFile)}, 1},
		{"fail/bad-trust-domain", "", []string{"--trust-domain", "Not_A_Domain"}, 2},
		{"fail/unknown-algorithm", "", []string{"--key-algorithm", "dsa-1024"}, 2},
		{"fail/unknown-signer", "", []string{"--signer", "vault"}, 2},
		{"fail/pkcs11-without-pin", "", []string{"--signer", "pkcs11", "--pkcs11-module", "/nonexistent.so", "--pkcs11-token", "t"}, 2},
		{"fail/kms-insecure-endpoint-not-loopback", "", []string{"--signer", "gcpkms", "--kms-key", kmsKey, "--kms-insecure-endpoint", "10.0.0.1:443"}, 2},
		{"fail/kms-insecure-endpoint-by-name", "", []string{"--signer", "gcpkms", "--kms-key", kmsKey, "--kms-insecure-endpoint", "localhost:443"}, 2},
		{"fail/issuer-key-with-pkcs11", "", []string{"--signer", "pkcs11", "--issuer-key", "k.pem"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tt.dir
			if dir == "" {
				dir = filepath.Join(t.TempDir(), "ca")
			}
			_, stderr, code := rotorCACmd(t, nil, append([]string{"init", "--data-dir", dir}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, stderr)
			}
			if tt.dir == "" {
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("refused init left %d files", len(entries))
				}
			}
		})
	}
	if after := snapshot(t, existing); after != before {
		t.Error("a refused init changed an existing CA's files")
	}
}

// snapshot is the names and contents of a directory's files.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b.WriteString(e.Name() + "\n" + string(data))
	}
	return b.String()
}
