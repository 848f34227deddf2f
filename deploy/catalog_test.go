package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = ".."

// commands are the command lines the deployment files may run, as
// "binary [subcommand...]".
var commands = []string{
	"rotor-ca serve", "rotor-ca init", "rotor-ca token create", "rotor-ca roots status", "rotor-ca migrate",
	"rotor-agent",
	"rotor-demo", "rotor-demo webapp", "rotor-demo api",
}

// command is what one command's --help says it accepts.
type command struct {
	flags map[string]bool // flag name -> takes no value (boolean)
	env   map[string]bool // every ROTOR_* name the help mentions
}

type catalog struct {
	bin      string // directory of the built binaries
	commands map[string]*command
}

// binDir receives the binaries; TestMain makes and removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rotor-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildCatalog builds the binaries once per test run and reads their help.
var buildCatalog = sync.OnceValues(func() (*catalog, error) {
	dir := binDir
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/rotor-ca", "./cmd/rotor-agent", "./cmd/rotor-demo")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	c := &catalog{bin: dir, commands: map[string]*command{}}
	for _, name := range commands {
		words := strings.Fields(name)
		out, _ := exec.Command(filepath.Join(dir, words[0]), append(words[1:], "--help")...).CombinedOutput()
		cmd := parseHelp(string(out))
		if len(cmd.flags) == 0 {
			return nil, fmt.Errorf("%s --help lists no flags:\n%s", name, out)
		}
		c.commands[name] = cmd
	}
	return c, nil
})

func loadCatalog(t *testing.T) *catalog {
	t.Helper()
	c, err := buildCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	// The commands' help (internal/cli): "  --name type" or, for booleans,
	// "  --name".
	flagLine = regexp.MustCompile(`(?m)^  --([a-z0-9][a-z0-9-]*)( .+)?$`)
	envName  = regexp.MustCompile(`ROTOR_[A-Z0-9_]+`)
)

func parseHelp(help string) *command {
	c := &command{flags: map[string]bool{}, env: map[string]bool{}}
	for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
		c.flags[m[1]] = m[2] == ""
	}
	for _, e := range envName.FindAllString(help, -1) {
		c.env[e] = true
	}
	return c
}

// invocation is one run of a Rotor binary found in a deployment file.
type invocation struct {
	command string            // a key of catalog.commands
	flags   map[string]string // flag -> value as written
	where   string            // for messages
}

// parse reads argv (argv[0] a Rotor binary, by path or name) against the
// catalog: the longest known subcommand, then flags, which must all exist,
// and no positional arguments.
func (c *catalog) parse(argv []string, where string) (invocation, error) {
	inv := invocation{flags: map[string]string{}, where: where}
	bin := path.Base(argv[0])
	rest := argv[1:]
	for _, name := range commands {
		words := strings.Fields(name)
		if words[0] != bin || len(words)-1 > len(rest) || strings.Join(words[1:], " ") != strings.Join(rest[:len(words)-1], " ") {
			continue
		}
		if len(name) > len(inv.command) {
			inv.command = name
		}
	}
	if inv.command == "" {
		return inv, fmt.Errorf("%s: %q is no Rotor command", where, strings.Join(argv, " "))
	}
	cmd := c.commands[inv.command]
	rest = rest[len(strings.Fields(inv.command))-1:]
	var errs []string
	for i := 0; i < len(rest); i++ {
		arg := rest[i]
		if !strings.HasPrefix(arg, "-") {
			errs = append(errs, fmt.Sprintf("unexpected argument %q", arg))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		isBool, ok := cmd.flags[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("--%s is not a flag of %s", name, inv.command))
			continue
		case !isBool && !hasValue:
			if i+1 == len(rest) {
				errs = append(errs, fmt.Sprintf("--%s has no value", name))
				continue
			}
			i++
			value = rest[i]
		}
		inv.flags[name] = value
	}
	if len(errs) > 0 {
		return inv, fmt.Errorf("%s: %s: %s", where, strings.Join(argv, " "), strings.Join(errs, "; "))
	}
	return inv, nil
}

