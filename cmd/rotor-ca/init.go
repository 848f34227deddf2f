package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/signer"
	"github.com/rotor-dev/rotor/store"
)

// initConfig is what "rotor-ca init" is told.
type initConfig struct {
	commonFlags
	issuer         issuerSettings
	TrustDomain    string
	RootCert       string
	RootKey        string
	RootLifetime   time.Duration
	IssuerLifetime time.Duration
	KeyAlgorithm   string
}

func (c *initConfig) register(fs *flag.FlagSet) {
	c.registerDirAndLog(fs, "directory for the new CA's certificates, bundle, issuer.conf and file keys")
	c.issuer.register(fs, false)
	fs.StringVar(&c.TrustDomain, "trust-domain", "cluster.local", "trust domain, named in the CA certificates")
	fs.StringVar(&c.RootCert, "root-cert", "", "sign with this existing root CA certificate instead of creating a root (with --root-key)")
	fs.StringVar(&c.RootKey, "root-key", "", "the existing root's PEM private key file, mode 0600 (with --root-cert)")
	fs.DurationVar(&c.RootLifetime, "root-lifetime", 10*365*24*time.Hour, "lifetime of a created root CA")
	fs.DurationVar(&c.IssuerLifetime, "issuer-lifetime", 365*24*time.Hour, "lifetime of the issuing CA (cut to the root's)")
	fs.StringVar(&c.KeyAlgorithm, "key-algorithm", string(signer.ECDSAP256), "algorithm of the keys created: ecdsa-p256, ecdsa-p384, rsa-2048 or rsa-3072")
}

// validate checks the flags and makes every path absolute, so the printed
// serve command works from anywhere.
func (c *initConfig) validate() error {
	if err := c.resolve(); err != nil {
		return err
	}
	if err := rotor.ValidateTrustDomain(c.TrustDomain); err != nil {
		return fmt.Errorf("%w: %v", errUsage, rotor.ErrorMessageOf(err))
	}
	if c.RootLifetime <= 0 || c.IssuerLifetime <= 0 {
		return fmt.Errorf("%w: --root-lifetime and --issuer-lifetime must be positive", errUsage)
	}
	if (c.RootCert == "") != (c.RootKey == "") {
		return fmt.Errorf("%w: --root-cert and --root-key go together", errUsage)
	}
	switch signer.Algorithm(c.KeyAlgorithm) {
	case signer.ECDSAP256, signer.ECDSAP384, signer.RSA2048, signer.RSA3072:
	default:
		return fmt.Errorf("%w: --key-algorithm %q: want ecdsa-p256, ecdsa-p384, rsa-2048 or rsa-3072", errUsage, c.KeyAlgorithm)
	}
	for _, p := range []*string{&c.RootCert, &c.RootKey, &c.issuer.IssuerKey, &c.issuer.PKCS11PINFile} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	return nil
}

// runInit creates a CA for a signer backend: a root (or an existing one)
// and an issuing key inside the backend with its certificate, then prints
// how to serve it.
func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c initConfig
	fs := newFlagSet("init", stderr)
	c.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	ca, err := createCA(ctx, caPlan{Dir: c.DataDir, TrustDomain: c.TrustDomain, Issuer: c.issuer,
		Algorithm: signer.Algorithm(c.KeyAlgorithm), RootCert: c.RootCert, RootKey: c.RootKey,
		RootLifetime: c.RootLifetime, IssuerLifetime: c.IssuerLifetime, Log: log})
	if err != nil {
		if ca != nil && len(ca.Created) > 0 {
			log.Error("init failed half-way; remove what it created before trying again", "created", ca.Created)
		}
		return err
	}
	log.Info("created the CA", "dir", c.DataDir, "signer", ca.Settings.Signer, "files", ca.Created)
	return printServe(stdout, &c, ca)
}

// printServe tells the operator what was made and the serve command that
// uses it.
func printServe(w io.Writer, c *initConfig, ca *createdCA) error {
	rootNote := "created"
	if c.RootCert != "" {
		rootNote = "existing, from " + c.RootCert
	}
	tail := []string{"--trust-bundle", ca.BundleFile, "--trust-domain", c.TrustDomain}
	lines := []string{
		fmt.Sprintf("# root (%s): sha256=%s subject=%q not_after=%s", rootNote, store.RootFingerprint(ca.Root.Raw),
			ca.Root.Subject.String(), ca.Root.NotAfter.UTC().Format(time.RFC3339)),
		fmt.Sprintf("# issuer (key in %s): key_id=%s subject=%q not_after=%s", ca.Settings.Signer,
			hex.EncodeToString(ca.Issuer.SubjectKeyId), ca.Issuer.Subject.String(), ca.Issuer.NotAfter.UTC().Format(time.RFC3339)),
		"# Serve it with (serve re-reads " + issuerConfigFile + " and the bundle on SIGHUP and when they change):",
		shellJoin(append([]string{"rotor-ca", "serve", "--issuer-config", ca.ConfFile}, tail...)),
		"# or, with the same settings as flags:",
		shellJoin(append(append([]string{"rotor-ca", "serve"}, ca.Settings.flags()...), tail...)),
	}
	if ca.Settings.Signer == signer.BackendPKCS11 && ca.Settings.PKCS11PINFile == "" {
		lines = append(lines, "# with the token's PIN in ROTOR_PKCS11_PIN (or add --pkcs11-pin-file FILE)")
	}
	_, err := fmt.Fprintln(w, strings.Join(lines, "\n"))
	return err
}

// shellJoin quotes what a POSIX shell would split or expand.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
