package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
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

// File names a created CA uses inside its directory.
const (
	RootCertFile   = "root.crt"
	RootKeyFile    = "root.key"
	IssuerCertFile = "issuer.crt"
	IssuerKeyFile  = "issuer.key"
	BundleFile     = "bundle.pem"
	ConfigFile     = "issuer.conf"
)

// Plan is one CA to create: a root (made here, or an existing one) and an
// issuing key made inside the chosen backend (or, for Cloud KMS, an
// existing key version), with the issuer certificate signed by the root.
// It is the only way Rotor makes a CA: `rotor-ca init` and the development
// defaults of `rotor-ca serve` both go through CreateCA.
type Plan struct {
	Dir         string
	TrustDomain string
	// Issuer says where the issuing key goes; for --signer file, IssuerKey
	// is the new key file (empty: <Dir>/issuer.key).
	Issuer  Settings
	KeyType rotor.KeyType
	// PIN is the PKCS#11 PIN from the environment, if any.
	PIN string
	// RootCert and RootKey name an existing root to sign with; empty makes
	// a new root with a file key in Dir.
	RootCert, RootKey string
	RootLifetime      time.Duration
	IssuerLifetime    time.Duration
	// Development names the CAs as development ones.
	Development bool
	Log         *slog.Logger
	// Now is when the CAs start; nil means time.Now.
	Now func() time.Time
}

// Created is what CreateCA made.
type Created struct {
	Root, Issuer *x509.Certificate
	// Settings are serve's issuer settings for it, IssuerCert included.
	Settings             Settings
	BundleFile, ConfFile string
	Created              []string // the files written, in order
}

func (p Plan) path(name string) string { return filepath.Join(p.Dir, name) }

func (p Plan) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// CreateCA makes the CA and writes its files. It never replaces a file or
// a key: anything already there stops it before the first key is made. On
// an error after something was written, the result lists what was.
func CreateCA(ctx context.Context, p Plan) (*Created, error) {
	out, sc, err := p.prepare()
	if err != nil {
		return nil, err
	}
	// An existing root is checked before anything is made; a new root is
	// made after the issuing key, so a wrong PIN or a label already taken
	// stops everything before a root exists.
	var rootKey signer.Key
	if p.RootCert != "" {
		if rootKey, err = p.loadRoot(ctx, out); err != nil {
			return nil, err
		}
		defer rootKey.Close()
	}
	key, err := p.issuingKey(ctx, sc, out)
	if err != nil {
		return nil, err
	}
	defer key.Close()
	if p.RootCert == "" {
		if rootKey, err = p.newRoot(ctx, out); err != nil {
			return out, err
		}
		defer rootKey.Close()
	}
	now := p.now()
	out.Issuer, err = rotor.CreateCACertificate(ctx, rotor.CAParams{Name: p.name("issuing CA", key.Public(), now),
		Lifetime: p.IssuerLifetime, PathLen: 0, Now: now}, key.Public(), out.Root, rootKey)
	if err != nil {
		return out, fmt.Errorf("sign the issuer certificate: %w", err)
	}
	if err := signer.CheckCertificate(key, out.Issuer); err != nil {
		return out, err
	}
	return out, p.writeFiles(out, now)
}

// prepare names the files and checks that none exists and that the
// settings can work.
func (p Plan) prepare() (*Created, signer.Config, error) {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, signer.Config{}, fmt.Errorf("create %s: %w", p.Dir, err)
	}
	out := &Created{Settings: p.Issuer, BundleFile: p.path(BundleFile), ConfFile: p.path(ConfigFile)}
	out.Settings.IssuerCert = p.path(IssuerCertFile)
	if out.Settings.Signer == signer.BackendFile && out.Settings.IssuerKey == "" {
		out.Settings.IssuerKey = p.path(IssuerKeyFile)
	}
	if err := out.Settings.validateKey(); err != nil {
		return nil, signer.Config{}, err
	}
	targets := []string{out.Settings.IssuerCert, out.ConfFile}
	if p.RootCert == "" {
		targets = append(targets, p.path(RootCertFile), p.path(RootKeyFile))
	}
	if out.Settings.Signer == signer.BackendFile {
		targets = append(targets, out.Settings.IssuerKey)
	}
	for _, f := range targets {
		if _, err := os.Lstat(f); err == nil {
			return nil, signer.Config{}, fmt.Errorf("refusing to overwrite %s: %w", f, fs.ErrExist)
		}
	}
	sc, err := out.Settings.SignerConfig(p.PIN, p.log())
	return out, sc, err
}

