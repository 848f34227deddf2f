package cli

import (
	"fmt"
	"io"

	"github.com/rotor-dev/rotor/internal/buildinfo"
)

// IsVersion reports whether args ask for the version: --version (or
// -version) first. Only as the first argument and never from an
// environment variable, so a stray ROTOR_VERSION cannot turn a start into
// a version print.
func IsVersion(args []string) bool {
	return len(args) > 0 && (args[0] == "--version" || args[0] == "-version")
}

// PrintVersion writes the --version line: prog, then the build's module
// version, VCS revision, whether the tree was modified, and Go version.
func PrintVersion(w io.Writer, prog string) {
	fmt.Fprintf(w, "%s %s\n", prog, buildinfo.Read())
}
