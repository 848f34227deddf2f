package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/fsutil"
	"github.com/rotor-dev/rotor/signer"
)

// File names a created CA uses inside its directory.
const (
	rootCertFile     = "root.crt"
	rootKeyFile      = "root.key"
	issuerCertFile   = "issuer.crt"
	issuerKeyFile    = "issuer.key"
	bundleFile       = "bundle.pem"
	issuerConfigFile = "issuer.conf"
)

// caPlan is one CA to create: a root (made here, or an existing one) and an
// issuing key made inside the chosen backend (or, for Cloud KMS, an
// existing key version), with the issuer certificate signed by the root.
// It is the only way Rotor makes a CA: `rotor-ca init` and the development
// defaults of `serve` both go through createCA.
type caPlan struct {
	Dir         string
	TrustDomain string
	// Issuer says where the issuing key goes; for --signer file, IssuerKey
	// is the new key file (empty: <Dir>/issuer.key).
	Issuer    issuerSettings
	Algorithm signer.Algorithm
	// RootCert and RootKey name an existing root to sign with; empty makes
	// a new root with a file key in Dir.
	RootCert, RootKey string
	RootLifetime      time.Duration
	IssuerLifetime    time.Duration
	// Development names the CAs as development ones.
	Development bool
	Log         *slog.Logger
}

// createdCA is what createCA made.
type createdCA struct {
	Root, Issuer *x509.Certificate
	// Settings are serve's issuer settings for it, IssuerCert included.
	Settings             issuerSettings
	BundleFile, ConfFile string
	Created              []string // the files written, in order
}

func (p caPlan) path(name string) string { return filepath.Join(p.Dir, name) }

// createCA makes the CA and writes its files. It never replaces a file or
// a key: anything already there stops it before the first key is made.
func createCA(ctx context.Context, p caPlan) (*createdCA, error) {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", p.Dir, err)
	}
	out := &createdCA{Settings: p.Issuer, BundleFile: p.path(bundleFile), ConfFile: p.path(issuerConfigFile)}
	out.Settings.IssuerCert = p.path(issuerCertFile)
	if out.Settings.Signer == signer.BackendFile && out.Settings.IssuerKey == "" {
		out.Settings.IssuerKey = p.path(issuerKeyFile)
	}
	if err := out.Settings.validateKey(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	targets := []string{out.Settings.IssuerCert, out.ConfFile}
	if p.RootCert == "" {
		targets = append(targets, p.path(rootCertFile), p.path(rootKeyFile))
	}
	if out.Settings.Signer == signer.BackendFile {
		targets = append(targets, out.Settings.IssuerKey)
	}
	for _, f := range targets {
		if _, err := os.Lstat(f); err == nil {
			return nil, fmt.Errorf("refusing to overwrite %s: %w", f, fs.ErrExist)
		}
	}
	sc, err := out.Settings.signerConfig(p.Log)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	// An existing root is checked before anything is made; a new root is
	// made after the issuing key, so a wrong PIN or a label already taken
	// stops everything before a root exists.
	var rootKey, key rotor.Signer
	if p.RootCert != "" {
		if rootKey, err = p.loadRoot(ctx, out); err != nil {
			return nil, err
		}
	}
	if sc.Backend == signer.BackendGCPKMS {
		key, err = signer.Open(ctx, sc)
	} else {
		key, err = signer.Generate(ctx, sc, p.Algorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("issuing key: %w", err)
	}
	if c, ok := key.(io.Closer); ok {
		defer c.Close()
	}
	if sc.Backend == signer.BackendFile {
		out.Created = append(out.Created, sc.KeyFile)
	}
	if p.RootCert == "" {
		if rootKey, err = p.newRoot(ctx, out); err != nil {
			return out, err
		}
	}
	now := time.Now()
	out.Issuer, err = rotor.CreateCACertificate(ctx, rotor.CAParams{Name: p.name("issuing CA", key.Public(), now),
		Lifetime: p.IssuerLifetime, PathLen: 0, Now: now}, key.Public(), out.Root, rootKey)
	if err != nil {
		return out, fmt.Errorf("sign the issuer certificate: %w", err)
	}
	if err := signer.CheckCertificate(key, out.Issuer); err != nil {
		return out, err
	}
	files := []fileData{
		{out.Settings.IssuerCert, rotor.EncodeCertificates([]*x509.Certificate{out.Issuer})},
		{out.ConfFile, out.Settings.encode("Issuer settings written by rotor-ca init on " + now.UTC().Format(time.RFC3339) +
			".\nrotor-ca serve --issuer-config reads them at start, on SIGHUP and when this file changes.")},
	}
	if p.RootCert == "" {
		files = append(files, fileData{p.path(rootCertFile), rotor.EncodeCertificates([]*x509.Certificate{out.Root})})
	}
	for _, f := range files {
		if err := fsutil.CreateFileExclusive(f.path, f.data, 0o644); err != nil {
			return out, err
		}
		out.Created = append(out.Created, f.path)
	}
	return out, p.writeBundle(out)
}

type fileData struct {
	path string
	data []byte
}

// loadRoot loads the existing root and its key and checks they match.
func (p caPlan) loadRoot(ctx context.Context, out *createdCA) (rotor.Signer, error) {
	pemBytes, err := os.ReadFile(p.RootCert)
	if err != nil {
		return nil, fmt.Errorf("--root-cert: %w", err)
	}
	certs, err := rotor.ParseCertificates(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("--root-cert %s: %w", p.RootCert, err)
	}
	if out.Root = certs[0]; !out.Root.IsCA || out.Root.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("--root-cert %s is not a CA certificate with keyCertSign", p.RootCert)
	}
	key, err := signer.Open(ctx, signer.Config{Backend: signer.BackendFile, KeyFile: p.RootKey, Logger: p.Log})
	if err != nil {
		return nil, fmt.Errorf("--root-key: %w", err)
	}
	return key, signer.CheckCertificate(key, out.Root)
}

