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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rotor-dev/rotor/internal/flagenv"
)

const usage = `rotor-demo: watch two services talk mTLS while their certificates rotate

Usage:
  rotor-demo [flags]          run the demo: rotor-ca on its development defaults in a
                              temporary directory, a rotor-agent each for default/webapp
                              and default/api, and the two services, as separate processes
  rotor-demo webapp [flags]   the webapp service alone: calls the api over mTLS
  rotor-demo api [flags]      the api service alone: serves mTLS to allowed identities
  rotor-demo help             this text; "rotor-demo COMMAND --help" lists a command's flags

Every flag has an environment twin: --cert-ttl is also ROTOR_DEMO_CERT_TTL.
`

var (
	// errUsage marks the caller's wording mistakes, answered with exit 2.
	errUsage = errors.New("usage")
	// errFailed means the demo ran but did not show what it should: a
	// request failed or a process died. Its summary says which.
	errFailed = errors.New("the demo failed")
)

// envPrefix makes --cert-ttl also ROTOR_DEMO_CERT_TTL.
const envPrefix = "ROTOR_DEMO_"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// parseFlags parses args and their ROTOR_DEMO_* twins into fs; a mistake
// (already reported by the flag package) is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := flagenv.Parse(fs, envPrefix, args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "":
		err = runDemo(ctx, args, stdout, stderr)
	case "webapp":
		err = runWebapp(ctx, args, stderr)
	case "api":
		err = runAPI(ctx, args, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "rotor-demo: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	name := strings.TrimSpace("rotor-demo " + cmd)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}
