package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// stage is one FROM section of the Dockerfile, with what it inherits from
// an earlier stage already applied.
type stage struct {
	name       string
	from       string
	entrypoint []string
	cmd        []string
	env        map[string]string
	user       string
	runs       []string // RUN commands
	copies     [][]string
}

// parseDockerfile reads the instructions this repository's Dockerfile
// uses: FROM, ARG, RUN, COPY, ENV, USER, WORKDIR, EXPOSE, ENTRYPOINT, CMD.
func parseDockerfile(t *testing.T) (map[string]*stage, map[string]string) {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages, args := map[string]*stage{}, map[string]string{}
	var cur *stage
	var logical strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && logical.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(line)
		instr, rest, _ := strings.Cut(strings.TrimSpace(logical.String()), " ")
		logical.Reset()
		rest = strings.TrimSpace(rest)
		if instr != "FROM" && instr != "ARG" && cur == nil {
			t.Fatalf("Dockerfile: %s before FROM", instr)
		}
		switch instr {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case "FROM":
			words := strings.Fields(rest)
			cur = &stage{from: words[0], env: map[string]string{}}
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				cur.name = words[2]
			}
			if parent, ok := stages[cur.from]; ok {
				cur.entrypoint, cur.cmd, cur.user = parent.entrypoint, parent.cmd, parent.user
				cur.copies = append(cur.copies, parent.copies...)
				for k, v := range parent.env {
					cur.env[k] = v
				}
			}
			stages[cur.name] = cur
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(rest), &argv); err != nil {
				t.Fatalf("Dockerfile stage %s: %s must be a JSON array: %v", cur.name, instr, err)
			}
			if instr == "CMD" {
				cur.cmd = argv
			} else {
				cur.entrypoint, cur.cmd = argv, nil // a new ENTRYPOINT resets CMD
			}
		case "ENV":
			k, v, _ := strings.Cut(rest, "=")
			cur.env[k] = v
		case "USER":
			cur.user = rest
		case "RUN":
			cur.runs = append(cur.runs, rest)
		case "COPY":
			cur.copies = append(cur.copies, strings.Fields(rest))
		case "WORKDIR", "EXPOSE":
		default:
			t.Fatalf("Dockerfile: instruction %s is not understood by this test", instr)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages, args
}

// TestDockerfile checks the images: each runtime stage runs its binary as
// a non-root user, the agent and the demo are static (CGO_ENABLED=0),
// files copied from the context exist, and the Go version is go.mod's toolchain.
func TestDockerfile(t *testing.T) {
	stages, args := parseDockerfile(t)
	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The toolchain line names the Go the project builds with (for its
	// security fixes); without one, the go line's release.
	goVersion := regexp.MustCompile(`(?m)^toolchain go(\S+)`).FindSubmatch(goMod)
	if goVersion == nil {
		goVersion = regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	}
	if goVersion == nil || args["GO_VERSION"] != string(goVersion[1]) {
		t.Errorf("Dockerfile GO_VERSION=%q, go.mod says go %s", args["GO_VERSION"], goVersion[1])
	}
	build := stages["build"]
	if build == nil {
		t.Fatal("Dockerfile has no build stage")
	}
	builds := map[string]string{} // binary -> the go build command making it
	for _, run := range build.runs {
		for _, m := range regexp.MustCompile(`\./cmd/([a-z-]+)`).FindAllStringSubmatch(run, -1) {
			builds[m[1]] = run
		}
	}
	for _, bin := range []string{"rotor-agent", "rotor-demo"} {
		if !strings.Contains(builds[bin], "CGO_ENABLED=0") {
			t.Errorf("Dockerfile: %s is not built with CGO_ENABLED=0: %q", bin, builds[bin])
		}
	}
	for name, s := range stages {
		if name == "build" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if s.user == "" || strings.HasPrefix(s.user, "0") || strings.HasPrefix(s.user, "root") {
				t.Errorf("stage %s runs as %q, want a non-root USER", name, s.user)
			}
			if len(s.entrypoint) == 0 {
				t.Fatalf("stage %s has no ENTRYPOINT", name)
			}
			bin := filepath.Base(s.entrypoint[0])
			if builds[bin] == "" {
				t.Errorf("stage %s runs %s, which the build stage does not build", name, bin)
			}
			copied := false
			for _, c := range s.copies {
				copied = copied || (c[0] == "--from=build" && strings.HasSuffix(c[len(c)-2], "/"+bin))
				if !strings.HasPrefix(c[0], "--from=") {
					for _, src := range c[:len(c)-1] {
						if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
							t.Errorf("stage %s copies %s from the context: %v", name, src, err)
						}
					}
				}
			}
			if !copied {
				t.Errorf("stage %s does not copy /out/%s from the build stage", name, bin)
			}
		})
	}
}

// copiedFrom is the repository file the stage copies to dst, or "".
func (s *stage) copiedFrom(dst string) string {
	for _, c := range s.copies {
		if !strings.HasPrefix(c[0], "--") && len(c) == 2 && c[1] == dst {
			return c[0]
		}
	}
	return ""
}

// imageCommand is what a container of image runs with no command or
// arguments given: the target stage named like the image (before ":").
func imageCommand(stages map[string]*stage, image string) (*stage, error) {
	name, _, _ := strings.Cut(image, ":")
	s, ok := stages[name]
	if !ok || name == "build" {
		return nil, fmt.Errorf("image %s is not a Dockerfile target", image)
	}
	return s, nil
}
