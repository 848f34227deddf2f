package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/fsutil"
)

// openFile loads a PEM private key. A key others can read is refused: the
// issuing key is the CA, and a world-readable copy is a compromise waiting
// to happen. A group-readable key is allowed (Kubernetes fsGroup mounts
// secrets that way) with a warning.
func openFile(ctx context.Context, cfg Config) (rotor.Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := cfg.KeyFile
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signer file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("signer file: %s has mode %04o, so other users can use the issuing key; "+
			"chmod 0600 it (in Kubernetes set the secret volume's defaultMode to 0400)", path, perm)
	} else if perm&0o070 != 0 {
		cfg.logger().Warn("issuing key file is accessible to its group; 0600 is safer", "path", path, "mode", fmt.Sprintf("%04o", perm))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signer file: %w", err)
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("signer file %s: %w", path, err)
	}
	return rotor.LocalSigner{Key: key}, nil
}

// ParsePrivateKeyPEM returns the first private key in data: PKCS#8
// ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
// OpenSSL's "EC PARAMETERS" block before a SEC1 key is skipped. Only ECDSA
// P-256/P-384 and RSA of 2048 bits or more are accepted.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key found")
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; store it unencrypted with mode 0600, or use an HSM or KMS")
		default:
			return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T is not a signing key", key)
		}
		if err := checkKey(s.Public()); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// generateFile writes a new key as PKCS#8 PEM with mode 0600. The file
// appears complete or not at all, and an existing file is never replaced
// (the error wraps fs.ErrExist).
func generateFile(ctx context.Context, cfg Config, alg Algorithm) (rotor.Signer, error) {
	if _, err := os.Lstat(cfg.KeyFile); err == nil {
		return nil, fmt.Errorf("signer file: refusing to overwrite %s: %w", cfg.KeyFile, fs.ErrExist)
	}
	key, err := newSoftwareKey(alg)
	if err != nil {
		return nil, fmt.Errorf("signer file: generate %s: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("signer file: marshal %s key: %w", alg, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := fsutil.CreateFileExclusive(cfg.KeyFile, data, 0o600); err != nil {
		return nil, fmt.Errorf("signer file: %w", err)
	}
	return rotor.LocalSigner{Key: key}, nil
}

func newSoftwareKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	default:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
}
