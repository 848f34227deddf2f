package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath is the module the demo builds rotor-ca and rotor-agent from.
const modulePath = "github.com/rotor-dev/rotor"

// binaries are the programs the demo runs. Self is this program, re-run
// as `rotor-demo webapp` and `rotor-demo api`.
type binaries struct {
	CA, Agent, Self string
}

// findBinaries takes rotor-ca and rotor-agent from binDir if given, else
// from beside this program (an image, or `go build -o bin/ ./cmd/...`),
// else builds them with `go build` into work/bin, which needs the Rotor
// module as the current directory (as with `go run ./cmd/rotor-demo`).
func findBinaries(ctx context.Context, binDir, work string, p *printer) (binaries, error) {
	self, err := os.Executable()
	if err != nil {
		return binaries{}, fmt.Errorf("find this program: %w", err)
	}
	b := binaries{Self: self}
	if binDir != "" {
		b.CA, b.Agent = filepath.Join(binDir, "rotor-ca"), filepath.Join(binDir, "rotor-agent")
		if !isExecutable(b.CA) || !isExecutable(b.Agent) {
			return binaries{}, fmt.Errorf("%w: --bin-dir %s must hold rotor-ca and rotor-agent", errUsage, binDir)
		}
		p.say("demo", "using rotor-ca and rotor-agent from %s", binDir)
		return b, nil
	}
	if dir := filepath.Dir(self); isExecutable(filepath.Join(dir, "rotor-ca")) && isExecutable(filepath.Join(dir, "rotor-agent")) {
		b.CA, b.Agent = filepath.Join(dir, "rotor-ca"), filepath.Join(dir, "rotor-agent")
		p.say("demo", "using rotor-ca and rotor-agent from %s", dir)
		return b, nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return binaries{}, err
	}
	out := filepath.Join(work, "bin")
	p.say("demo", "building rotor-ca and rotor-agent: go build -o %s ./cmd/rotor-ca ./cmd/rotor-agent", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out+string(filepath.Separator), "./cmd/rotor-ca", "./cmd/rotor-agent")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("go build in %s: %w\n%s", root, err, msg)
	}
	b.CA, b.Agent = filepath.Join(out, "rotor-ca"), filepath.Join(out, "rotor-agent")
	return b, nil
}

// moduleRoot is the directory of the Rotor module's go.mod, as the go
// command sees it from the current directory.
func moduleRoot(ctx context.Context) (string, error) {
	const hint = "run the demo from the Rotor repository (go run ./cmd/rotor-demo), or pass --bin-dir"
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("%w: the go command is not on PATH to build rotor-ca and rotor-agent: %s", errUsage, hint)
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	data, err := os.ReadFile(gomod)
	if gomod == "" || gomod == os.DevNull || err != nil {
		return "", fmt.Errorf("%w: not inside a Go module: %s", errUsage, hint)
	}
	for line := range strings.Lines(string(data)) {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok && strings.TrimSpace(name) == modulePath {
			return filepath.Dir(gomod), nil
		}
	}
	return "", fmt.Errorf("%w: %s is not the %s module: %s", errUsage, gomod, modulePath, hint)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}
