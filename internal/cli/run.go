package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Command is one subcommand of a program: "serve", or two words such as
// "token create". Name "" runs when no subcommand is given.
type Command struct {
	Name string
	Run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// ExitCoder is an error that picks its own exit status.
type ExitCoder interface {
	error
	ExitCode() int
}

// Run runs the command args name, and returns the exit status: 0 on
// success, help ("help", or --help where no command takes flags alone) or
// --version (IsVersion, before any command); the error's own (ExitCoder);
// 2 for a usage error or an unknown command, with usage; 1 for anything
// else. Errors are printed as "prog command: error".
func Run(ctx context.Context, prog, usage string, cmds []Command, args []string, stdout, stderr io.Writer) int {
	if IsVersion(args) {
		PrintVersion(stdout, prog)
		return 0
	}
	cmd, rest, ok := find(cmds, args)
	if len(args) > 0 && (args[0] == "help" || !ok && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help")) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if !ok {
		if len(args) == 0 {
			fmt.Fprint(stderr, usage)
		} else {
			fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", prog, strings.Join(args[:min(2, len(args))], " "), usage)
		}
		return 2
	}
	err := cmd.Run(ctx, rest, stdout, stderr)
	var coded ExitCoder
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &coded):
		return coded.ExitCode()
	}
	fmt.Fprintf(stderr, "%s: %v\n", strings.TrimSpace(prog+" "+cmd.Name), err)
	if errors.Is(err, ErrUsage) {
		return 2
	}
	return 1
}

// find picks the command args start with: two words, one word, or the
// default command when args start with a flag or are empty.
func find(cmds []Command, args []string) (Command, []string, bool) {
	for _, c := range cmds {
		words := strings.Fields(c.Name)
		if len(words) > 0 && len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.Name {
			return c, args[len(words):], true
		}
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		for _, c := range cmds {
			if c.Name == "" {
				return c, args, true
			}
		}
	}
	return Command{}, nil, false
}
