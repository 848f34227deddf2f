// Package storecmd is rotor-ca's commands that work on the audit store
// rather than serve: tokens, ACME EAB keys, the kill switch, revocation,
// audit verify and checkpoint, prune, roots status and migrate. Each is a cli.Command, run
// by the binary's main; the flags every rotor-ca command shares are here
// too, so serve and init read the data directory and store the same way.
package storecmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/store"
)

// EnvPrefix starts every rotor-ca setting's environment variable.
const EnvPrefix = "ROTOR_"

// Commands are the store commands, named as typed after rotor-ca.
func Commands() []cli.Command {
	return []cli.Command{
		{Name: "token create", Run: runTokenCreate}, {Name: "token list", Run: runTokenList},
		{Name: "token revoke", Run: runTokenRevoke}, {Name: "acme eab create", Run: runEABCreate},
		{Name: "acme eab list", Run: runEABList}, {Name: "acme eab revoke", Run: runEABRevoke},
		{Name: "identity deny", Run: runIdentityDeny},
		{Name: "identity allow", Run: runIdentityAllow}, {Name: "certificate revoke", Run: runCertificateRevoke},
		{Name: "audit verify", Run: runAuditVerify}, {Name: "audit checkpoint", Run: runAuditCheckpoint},
		{Name: "prune", Run: runPrune}, {Name: "roots status", Run: runRootsStatus},
		{Name: "migrate", Run: runMigrate},
	}
}

// Flags are shared by every subcommand that touches the data
// directory or the store.
type Flags struct {
	DataDir  string
	StoreURL string
	Logging  cli.LogFlags
	Log      *slog.Logger // made by Parse
}

func (c *Flags) Register(f *cli.FlagSet, dirUsage string, withStore bool) {
	f.StringVar(&c.DataDir, "data-dir", "./rotor-data", dirUsage)
	if withStore {
		f.StringVar(&c.StoreURL, "store", "", "audit store: postgres://… or sqlite://PATH (default sqlite://<data-dir>/rotor.db)")
	}
	c.Logging.Register(f)
}

// Parse parses a subcommand's flags, makes the logger writing to stderr
// and the data directory absolute, and fills in and checks the store URL.
func (c *Flags) Parse(f *cli.FlagSet, args []string, stderr io.Writer) error {
	err := f.Parse(args)
	if err == nil {
		c.Log, err = c.Logging.Logger(stderr)
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

// OpenStore opens the audit store, applying its migrations.
func (c *Flags) OpenStore(ctx context.Context, opts store.Options) (*store.Store, error) {
	opts.Logger = c.Log
	st, err := store.Open(ctx, c.StoreURL, opts)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

func NewFlagSet(name string, stderr io.Writer) *cli.FlagSet {
	return cli.NewFlagSet("rotor-ca "+name, EnvPrefix, stderr)
}