func (p Plan) log() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}

// issuingKey makes the issuing key in its backend; a Cloud KMS key exists
// already (gcloud makes it) and is opened.
func (p Plan) issuingKey(ctx context.Context, sc signer.Config, out *Created) (signer.Key, error) {
	var (
		key signer.Key
		err error
	)
	if sc.Backend == signer.BackendGCPKMS {
		key, err = signer.Open(ctx, sc)
	} else {
		key, err = signer.Generate(ctx, sc, p.KeyType)
	}
	if err != nil {
		return nil, fmt.Errorf("issuing key: %w", err)
	}
	if sc.Backend == signer.BackendFile {
		out.Created = append(out.Created, sc.KeyFile)
	}
	return key, nil
}

// writeFiles writes the issuer certificate, its settings file, a new
// root's certificate and the bundle.
func (p Plan) writeFiles(out *Created, now time.Time) error {
	files := []fileData{
		{out.Settings.IssuerCert, rotor.EncodeCertificates([]*x509.Certificate{out.Issuer})},
		{out.ConfFile, out.Settings.Encode("Issuer settings written by rotor-ca init on " + now.UTC().Format(time.RFC3339) +
			".\nrotor-ca serve --issuer-config reads them at start, on SIGHUP and when this file changes.")},
	}
	if p.RootCert == "" {
		files = append(files, fileData{p.path(RootCertFile), rotor.EncodeCertificates([]*x509.Certificate{out.Root})})
	}
	for _, f := range files {
		if err := fsutil.CreateFileExclusive(f.path, f.data, 0o644); err != nil {
			return err
		}
		out.Created = append(out.Created, f.path)
	}
	return p.writeBundle(out)
}

type fileData struct {
	path string
	data []byte
}

// loadRoot loads the existing root and its key and checks they match.
func (p Plan) loadRoot(ctx context.Context, out *Created) (signer.Key, error) {
	certs, err := ReadCertificates(p.RootCert, "--root-cert")
	if err != nil {
		return nil, err
	}
	if out.Root = certs[0]; !out.Root.IsCA || out.Root.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, settingsErr("--root-cert %s is not a CA certificate with keyCertSign", p.RootCert)
	}
	key, err := signer.Open(ctx, signer.Config{Backend: signer.BackendFile, KeyFile: p.RootKey, Logger: p.Log})
	if err != nil {
		return nil, fmt.Errorf("--root-key: %w", err)
	}
	if err := signer.CheckCertificate(key, out.Root); err != nil {
		key.Close()
		return nil, err
	}
	return key, nil
}

// newRoot makes a root: a file key in Dir, then its self-signed
// certificate.
func (p Plan) newRoot(ctx context.Context, out *Created) (signer.Key, error) {
	key, err := signer.Generate(ctx, signer.Config{Backend: signer.BackendFile, KeyFile: p.path(RootKeyFile)}, p.KeyType)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	out.Created = append(out.Created, p.path(RootKeyFile))
	now := p.now()
	out.Root, err = rotor.CreateCACertificate(ctx, rotor.CAParams{Name: p.name("root CA", key.Public(), now),
		Lifetime: p.RootLifetime, PathLen: 1, Now: now}, key.Public(), nil, key)
	if err != nil {
		key.Close()
		return nil, fmt.Errorf("create the root certificate: %w", err)
	}
	return key, nil
}

// writeBundle writes the trust bundle, the root alone, unless the same
// bundle is there already (a development directory from before bundle.pem).
func (p Plan) writeBundle(out *Created) error {
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
func (p Plan) name(what string, pub crypto.PublicKey, now time.Time) string {
	if p.Development {
		return fmt.Sprintf("Rotor development %s (%s)", what, p.TrustDomain)
	}
	spki, _ := x509.MarshalPKIXPublicKey(pub) // a key the backend made or opened always marshals
	sum := sha256.Sum256(spki)
	return fmt.Sprintf("Rotor %s (%s) %s %x", what, p.TrustDomain, now.UTC().Format("2006-01-02"), sum[:4])
}