// newRoot makes a root: a file key in Dir, then its self-signed
// certificate.
func (p caPlan) newRoot(ctx context.Context, out *createdCA) (rotor.Signer, error) {
	key, err := signer.Generate(ctx, signer.Config{Backend: signer.BackendFile, KeyFile: p.path(rootKeyFile)}, p.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	out.Created = append(out.Created, p.path(rootKeyFile))
	now := time.Now()
	out.Root, err = rotor.CreateCACertificate(ctx, rotor.CAParams{Name: p.name("root CA", key.Public(), now),
		Lifetime: p.RootLifetime, PathLen: 1, Now: now}, key.Public(), nil, key)
	if err != nil {
		return nil, fmt.Errorf("create the root certificate: %w", err)
	}
	return key, nil
}

// writeBundle writes the trust bundle, the root alone, unless the same
// bundle is there already (a development directory from before bundle.pem).
func (p caPlan) writeBundle(out *createdCA) error {
	data := rotor.EncodeCertificates([]*x509.Certificate{out.Root})
	err := fsutil.CreateFileExclusive(out.BundleFile, data, 0o644)
	if errors.Is(err, fs.ErrExist) {
		if old, rerr := os.ReadFile(out.BundleFile); rerr == nil && bytes.Equal(old, data) {
			return nil
		}
		return fmt.Errorf("refusing to overwrite %s, which holds other roots: %w", out.BundleFile, err)
	}
	if err == nil {
		out.Created = append(out.Created, out.BundleFile)
	}
	return err
}

// name is a CA's subject common name. The date and the start of the key ID
// (the SHA-256 of the public key, as in the subject key identifier) tell
// the CAs of successive rotations apart, even two made the same second.
func (p caPlan) name(what string, pub crypto.PublicKey, now time.Time) string {
	if p.Development {
		return fmt.Sprintf("Rotor development %s (%s)", what, p.TrustDomain)
	}
	spki, _ := x509.MarshalPKIXPublicKey(pub) // a key the backend made or opened always marshals
	sum := sha256.Sum256(spki)
	return fmt.Sprintf("Rotor %s (%s) %s %x", what, p.TrustDomain, now.UTC().Format("2006-01-02"), sum[:4])
}
