// Package buildinfo says which build of Rotor is running, from the build
// information the Go toolchain embeds in every binary: for --version and
// for the rotor_build_info metric, so both always agree.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Unknown stands for what a binary built without module or VCS
// information (go run of a file, some test binaries) cannot say.
const Unknown = "unknown"

// Info is one build: the main module's version ("(devel)" for a build
// from a work tree, v1.2.3 for go install …@v1.2.3), the VCS revision it
// was built from and whether the tree had uncommitted changes, and the
// Go toolchain.
type Info struct {
	Version   string
	Revision  string
	Modified  bool
	GoVersion string
}

// Read is the running binary's Info; fields it cannot learn are Unknown.
func Read() Info {
	info := Info{Version: Unknown, Revision: Unknown, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo is Read for the given build information.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: Unknown, Revision: Unknown, GoVersion: bi.GoVersion}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the line --version prints after the program's name, in
// key=value form so that scripts can read it as easily as people.
func (i Info) String() string {
	return fmt.Sprintf("version=%s revision=%s modified=%t go=%s", i.Version, i.Revision, i.Modified, i.GoVersion)
}

// Collector is rotor_build_info{version,revision,goversion} = 1, the
// Prometheus convention for telling which build a target runs (join on it
// to see a rollout, or alert on two revisions serving at once).
func (i Info) Collector() prometheus.Collector {
	revision := i.Revision
	if i.Modified {
		revision += "-modified"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rotor_build_info",
		Help:        "Always 1; the labels say which build runs: module version, VCS revision (-modified: uncommitted changes), Go version.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": revision, "goversion": i.GoVersion}})
	g.Set(1)
	return g
}
