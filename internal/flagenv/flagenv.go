// Package flagenv gives every command-line flag an environment twin:
// --cert-ttl is also ROTOR_CERT_TTL. A flag given on the command line wins
// over its environment variable, which wins over the default.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Name is the environment variable for a flag: prefix + upper snake case.
func Name(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment twin. A bad environment value is an error that
// names the variable (never its value: it may be a secret).
func Parse(fs *flag.FlagSet, prefix string, args []string) error {
	addEnvToUsage(fs, prefix)
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		env := Name(prefix, f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment variable %s (for --%s) is invalid: %w", env, f.Name, e)
			}
		}
	})
	return err
}

// addEnvToUsage appends the environment twin to each flag's help text, so
// --help documents both.
func addEnvToUsage(fs *flag.FlagSet, prefix string) {
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "[$") {
			f.Usage += " [$" + Name(prefix, f.Name) + "]"
		}
	})
}
