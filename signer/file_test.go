package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/rotor-dev/rotor"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// must is for test set-up that cannot fail short of a broken machine.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func writeKey(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "issuer.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask does not apply to chmod
		t.Fatal(err)
	}
	return path
}

func TestOpenFile(t *testing.T) {
	p256 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	p384 := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	p521 := must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader))
	rsa2048 := must(rsa.GenerateKey(rand.Reader, 2048))
	rsa1024 := must(rsa.GenerateKey(rand.Reader, 1024))
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte { return pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(k))) }
	sec1 := func(k *ecdsa.PrivateKey) []byte { return pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(k))) }
	// What `openssl ecparam -genkey -name prime256v1` writes: the curve OID first.
	ecParams := pemBlock("EC PARAMETERS", must(asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})))
	spki := pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&p256.PublicKey)))

	tests := []struct {
		name string
		pem  []byte
		mode os.FileMode
		want crypto.PublicKey // nil: Open must fail
	}{
		{"ok/pkcs8-ecdsa-p256", pkcs8(p256), 0o600, &p256.PublicKey},
		{"ok/pkcs8-ecdsa-p384", pkcs8(p384), 0o400, &p384.PublicKey},
		{"ok/pkcs8-rsa-2048", pkcs8(rsa2048), 0o600, &rsa2048.PublicKey},
		{"ok/sec1-ecdsa-p256", sec1(p256), 0o600, &p256.PublicKey},
		{"ok/sec1-ecdsa-p384", sec1(p384), 0o600, &p384.PublicKey},
		{"ok/sec1-after-ec-parameters", append(ecParams, sec1(p256)...), 0o600, &p256.PublicKey},
		{"ok/pkcs1-rsa-2048", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)), 0o600, &rsa2048.PublicKey},
		{"ok/group-readable", pkcs8(p256), 0o640, &p256.PublicKey},
		{"fail/world-readable", pkcs8(p256), 0o644, nil},
		{"fail/world-writable", pkcs8(p256), 0o602, nil},
		{"fail/public-key", spki, 0o600, nil},
		{"fail/certificate", pemBlock("CERTIFICATE", []byte{0x30, 0x00}), 0o600, nil},
		{"fail/encrypted-pkcs8", pemBlock("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x00}), 0o600, nil},
		{"ok/pkcs8-ed25519", pkcs8(ed), 0o600, ed.Public()},
		{"fail/ecdsa-p521", sec1(p521), 0o600, nil},
		{"fail/rsa-1024", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024)), 0o600, nil},
		{"fail/sec1-in-pkcs8-block", pemBlock("PRIVATE KEY", must(x509.MarshalECPrivateKey(p256))), 0o600, nil},
		{"fail/not-pem", []byte("not a key\n"), 0o600, nil},
		{"fail/empty", nil, 0o600, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeKey(t, tt.pem, tt.mode)
			s, err := Open(context.Background(), Config{Backend: BackendFile, KeyFile: path})
			if tt.want == nil {
				if err == nil {
					t.Fatalf("Open succeeded; want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !rotor.SamePublicKey(s.Public(), tt.want) {
				t.Fatalf("Open gave public key %T, not the file's", s.Public())
			}
			selfSigned(t, s)
		})
	}
}

func TestOpenFileMissing(t *testing.T) {
	_, err := Open(context.Background(), Config{Backend: BackendFile, KeyFile: filepath.Join(t.TempDir(), "absent.key")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestGenerateFile(t *testing.T) {
	tests := []struct {
		name string
		alg  rotor.KeyType
		want string // curve name or "RSA-<bits>"
	}{
		{"ok/default-is-ecdsa-p256", "", "P-256"},
		{"ok/ecdsa-p256", rotor.ECDSAP256, "P-256"},
		{"ok/ecdsa-p384", rotor.ECDSAP384, "P-384"},
		{"ok/rsa-2048", rotor.RSA2048, "RSA-2048"},
		{"ok/ed25519", rotor.Ed25519, "Ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Backend: BackendFile, KeyFile: filepath.Join(t.TempDir(), "issuer.key")}
			s, err := Generate(context.Background(), cfg, tt.alg)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if got := keyName(s.Public()); got != tt.want {
				t.Fatalf("generated %s, want %s", got, tt.want)
			}
			fi, err := os.Stat(cfg.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
			}
			b, _ := pem.Decode(must(os.ReadFile(cfg.KeyFile)))
			if b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("key file is not a PKCS#8 PEM block")
			}
			reopened, err := Open(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Open the generated key: %v", err)
			}
			if !rotor.SamePublicKey(reopened.Public(), s.Public()) {
				t.Fatal("reopened key differs from the generated one")
			}
			selfSigned(t, reopened)
		})
	}
}

func TestGenerateFileRefuses(t *testing.T) {
	t.Run("fail/exists", func(t *testing.T) {
		path := writeKey(t, []byte("keep me"), 0o600)
		_, err := Generate(context.Background(), Config{Backend: BackendFile, KeyFile: path}, rotor.ECDSAP256)
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Generate over an existing file = %v, want fs.ErrExist", err)
		}
		if got := string(must(os.ReadFile(path))); got != "keep me" {
			t.Fatalf("existing file was changed to %q", got)
		}
	})
	t.Run("fail/unknown-algorithm", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "issuer.key")
		if _, err := Generate(context.Background(), Config{Backend: BackendFile, KeyFile: path}, "dsa-1024"); err == nil {
			t.Fatal("Generate(dsa-1024) succeeded")
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a file was written for a refused algorithm: %v", err)
		}
	})
}

func keyName(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve.Params().Name
	case *rsa.PublicKey:
		return "RSA-" + itoa(k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "unknown"
}
