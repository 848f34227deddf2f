// Command rotor-demo shows Rotor's story in under a minute: a CA, two
// services webapp and api, each with a rotor-agent, talking mTLS while their
// short-lived certificates rotate underneath them. Every part is a separate
// process, as in production.
//
// The webapp and api subcommands are the two services on their own; the
// demo starts them, and docker-compose.yml and the Kubernetes example run
// them beside a real agent.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rotor-dev/rotor/internal/cli"
)

const usage = `rotor-demo: watch two services talk mTLS while their certificates rotate

Usage:
  rotor-demo [flags]          run the demo: rotor-ca on its development defaults in a
                              temporary directory, a rotor-agent each for default/webapp
                              and default/api, and the two services, as separate processes
  rotor-demo webapp [flags]   the webapp service alone: calls the api over mTLS
  rotor-demo api [flags]      the api service alone: serves mTLS to allowed identities
  rotor-demo help             this text; "rotor-demo COMMAND --help" lists a command's flags
  rotor-demo --version        the build: module version, VCS revision, Go version

Every flag has an environment twin: --cert-ttl is also ROTOR_DEMO_CERT_TTL.
`

// errUsage marks the caller's wording mistakes, answered with exit 2.
var errUsage = cli.ErrUsage

// errFailed means the demo ran but did not show what it should: a request
// failed or a process died. Its summary says which, so it exits 1 without
// another word.
var errFailed error = failed{}

type failed struct{}

func (failed) Error() string { return "the demo failed" }
func (failed) ExitCode() int { return 1 }

// envPrefix makes --cert-ttl also ROTOR_DEMO_CERT_TTL.
const envPrefix = "ROTOR_DEMO_"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func newFlagSet(name string, stderr io.Writer) *cli.FlagSet {
	return cli.NewFlagSet(strings.TrimSpace("rotor-demo "+name), envPrefix, stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, "rotor-demo", usage, []cli.Command{
		{Name: "", Run: runDemo},
		{Name: "webapp", Run: func(ctx context.Context, args []string, _, stderr io.Writer) error {
			return runWebapp(ctx, args, stderr)
		}},
		{Name: "api", Run: func(ctx context.Context, args []string, _, stderr io.Writer) error { return runAPI(ctx, args, stderr) }},
	}, args, stdout, stderr)
}
