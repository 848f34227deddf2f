package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/fsutil"
	"github.com/rotor-dev/rotor/signer"
)

// Development PKI file names inside --data-dir.
const (
	rootCertFile   = "root.crt"
	rootKeyFile    = "root.key"
	issuerCertFile = "issuer.crt"
	issuerKeyFile  = "issuer.key"
)

// devPKI creates, on first start, a root CA and an issuing CA with file keys
// in dir, and reuses them afterwards. It is the embedded default that makes
// "rotor-ca serve" work with no flags; production points --issuer-cert,
// --issuer-key (or an HSM/KMS signer) and --trust-bundle elsewhere.
type devPKI struct {
	Dir            string
	TrustDomain    string
	RootLifetime   time.Duration
	IssuerLifetime time.Duration
	Log            *slog.Logger
}

func (d devPKI) path(name string) string { return filepath.Join(d.Dir, name) }

// ensure makes whatever is missing: both CAs on a fresh directory, or a new
// issuer under the existing root when only the issuer is gone.
func (d devPKI) ensure(ctx context.Context) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	rootCert, rootKey, err := d.load(ctx, rootCertFile, rootKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		rootCert, rootKey, err = d.create(ctx, rootCertFile, rootKeyFile, rotor.CAParams{
			Name: "Rotor development root CA (" + d.TrustDomain + ")", Lifetime: d.RootLifetime, PathLen: 1}, nil, nil)
		if err == nil {
			d.Log.Warn("created a development root CA: its key is a plain file, fine for development only",
				"cert", d.path(rootCertFile), "key", d.path(rootKeyFile))
		}
	}
	if err != nil {
		return err
	}
	_, _, err = d.load(ctx, issuerCertFile, issuerKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		_, _, err = d.create(ctx, issuerCertFile, issuerKeyFile, rotor.CAParams{
			Name: "Rotor development issuing CA (" + d.TrustDomain + ")", Lifetime: d.IssuerLifetime, PathLen: 0},
			rootCert, rootKey)
		if err == nil {
			d.Log.Warn("created a development issuing CA", "cert", d.path(issuerCertFile), "key", d.path(issuerKeyFile))
		}
	}
	return err
}

func (d devPKI) load(ctx context.Context, certName, keyName string) (*x509.Certificate, rotor.Signer, error) {
	certPEM, err := os.ReadFile(d.path(certName))
	if err != nil {
		return nil, nil, err
	}
	certs, err := rotor.ParseCertificates(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d.path(certName), err)
	}
	key, err := loadKeyFile(ctx, d.path(keyName))
	if err != nil {
		return nil, nil, err
	}
	return certs[0], key, nil
}

// create makes a CA certificate for the key in keyName, generating the key
// first if there is none. The key is written exclusively, so two processes
// racing on a fresh directory end up using the same key.
func (d devPKI) create(ctx context.Context, certName, keyName string, p rotor.CAParams,
	parent *x509.Certificate, parentKey rotor.Signer) (*x509.Certificate, rotor.Signer, error) {
	if err := createKeyFile(d.path(keyName)); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, err
	}
	key, err := loadKeyFile(ctx, d.path(keyName))
	if err != nil {
		return nil, nil, err
	}
	if parentKey == nil {
		parentKey = key
	}
	p.Now = time.Now()
	cert, err := rotor.CreateCACertificate(ctx, p, key.Public(), parent, parentKey)
	if err != nil {
		return nil, nil, err
	}
	if err := fsutil.WriteFileAtomic(d.path(certName), rotor.EncodeCertificates([]*x509.Certificate{cert}), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// createKeyFile writes a new P-256 key as PKCS#8 PEM, mode 0600, failing
// with fs.ErrExist if the file is there.
func createKeyFile(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", path, err)
	}
	return fsutil.CreateFileExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func loadKeyFile(ctx context.Context, path string) (rotor.Signer, error) {
	return signer.Open(ctx, signer.Config{Backend: "file", KeyFile: path})
}
