// Command rotor-ca is Rotor's certificate authority: it signs workload CSRs
// after authenticating them and records every decision before it answers.
// This package reads the configuration and wires the library's pieces.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/issuer"
	"github.com/rotor-dev/rotor/store"
)

const usage = `rotor-ca: the Rotor certificate authority

Usage:
  rotor-ca serve [flags]          run the CA (no flags: development defaults in ./rotor-data);
                                  SIGHUP reloads the issuer and trust bundle
  rotor-ca init [flags]           create a root and an issuing key in a signer backend
                                  (file, pkcs11, gcpkms); prints the serve command
  rotor-ca token create [flags]   create a static bearer token for an identity (or --admin); prints it once
  rotor-ca token list [flags]     every token: subject, identity, created, last used, expiry, state
  rotor-ca token revoke SUBJECT --reason WHY
                                  revoke a token: it fails at once, and so do the renewals it began
  rotor-ca acme eab create --namespace NS --service-account SA [--expires-in D]
                                  an ACME External Account Binding key for an identity; prints "KID HMAC" once
  rotor-ca acme eab list          every EAB key: ID, identity, created, expiry, bound account, state
  rotor-ca acme eab revoke KID --reason WHY
                                  revoke an unused EAB key (its HMAC key is erased)
  rotor-ca identity deny NS/SA --reason WHY [--revoke]
                                  the kill switch: refuse an identity on every replica
  rotor-ca identity allow NS/SA --reason WHY
                                  take an identity off the deny list
  rotor-ca certificate revoke SERIAL [--reason keyCompromise] [--comment WHY]
                                  revoke one certificate: no more mTLS renewal, on the CRL
  rotor-ca audit verify [--checkpoint FILE] [--verifier-key KEY]
                                  recompute the tamper-evident audit chain; exit 0 only when intact
  rotor-ca audit checkpoint       sign the chain's head now and print it, for an auditor to keep
  rotor-ca roots status [flags]   how many live identities hold a root (root rotation);
                                  exit 0 when all do, 3 when not yet
  rotor-ca migrate [flags]        apply the audit store's schema migrations
  rotor-ca help                   this text; "rotor-ca COMMAND --help" lists a command's flags

Every flag has an environment twin: --cert-ttl is also ROTOR_CERT_TTL.
`

// envPrefix starts every setting's environment variable.
const envPrefix = "ROTOR_"

// pinEnv holds the PKCS#11 PIN: never a flag, which ps would show.
const pinEnv = envPrefix + "PKCS11_PIN"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Run(ctx, "rotor-ca", usage, []cli.Command{{Name: "serve", Run: runServe}, {Name: "init", Run: runInit},
		{Name: "token create", Run: runTokenCreate}, {Name: "token list", Run: runTokenList},
		{Name: "token revoke", Run: runTokenRevoke}, {Name: "acme eab create", Run: runEABCreate},
		{Name: "acme eab list", Run: runEABList}, {Name: "acme eab revoke", Run: runEABRevoke},
		{Name: "identity deny", Run: runIdentityDeny},
		{Name: "identity allow", Run: runIdentityAllow}, {Name: "certificate revoke", Run: runCertificateRevoke},
		{Name: "audit verify", Run: runAuditVerify}, {Name: "audit checkpoint", Run: runAuditCheckpoint},
		{Name: "roots status", Run: runRootsStatus},
		{Name: "migrate", Run: runMigrate}}, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// settingsErr makes issuer settings that cannot work a usage error.
func settingsErr(err error) error {
	if errors.Is(err, issuer.ErrSettings) && !errors.Is(err, cli.ErrUsage) {
		return fmt.Errorf("%w: %w", cli.ErrUsage, err)
	}
	return err
}

// commonFlags are shared by every subcommand that touches the data
// directory or the store.
type commonFlags struct {
	DataDir  string
	StoreURL string
	Logging  cli.LogFlags
	log      *slog.Logger // made by parse
}

func (c *commonFlags) register(f *cli.FlagSet, dirUsage string, withStore bool) {
	f.StringVar(&c.DataDir, "data-dir", "./rotor-data", dirUsage)
	if withStore {
		f.StringVar(&c.StoreURL, "store", "", "audit store: postgres://… or sqlite://PATH (default sqlite://<data-dir>/rotor.db)")
	}
	c.Logging.Register(f)
}

// parse parses a subcommand's flags, makes the logger writing to stderr
// and the data directory absolute, and fills in and checks the store URL.
func (c *commonFlags) parse(f *cli.FlagSet, args []string, stderr io.Writer) error {
	err := f.Parse(args)
	if err == nil {
		c.log, err = c.Logging.Logger(stderr)
	}
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.StoreURL == "" {
		c.StoreURL = "sqlite://" + filepath.Join(abs, "rotor.db")
	}
	if _, err := store.ParseURL(c.StoreURL); err != nil {
		return cli.Usagef("--store: %v", err)
	}
	return nil
}

// openStore opens the audit store, applying its migrations.
func (c *commonFlags) openStore(ctx context.Context, opts store.Options) (*store.Store, error) {
	opts.Logger = c.log
	st, err := store.Open(ctx, c.StoreURL, opts)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

func newFlagSet(name string, stderr io.Writer) *cli.FlagSet {
	return cli.NewFlagSet("rotor-ca "+name, envPrefix, stderr)
}
