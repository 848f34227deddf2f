// Package cli is what Rotor's commands share: one rule for where a setting
// comes from (flag, environment variable, alias), usage errors, and the
// slog logger. The commands keep their own settings; this package only
// reads them.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// ErrUsage marks errors in how a command was called; commands exit 2.
var ErrUsage = errors.New("usage")

// Usagef is a usage error with a message.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// Precedence is the one rule for settings, stated in every command's help.
const Precedence = `A setting comes from its flag, else its environment variable (shown as [$NAME]), else
(issuer settings only) the --issuer-config file, else its default. One setting given two
different values (by a flag and its alias, or by a flag or variable and the file) is refused.`

// FlagSet is a flag.FlagSet whose flags also read environment variables,
// and may have aliases. Parse applies the rule in Precedence.
type FlagSet struct {
	*flag.FlagSet
	prefix  string
	aliases map[string]string // alias -> the setting's flag name
	given   map[string]string // setting -> where it came from: "--name" or "$NAME"
}

// NewFlagSet makes a FlagSet named name whose environment variables start
// with envPrefix (ROTOR_: --cert-ttl is also ROTOR_CERT_TTL). Help and
// errors go to out.
func NewFlagSet(name, envPrefix string, out io.Writer) *FlagSet {
	f := &FlagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), prefix: envPrefix,
		aliases: map[string]string{}, given: map[string]string{}}
	f.SetOutput(out)
	f.Usage = func() { f.PrintDefaults() }
	return f
}

// EnvName is the environment variable of setting name.
func (f *FlagSet) EnvName(name string) string {
	return f.prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Alias makes --alias another name for the already registered --name (a
// peer's spelling of the same setting). An alias has no environment
// variable of its own.
func (f *FlagSet) Alias(alias, name, note string) {
	target := f.Lookup(name)
	if target == nil {
		panic("cli: alias " + alias + " of unknown flag " + name)
	}
	f.Var(target.Value, alias, fmt.Sprintf("alias of --%s (%s)", name, note))
	f.aliases[alias] = name
}

// Given reports whether setting name was given by a flag (or an alias) or
// its environment variable, and which.
func (f *FlagSet) Given(name string) (source string, ok bool) {
	source, ok = f.given[name]
	return source, ok
}

func (f *FlagSet) setting(name string) string {
	if s, ok := f.aliases[name]; ok {
		return s
	}
	return name
}

// Parse parses args, then fills every setting not given on the command
// line from its environment variable. A setting given different values on
// the command line (twice, or through an alias) is refused, and so is a bad
// environment value, named without its value (it may be a secret). Every
// error wraps ErrUsage except flag.ErrHelp, returned as is.
func (f *FlagSet) Parse(args []string) error {
	values := map[string][]string{} // setting -> values given, as the flag prints them
	f.VisitAll(func(fl *flag.Flag) { fl.Value = &recorder{Value: fl.Value, name: f.setting(fl.Name), values: values} })
	defer f.VisitAll(func(fl *flag.Flag) { fl.Value = fl.Value.(*recorder).Value })
	if err := f.FlagSet.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if f.NArg() > 0 {
		return Usagef("unexpected arguments %q", f.Args())
	}
	var errs []error
	f.Visit(func(fl *flag.Flag) {
		name := f.setting(fl.Name)
		vs := slices.Clone(values[name])
		slices.Sort(vs)
		if f.given[name] != "" {
			return // an alias of a setting already seen
		}
		if vs = slices.Compact(vs); len(vs) > 1 {
			errs = append(errs, Usagef("--%s is given %d different values (%s): give it once", name, len(vs), strings.Join(vs, ", ")))
		}
		f.given[name] = "--" + fl.Name
	})
	f.VisitAll(func(fl *flag.Flag) {
		name, env := fl.Name, f.EnvName(fl.Name)
		v, ok := os.LookupEnv(env)
		if _, alias := f.aliases[name]; alias && ok {
			errs = append(errs, Usagef("environment variable %s is not read: --%s is an alias; set %s", env, name,
				f.EnvName(f.aliases[name])))
		}
		if !ok || f.given[f.setting(name)] != "" {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			errs = append(errs, Usagef("environment variable %s (for --%s) is invalid: %v", env, name, err))
		}
		f.given[name] = "$" + env
	})
	return errors.Join(errs...)
}

// recorder keeps what each Set gave a setting, so Parse can refuse two
// different values for it.
type recorder struct {
	flag.Value
	name   string
	values map[string][]string
}

func (r *recorder) Set(v string) error {
	if err := r.Value.Set(v); err != nil {
		return err
	}
	r.values[r.name] = append(r.values[r.name], r.Value.String())
	return nil
}

func (r *recorder) IsBoolFlag() bool {
	b, ok := r.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// PrintDefaults writes every flag with its type, default and environment
// variable, then the precedence rule. The usage text is printed as written:
// no word in it is taken for the argument's name.
func (f *FlagSet) PrintDefaults() {
	w := f.Output()
	f.VisitAll(func(fl *flag.Flag) {
		kind := typeName(fl.Value)
		fmt.Fprintf(w, "  --%s", fl.Name)
		if kind != "" {
			fmt.Fprintf(w, " %s", kind)
		}
		fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(fl.Usage, "\n", "\n    \t"))
		if d := fl.DefValue; d != "" && d != "0" && d != "0s" && d != "false" {
			fmt.Fprintf(w, " (default %q)", d)
		}
		if _, alias := f.aliases[fl.Name]; !alias {
			fmt.Fprintf(w, " [$%s]", f.EnvName(fl.Name))
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "\n%s\n", Precedence)
}

// typeName names what a flag takes, "" for a boolean.
func typeName(v flag.Value) string {
	if r, ok := v.(*recorder); ok {
		v = r.Value
	}
	g, ok := v.(flag.Getter)
	if !ok {
		return "value"
	}
	switch g.Get().(type) {
	case bool:
		return ""
	case time.Duration:
		return "duration"
	case int, int64, uint, uint64:
		return "int"
	case float64:
		return "number"
	case string:
		return "string"
	}
	return "value"
}