// checkEnv reports ROTOR_* variables none of cmds' help mentions.
func (c *catalog) checkEnv(env map[string]string, cmds []string, where string) error {
	var bad []string
	for name := range env {
		if !strings.HasPrefix(name, "ROTOR_") {
			continue
		}
		known := false
		for _, cmd := range cmds {
			known = known || c.commands[cmd].env[name]
		}
		if !known {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s not in the --help of %s", where, strings.Join(bad, ", "), strings.Join(cmds, ", "))
	}
	return nil
}

// isRotorBinary says whether a word names one of the binaries.
func isRotorBinary(word string) bool {
	switch path.Base(word) {
	case "rotor-ca", "rotor-agent", "rotor-demo":
		return true
	}
	return false
}

// shellInvocations finds the Rotor commands in a shell script: each simple
// command (split at ;, &&, ||, |) that starts with a Rotor binary, up to
// its first redirection.
func shellInvocations(script string) [][]string {
	var out [][]string
	for line := range strings.Lines(script) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, sep := range []string{"&&", "||", ";", "|"} {
			line = strings.ReplaceAll(line, sep, "\n")
		}
		for simple := range strings.Lines(line) {
			words := strings.Fields(simple)
			if len(words) == 0 || !isRotorBinary(words[0]) {
				continue
			}
			var argv []string
			for _, w := range words {
				if strings.ContainsAny(w[:1], "<>") || strings.HasPrefix(w, "2>") {
					break
				}
				argv = append(argv, strings.Trim(w, `"'`))
			}
			out = append(out, argv)
		}
	}
	return out
}

// TestParseInvocation shows the checker refuses what the binaries would.
func TestParseInvocation(t *testing.T) {
	cat := loadCatalog(t)
	tests := []struct {
		name    string
		argv    []string
		want    string // the command recognised
		wantErr bool
	}{
		{"ok/serve-flag-forms", []string{"/usr/local/bin/rotor-ca", "serve", "--listen", "0.0.0.0:8443", "--cert-ttl=2m"}, "rotor-ca serve", false},
		{"ok/boolean-without-value", []string{"rotor-agent", "--once", "--out-dir", "/x"}, "rotor-agent", false},
		{"ok/demo-role", []string{"rotor-demo", "webapp", "--rate", "2"}, "rotor-demo webapp", false},
		{"ok/two-word-subcommand", []string{"rotor-ca", "token", "create", "--namespace", "default"}, "rotor-ca token create", false},
		{"fail/unknown-flag", []string{"rotor-agent", "--ca-uri", "https://x"}, "rotor-agent", true},
		{"fail/flag-of-another-subcommand", []string{"rotor-ca", "migrate", "--cert-ttl", "1h"}, "rotor-ca migrate", true},
		{"fail/missing-value", []string{"rotor-demo", "api", "--listen"}, "rotor-demo api", true},
		{"fail/positional-argument", []string{"rotor-ca", "serve", "now"}, "rotor-ca serve", true},
		{"fail/no-subcommand", []string{"rotor-ca", "--listen", ":1"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := cat.parse(tc.argv, tc.name)
			if (err != nil) != tc.wantErr || inv.command != tc.want {
				t.Errorf("parse(%q) = %q, %v; want %q, error %v", tc.argv, inv.command, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestShellInvocations(t *testing.T) {
	script := `umask 077
# rotor-ca serve --not-this
rotor-ca migrate
test -s /t/token || rotor-ca token create --namespace default --service-account "webapp" > /t/token
echo done; rotor-agent --once 2>/dev/null | cat
`
	got := shellInvocations(script)
	want := [][]string{
		{"rotor-ca", "migrate"},
		{"rotor-ca", "token", "create", "--namespace", "default", "--service-account", "webapp"},
		{"rotor-agent", "--once"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("shellInvocations = %q, want %q", got, want)
	}
}
