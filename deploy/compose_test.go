package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Build *struct {
		Context string `yaml:"context"`
		Target  string `yaml:"target"`
	} `yaml:"build"`
	Image       string            `yaml:"image"`
	Entrypoint  stringOrList      `yaml:"entrypoint"`
	Command     stringOrList      `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
}

// stringOrList is a compose command: a list, or a string split at spaces.
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	err := n.Decode(&l)
	*s = l
	return err
}

// mount is one "volume:/target[:ro]" of a service.
type mount struct{ volume, target string }

func (s *composeService) mounts() []mount {
	var ms []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		ms = append(ms, mount{parts[0], parts[1]})
	}
	return ms
}

// within says whether path p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return &f
}

// argv is what a service's container runs, with Docker's rules: a service
// entrypoint replaces the image's and drops its CMD; a service command
// replaces the CMD.
func (s *composeService) argv(stages map[string]*stage) ([]string, *stage, error) {
	if s.Build == nil {
		return nil, nil, nil // not one of ours (postgres)
	}
	st, err := imageCommand(stages, s.Build.Target)
	if err != nil {
		return nil, nil, err
	}
	if s.Image != s.Build.Target+":dev" {
		return nil, nil, fmt.Errorf("image %q, want %s:dev so that no two targets share a tag", s.Image, s.Build.Target)
	}
	entry, cmd := st.entrypoint, st.cmd
	if s.Entrypoint != nil {
		entry, cmd = s.Entrypoint, nil
	}
	if s.Command != nil {
		cmd = s.Command
	}
	return append(slices.Clone(entry), cmd...), st, nil
}

// composeInvocations are the Rotor commands a service runs: directly, in
// a `sh -c` script, or in a script the image copies from the repository.
// The second result lists their commands, whose settings the service's
// ROTOR_* variables may be.
func (c *catalog) composeInvocations(name string, st *stage, argv []string) ([]invocation, []string, error) {
	where := "docker-compose.yml service " + name
	var argvs [][]string
	switch {
	case len(argv) == 0:
		return nil, nil, nil
	case isRotorBinary(argv[0]):
		argvs = [][]string{argv}
	case filepath.Base(argv[0]) == "sh" && len(argv) == 3 && strings.HasPrefix(argv[1], "-"):
		argvs = shellInvocations(argv[2])
	default:
		src := st.copiedFrom(argv[0])
		if src == "" {
			return nil, nil, fmt.Errorf("%s runs %q, which this test does not know", where, argv[0])
		}
		script, err := os.ReadFile(filepath.Join(repoRoot, src))
		if err != nil {
			return nil, nil, err
		}
		argvs = shellInvocations(string(script))
		where += " (" + src + ")"
	}
	if len(argvs) == 0 {
		return nil, nil, fmt.Errorf("%s runs no Rotor command", where)
	}
	var invs []invocation
	var cmds []string
	for _, a := range argvs {
		inv, err := c.parse(a, where)
		if err != nil {
			return nil, nil, err
		}
		invs = append(invs, inv)
		cmds = append(cmds, inv.command)
	}
	return invs, cmds, nil
}

// TestComposeFlags checks every Rotor command in docker-compose.yml
// against the binaries: flags, ROTOR_* variables, and that every absolute
// path a flag or variable names is inside a volume the service mounts (or
// in the image under /usr). Scripts are read for the Rotor commands in
// them.
func TestComposeFlags(t *testing.T) {
	cat := loadCatalog(t)
	stages, _ := parseDockerfile(t)
	f := loadCompose(t)
	checked := 0
	for name, s := range f.Services {
		t.Run(name, func(t *testing.T) {
			argv, st, err := s.argv(stages)
			if err != nil {
				t.Fatalf("service %s: %v", name, err)
			}
			invs, cmds, err := cat.composeInvocations(name, st, argv)
			if err != nil {
				t.Fatal(err)
			}
			if err := cat.checkEnv(s.Environment, cmds, "docker-compose.yml service "+name); err != nil {
				t.Error(err)
			}
			var paths []string
			for _, inv := range invs {
				for _, v := range inv.flags {
					paths = append(paths, v)
				}
			}
			for _, v := range s.Environment {
				paths = append(paths, v)
			}
			for _, p := range paths {
				if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "/usr/") {
					continue
				}
				if !slices.ContainsFunc(s.mounts(), func(m mount) bool { return within(p, m.target) }) {
					t.Errorf("service %s names %s, which is in none of its volumes %v", name, p, s.Volumes)
				}
			}
			for _, m := range s.mounts() {
				if _, ok := f.Volumes[m.volume]; !ok {
					t.Errorf("service %s mounts %s, which is not a named volume", name, m.volume)
				}
			}
			checked += len(invs) + len(cmds)
		})
	}
	if checked == 0 {
		t.Fatal("no Rotor command found in docker-compose.yml")
	}
}

// TestComposeConfig runs `docker-compose config -q`, the compose tool's
// own validation; no Docker engine is needed.
func TestComposeConfig(t *testing.T) {
	tool, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docker-compose is not installed, and CI must validate docker-compose.yml with it")
		}
		t.Skip("docker-compose is not installed; apt-get install -y docker-compose to validate docker-compose.yml")
	}
	cmd := exec.Command(tool, "config", "-q")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config -q: %v\n%s", err, out)
	}
}
