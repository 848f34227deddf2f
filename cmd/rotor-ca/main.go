// Command rotor-ca is Rotor's certificate authority: it signs workload CSRs
// after authenticating them and records every decision before it answers.
// This package reads the configuration and wires the library's pieces.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/internal/storecmd"
	"github.com/rotor-dev/rotor/issuer"
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
  rotor-ca prune --older-than 90d [--dry-run]
                                  delete expired certificates and old refusals and admin actions,
                                  oldest first, in short batches; the chain still verifies
  rotor-ca roots status [flags]   how many live identities hold a root (root rotation);
                                  exit 0 when all do, 3 when not yet
  rotor-ca migrate [flags]        apply the audit store's schema migrations
  rotor-ca help                   this text; "rotor-ca COMMAND --help" lists a command's flags
  rotor-ca --version              the build: module version, VCS revision, Go version

Every flag has an environment twin: --cert-ttl is also ROTOR_CERT_TTL.
`

// pinEnv holds the PKCS#11 PIN: never a flag, which ps would show.
const pinEnv = storecmd.EnvPrefix + "PKCS11_PIN"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	commands := append([]cli.Command{{Name: "serve", Run: runServe}, {Name: "init", Run: runInit}}, storecmd.Commands()...)
	code := cli.Run(ctx, "rotor-ca", usage, commands, os.Args[1:], os.Stdout, os.Stderr)
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
