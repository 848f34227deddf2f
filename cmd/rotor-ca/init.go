package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/checkpoint"
	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/internal/storecmd"
	"github.com/rotor-dev/rotor/issuer"
	"github.com/rotor-dev/rotor/signer"
)

// initConfig is what "rotor-ca init" is told.
type initConfig struct {
	storecmd.Flags
	issuer.Plan
	KeyAlgorithm string
}

func (c *initConfig) register(f *cli.FlagSet) {
	c.Flags.Register(f, "directory for the new CA's certificates, bundle, issuer.conf and file keys", false)
	c.Issuer.RegisterFlags(f.FlagSet, false)
	f.StringVar(&c.TrustDomain, "trust-domain", "cluster.local", "trust domain, named in the CA certificates")
	f.StringVar(&c.RootCert, "root-cert", "", "sign with this existing root CA certificate instead of creating a root (with --root-key)")
	f.StringVar(&c.RootKey, "root-key", "", "the existing root's PEM private key file, mode 0600 (with --root-cert)")
	f.DurationVar(&c.RootLifetime, "root-lifetime", 10*365*24*time.Hour, "lifetime of a created root CA")
	f.DurationVar(&c.IssuerLifetime, "issuer-lifetime", 365*24*time.Hour, "lifetime of the issuing CA (cut to the root's)")
	f.StringVar(&c.KeyAlgorithm, "key-algorithm", string(rotor.ECDSAP256), "algorithm of the keys created: ecdsa-p256, ecdsa-p384, ed25519 (--signer file), rsa-2048 or rsa-3072")
}

// validate checks the flags and makes every path absolute, so the printed
// serve command works from anywhere.
func (c *initConfig) validate() error {
	if err := rotor.ValidateTrustDomain(c.TrustDomain); err != nil {
		return cli.Usagef("%s", rotor.ErrorMessageOf(err))
	}
	if c.RootLifetime <= 0 || c.IssuerLifetime <= 0 {
		return cli.Usagef("--root-lifetime and --issuer-lifetime must be positive")
	}
	if (c.RootCert == "") != (c.RootKey == "") {
		return cli.Usagef("--root-cert and --root-key go together")
	}
	kt, err := rotor.ParseKeyType(c.KeyAlgorithm)
	if err != nil {
		return cli.Usagef("--key-algorithm: %s", rotor.ErrorMessageOf(err))
	}
	if kt == rotor.Ed25519 && c.Issuer.Signer != signer.BackendFile {
		// PKCS#11 tokens make ECDSA and RSA keys here, and Cloud KMS keys
		// are made by gcloud.
		return cli.Usagef("--key-algorithm ed25519 makes file keys: use it with --signer file")
	}
	c.KeyType, c.Dir = kt, c.DataDir
	for _, p := range []*string{&c.RootCert, &c.RootKey, &c.Issuer.IssuerKey, &c.Issuer.PKCS11PINFile} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	return nil
}

// runInit creates a CA for a signer backend: a root (or an existing one)
// and an issuing key inside the backend with its certificate, then prints
// how to serve it.
func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c initConfig
	f := storecmd.NewFlagSet("init", stderr)
	c.register(f)
	if err := c.Parse(f, args, stderr); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	c.Plan.Log, c.Plan.PIN = c.Flags.Log, os.Getenv(pinEnv)
	ca, err := issuer.CreateCA(ctx, c.Plan)
	if err != nil {
		if ca != nil && len(ca.Created) > 0 {
			c.Flags.Log.Error("init failed half-way; remove what it created before trying again", "created", ca.Created)
		}
		return settingsErr(err)
	}
	c.Flags.Log.Info("created the CA", "dir", c.DataDir, "signer", ca.Settings.Signer, "files", ca.Created)
	if err := checkpoint.EnsureKey(c.DataDir, c.TrustDomain, c.Flags.Log); err != nil {
		return err
	}
	return ca.WriteSummary(stdout, c.TrustDomain, c.RootCert, pinEnv)
}
