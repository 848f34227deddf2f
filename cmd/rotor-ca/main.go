// Command rotor-ca is Rotor's certificate authority: it signs workload CSRs
// after authenticating them and records every decision before it answers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rotor-dev/rotor/internal/flagenv"
)

const usage = `rotor-ca: the Rotor certificate authority

Usage:
  rotor-ca serve [flags]          run the CA (no flags: development defaults in ./rotor-data);
                                  SIGHUP reloads the issuer and trust bundle
  rotor-ca init [flags]           create a root and an issuing key in a signer backend
                                  (file, pkcs11, gcpkms); prints the serve command
  rotor-ca token create [flags]   create a static bearer token for an identity; prints it once
  rotor-ca roots status [flags]   how many live identities hold a root (root rotation);
                                  exit 0 when all do, 3 when not yet
  rotor-ca migrate [flags]        apply the audit store's schema migrations
  rotor-ca help                   this text; "rotor-ca COMMAND --help" lists a command's flags

Every flag has an environment twin: --cert-ttl is also ROTOR_CERT_TTL.
`

// errUsage marks errors that are the caller's wording, answered with exit 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stderr)
	case "token":
		if len(args) < 2 || args[1] != "create" {
			fmt.Fprintln(stderr, "rotor-ca token: the only subcommand is \"create\"")
			return 2
		}
		err = runTokenCreate(ctx, args[2:], stdout, stderr)
	case "migrate":
		err = runMigrate(ctx, args[1:], stderr)
	case "init":
		err = runInit(ctx, args[1:], stdout, stderr)
	case "roots":
		if len(args) < 2 || args[1] != "status" {
			fmt.Fprintln(stderr, "rotor-ca roots: the only subcommand is \"status\"")
			return 2
		}
		err = runRootsStatus(ctx, args[2:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "rotor-ca: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "rotor-ca %s: %v\n", args[0], err)
		return 2
	case errors.Is(err, errNotReady):
		return 3
	}
	fmt.Fprintf(stderr, "rotor-ca %s: %v\n", args[0], err)
	return 1
}

// commonFlags are shared by every subcommand that touches the data directory
// or the store.
type commonFlags struct {
	DataDir   string
	StoreURL  string
	LogLevel  string
	LogFormat string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	c.registerDirAndLog(fs, "directory for the development CA's keys, certificates and SQLite database")
	fs.StringVar(&c.StoreURL, "store", "", "audit store: postgres://… or sqlite://PATH (default sqlite://<data-dir>/rotor.db)")
}

// registerDirAndLog registers the flags of commands that use no store.
func (c *commonFlags) registerDirAndLog(fs *flag.FlagSet, dirUsage string) {
	fs.StringVar(&c.DataDir, "data-dir", "./rotor-data", dirUsage)
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
}

// resolve makes the data directory absolute and fills in the default store.
func (c *commonFlags) resolve() error {
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.StoreURL == "" {
		c.StoreURL = "sqlite://" + filepath.Join(abs, "rotor.db")
	}
	if !strings.HasPrefix(c.StoreURL, "postgres://") && !strings.HasPrefix(c.StoreURL, "postgresql://") &&
		!strings.HasPrefix(c.StoreURL, "sqlite://") {
		return fmt.Errorf("%w: --store must start with postgres://, postgresql:// or sqlite://", errUsage)
	}
	return nil
}

// prepareStoreDir creates the directory of a SQLite store's file, so that
// the first command run against a fresh data directory works.
func (c *commonFlags) prepareStoreDir() error {
	path, ok := strings.CutPrefix(c.StoreURL, "sqlite://")
	if !ok {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create store directory: %w", err)
	}
	return nil
}

func (c *commonFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, c.LogFormat)
}

// parseFlags parses a subcommand's flags with their environment twins; a
// parse error is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := flagenv.Parse(fs, "ROTOR_", args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rotor-ca "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
