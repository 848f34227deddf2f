package signer

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor"
)

func TestConfigValidate(t *testing.T) {
	p11 := PKCS11Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1234", KeyLabel: "k"}
	kv := "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"
	with := func(f func(*PKCS11Config)) PKCS11Config { c := p11; f(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok/file", Config{Backend: BackendFile, KeyFile: "/k.pem"}, true},
		{"ok/pkcs11", Config{Backend: BackendPKCS11, PKCS11: p11}, true},
		{"ok/pkcs11-sessions", Config{Backend: BackendPKCS11, PKCS11: with(func(c *PKCS11Config) { c.MaxSessions = 2 })}, true},
		{"ok/gcpkms", Config{Backend: BackendGCPKMS, KMS: KMSConfig{KeyVersion: kv}}, true},
		{"fail/no-backend", Config{KeyFile: "/k.pem"}, false},
		{"fail/unknown-backend", Config{Backend: "vault"}, false},
		{"fail/file-no-path", Config{Backend: BackendFile}, false},
		{"fail/pkcs11-no-module", Config{Backend: BackendPKCS11, PKCS11: with(func(c *PKCS11Config) { c.Module = "" })}, false},
		{"fail/pkcs11-no-token", Config{Backend: BackendPKCS11, PKCS11: with(func(c *PKCS11Config) { c.TokenLabel = "" })}, false},
		{"fail/pkcs11-no-key-label", Config{Backend: BackendPKCS11, PKCS11: with(func(c *PKCS11Config) { c.KeyLabel = "" })}, false},
		{"fail/pkcs11-no-pin", Config{Backend: BackendPKCS11, PKCS11: with(func(c *PKCS11Config) { c.PIN = "" })}, false},
		{"fail/pkcs11-one-session", Config{Backend: BackendPKCS11, PKCS11: with(func(c *PKCS11Config) { c.MaxSessions = 1 })}, false},
		{"fail/gcpkms-key-not-version", Config{Backend: BackendGCPKMS, KMS: KMSConfig{KeyVersion: "projects/p/locations/global/keyRings/r/cryptoKeys/k"}}, false},
		{"fail/gcpkms-empty", Config{Backend: BackendGCPKMS}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if _, err := Open(context.Background(), tt.cfg); err == nil {
					t.Fatal("Open accepted an invalid config")
				}
			}
		})
	}
}

func TestPKCS11ConfigHidesPIN(t *testing.T) {
	c := Config{Backend: BackendPKCS11, PKCS11: PKCS11Config{Module: "m", TokenLabel: "t", PIN: "s3cr3t-pin", KeyLabel: "k"}}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprint(c.PKCS11), slogText(c.PKCS11)} {
		if strings.Contains(s, "s3cr3t-pin") {
			t.Fatalf("PIN printed: %s", s)
		}
	}
}

func TestGenerateGCPKMSUnsupported(t *testing.T) {
	cfg := Config{Backend: BackendGCPKMS, KMS: KMSConfig{KeyVersion: "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"}}
	if _, err := Generate(context.Background(), cfg, rotor.ECDSAP256); err == nil {
		t.Fatal("Generate succeeded for gcpkms")
	}
}

func TestCheckCertificate(t *testing.T) {
	dir := t.TempDir()
	a := must(Generate(context.Background(), Config{Backend: BackendFile, KeyFile: filepath.Join(dir, "a.key")}, rotor.ECDSAP256))
	b := must(Generate(context.Background(), Config{Backend: BackendFile, KeyFile: filepath.Join(dir, "b.key")}, rotor.ECDSAP256))
	certA := selfSigned(t, a)
	tests := []struct {
		name string
		s    rotor.Signer
		want error
	}{
		{"ok/same-key", a, nil},
		{"fail/other-key", b, ErrKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckCertificate(tt.s, certA); !errors.Is(err, tt.want) {
				t.Fatalf("CheckCertificate = %v, want %v", err, tt.want)
			}
		})
	}
}

// wrongKey claims one key's public half and signs with another: a backend
// that signs "successfully" with the wrong key.
type wrongKey struct {
	rotor.LocalSigner
	claimed crypto.PublicKey
}

func (w wrongKey) Public() crypto.PublicKey { return w.claimed }

func (wrongKey) Close() error { return nil }
