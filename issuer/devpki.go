package issuer

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

// Development is the embedded default that makes "rotor-ca serve" work
// with no flags: on first start, a root CA and an issuing CA with file keys
// in Dir, made by CreateCA as `rotor-ca init` makes them; afterwards, the
// same ones. Production runs `rotor-ca init` with an HSM or KMS signer and
// points serve at what it made.
type Development struct {
	Dir            string
	TrustDomain    string
	RootLifetime   time.Duration
	IssuerLifetime time.Duration
	Log            *slog.Logger
	Now            func() time.Time
}

func (d Development) path(name string) string { return filepath.Join(d.Dir, name) }

// Ensure makes whatever is missing, both CAs on a fresh directory or a new
// issuer under the existing root when only the issuer is gone, and returns
// the issuer settings and the trust bundle to serve.
func (d Development) Ensure(ctx context.Context) (Settings, string, error) {
	settings := Defaults()
	settings.IssuerCert, settings.IssuerKey = d.path(IssuerCertFile), d.path(IssuerKeyFile)
	root, issuer := exists(d.path(RootCertFile)), exists(settings.IssuerCert)
	plan := Plan{Dir: d.Dir, TrustDomain: d.TrustDomain, Issuer: settings, RootLifetime: d.RootLifetime,
		IssuerLifetime: d.IssuerLifetime, Development: true, Log: d.Log, Now: d.Now}
	switch {
	case root && issuer:
		// A directory from before bundle.pem serves its root alone.
		if !exists(d.path(BundleFile)) {
			pemBytes, err := os.ReadFile(d.path(RootCertFile))
			if err == nil {
				err = fsutil.CreateFileExclusive(d.path(BundleFile), pemBytes, 0o644)
			}
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return settings, "", err
			}
		}
		return settings, d.path(BundleFile), nil
	case !root && !issuer:
	case root:
		plan.RootCert, plan.RootKey = d.path(RootCertFile), d.path(RootKeyFile)
		if err := d.dropStaleConfig(); err != nil {
			return settings, "", err
		}
	default:
		return settings, "", fmt.Errorf("%s exists without %s: restore the root or remove the directory",
			settings.IssuerCert, d.path(RootCertFile))
	}
	ca, err := CreateCA(ctx, plan)
	if err != nil {
		return settings, "", err
	}
	log := plan.log()
	if !root {
		log.Warn("created a development root CA: its key is a plain file, fine for development only",
			"cert", d.path(RootCertFile), "key", d.path(RootKeyFile))
	}
	log.Warn("created a development issuing CA", "cert", ca.Settings.IssuerCert, "key", ca.Settings.IssuerKey)
	return ca.Settings, ca.BundleFile, nil
}

// dropStaleConfig removes an issuer.conf that names the issuer that is
// gone, so the new issuer's can take its place; any other is kept, and
// CreateCA refuses to overwrite it.
func (d Development) dropStaleConfig() error {
	conf := d.path(ConfigFile)
	if !exists(conf) {
		return nil
	}
	s, err := Settings{}.WithFile(conf, nil)
	if err != nil || s.IssuerCert != d.path(IssuerCertFile) {
		return nil
	}
	return os.Remove(conf)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// FromInit finds the CA `rotor-ca init` (or an earlier development start)
// made in dir: its issuer.conf and bundle.pem, and the signer backend
// issuer.conf names. ok is false when dir has no issuer.conf, or one whose
// file-key issuer certificate is gone: Development makes what is missing
// there (a new issuer under the existing root).
func FromInit(dir string) (conf, bundle, backend string, ok bool, err error) {
	conf = filepath.Join(dir, ConfigFile)
	s, err := Defaults().WithFile(conf, nil)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "", "", false, nil
	case err != nil:
		return "", "", "", false, err
	case s.Signer == signer.BackendFile && !exists(s.IssuerCert):
		return "", "", "", false, nil
	}
	return conf, filepath.Join(dir, BundleFile), s.Signer, true, nil
}
