package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor/internal/fsutil"
	"github.com/rotor-dev/rotor/signer"
)

// devPKI creates, on first start, a root CA and an issuing CA with file keys
// in dir, through the same createCA as `rotor-ca init`, and reuses them
// afterwards. It is the embedded default that makes "rotor-ca serve" work
// with no flags; production runs `rotor-ca init` with an HSM or KMS signer
// and points serve at what it made.
type devPKI struct {
	Dir            string
	TrustDomain    string
	RootLifetime   time.Duration
	IssuerLifetime time.Duration
	Log            *slog.Logger
}

func (d devPKI) path(name string) string { return filepath.Join(d.Dir, name) }

// ensure makes whatever is missing, both CAs on a fresh directory or a new
// issuer under the existing root when only the issuer is gone, and returns
// the issuer settings and the trust bundle to serve.
func (d devPKI) ensure(ctx context.Context) (issuerSettings, string, error) {
	settings := issuerSettings{IssuerCert: d.path(issuerCertFile), IssuerKey: d.path(issuerKeyFile),
		Signer: signer.BackendFile}
	root, issuer := exists(d.path(rootCertFile)), exists(settings.IssuerCert)
	plan := caPlan{Dir: d.Dir, TrustDomain: d.TrustDomain, Issuer: settings, RootLifetime: d.RootLifetime,
		IssuerLifetime: d.IssuerLifetime, Development: true, Log: d.Log}
	switch {
	case root && issuer:
		// A directory from before bundle.pem serves its root alone.
		if !exists(d.path(bundleFile)) {
			pemBytes, err := os.ReadFile(d.path(rootCertFile))
			if err == nil {
				err = fsutil.CreateFileExclusive(d.path(bundleFile), pemBytes, 0o644)
			}
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return settings, "", err
			}
		}
		return settings, d.path(bundleFile), nil
	case !root && !issuer:
	case root:
		plan.RootCert, plan.RootKey = d.path(rootCertFile), d.path(rootKeyFile)
	default:
		return settings, "", fmt.Errorf("%s exists without %s: restore the root or remove the directory",
			settings.IssuerCert, d.path(rootCertFile))
	}
	ca, err := createCA(ctx, plan)
	if err != nil {
		return settings, "", err
	}
	if !root {
		d.Log.Warn("created a development root CA: its key is a plain file, fine for development only",
			"cert", d.path(rootCertFile), "key", d.path(rootKeyFile))
	}
	d.Log.Warn("created a development issuing CA", "cert", ca.Settings.IssuerCert, "key", ca.Settings.IssuerKey)
	return ca.Settings, ca.BundleFile, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
