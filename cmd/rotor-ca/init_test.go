package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/issuer"
)

// TestInit runs `rotor-ca init` as an operator would: the flags reach the
// CA it makes (issuer.TestCreateCA checks the files in depth), and the
// serve commands it prints work as they are, with an Ed25519 issuer too.
func TestInit(t *testing.T) {
	t.Parallel()
	shared := t.TempDir()
	initCA(t, nil, shared) // a root for the existing-root case
	sharedRoot := filepath.Join(shared, issuer.RootCertFile)
	tests := []struct {
		name     string
		args     func(dir string) []string
		rootFrom string // the root that must sign the issuer: "" = the new root.crt
		key      rotor.KeyType
		serve    bool // run the printed serve commands and issue
	}{
		{name: "ok/new-root", args: func(string) []string { return nil }, key: rotor.ECDSAP256, serve: true},
		{name: "ok/existing-root", args: func(string) []string {
			return []string{"--root-cert", sharedRoot, "--root-key", filepath.Join(shared, issuer.RootKeyFile)}
		}, rootFrom: sharedRoot, key: rotor.ECDSAP256},
		{name: "ok/p384-key-file-elsewhere", args: func(dir string) []string {
			return []string{"--key-algorithm", "ecdsa-p384", "--issuer-key", filepath.Join(dir, "issuing.pem")}
		}, key: rotor.ECDSAP384},
		{name: "ok/ed25519", args: func(string) []string { return []string{"--key-algorithm", "ed25519"} },
			key: rotor.Ed25519, serve: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ca := filepath.Join(dir, "ca")
			out := initCA(t, nil, ca, tt.args(dir)...)
			conf, err := issuer.Settings{}.WithFile(filepath.Join(ca, issuer.ConfigFile), nil)
			if err != nil {
				t.Fatal(err)
			}
			cert := readCerts(t, conf.IssuerCert)[0]
			if tt.rootFrom == "" {
				tt.rootFrom = filepath.Join(ca, issuer.RootCertFile)
			}
			if err := cert.CheckSignatureFrom(readCerts(t, tt.rootFrom)[0]); err != nil {
				t.Errorf("issuer not signed by %s: %v", tt.rootFrom, err)
			}
			if kt, _ := rotor.KeyTypeOf(cert.PublicKey); kt != tt.key {
				t.Errorf("issuer key %s, want %s", kt, tt.key)
			}
			if tt.serve {
				servePrinted(t, out, filepath.Join(ca, issuer.BundleFile), filepath.Join(dir, "data"))
			}
		})
	}
}

// servePrinted runs each serve command init printed, issues a certificate
// with it, and stops it.
func servePrinted(t *testing.T, out, bundle, data string) {
	t.Helper()
	var commands [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "rotor-ca serve ") {
			commands = append(commands, strings.Fields(line)[1:])
		}
	}
	if len(commands) != 3 {
		t.Fatalf("init printed %d serve commands, want 3 (--data-dir, --issuer-config and flags):\n%s", len(commands), out)
	}
	root := readCerts(t, bundle)[0]
	for _, cmd := range commands {
		// The first command serves the CA's own directory, its store
		// included; the others get a data directory of their own.
		args, dir := cmd[1:], data
		if i := slices.Index(args, "--data-dir"); i >= 0 {
			dir = args[i+1]
		} else {
			args = append(args, "--data-dir", data)
		}
		token := createToken(t, dir, "default", "init")
		ca := serveCA(t, nil, bundle, args...)
		got, err := issue(t.Context(), ca.client(t), token)
		if err == nil {
			err = verifyIssued(got, root)
		}
		if err != nil {
			t.Fatalf("serve %v: issue: %v", cmd, err)
		}
		if code := ca.Stop(t); code != 0 {
			t.Fatalf("serve %v exited %d", cmd, code)
		}
	}
}

// TestInitRefuses: bad flags are usage errors (exit 2), a failure is exit
// 1, and neither leaves a file behind or touches one that was there.
func TestInitRefuses(t *testing.T) {
	t.Parallel()
	existing := t.TempDir()
	initCA(t, nil, existing)
	before := e2etest.Snapshot(t, existing)
	looseKey := filepath.Join(t.TempDir(), "root.key")
	key, _ := os.ReadFile(filepath.Join(existing, issuer.RootKeyFile))
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
		{"fail/root-cert-without-key", "", []string{"--root-cert", filepath.Join(existing, issuer.RootCertFile)}, 2},
		{"fail/root-key-others-can-read", "", []string{"--root-cert", filepath.Join(existing, issuer.RootCertFile), "--root-key", looseKey}, 1},
		{"fail/root-key-not-the-roots", "", []string{"--root-cert", filepath.Join(existing, issuer.RootCertFile), "--root-key", filepath.Join(existing, issuer.IssuerKeyFile)}, 1},
		{"fail/bad-trust-domain", "", []string{"--trust-domain", "Not_A_Domain"}, 2},
		{"fail/unknown-algorithm", "", []string{"--key-algorithm", "dsa-1024"}, 2},
		{"fail/unknown-signer", "", []string{"--signer", "vault"}, 2},
		{"fail/pkcs11-without-pin", "", []string{"--signer", "pkcs11", "--pkcs11-module", "/nonexistent.so", "--pkcs11-token", "t"}, 2},
		{"fail/kms-insecure-endpoint-not-loopback", "", []string{"--signer", "gcpkms", "--kms-key", kmsKey, "--kms-insecure-endpoint", "10.0.0.1:443"}, 2},
		{"fail/kms-insecure-endpoint-by-name", "", []string{"--signer", "gcpkms", "--kms-key", kmsKey, "--kms-insecure-endpoint", "localhost:443"}, 2},
		{"fail/issuer-key-with-pkcs11", "", []string{"--signer", "pkcs11", "--issuer-key", "k.pem"}, 2},
		{"fail/ed25519-in-pkcs11", "", []string{"--signer", "pkcs11", "--key-algorithm", "ed25519"}, 2},
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
	if after := e2etest.Snapshot(t, existing); after != before {
		t.Error("a refused init changed an existing CA's files")
	}
}
