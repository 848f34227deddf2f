package buildinfo_test

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rotor-dev/rotor/internal/buildinfo"
)

func TestFromBuildInfo(t *testing.T) {
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want buildinfo.Info
	}{
		{"ok/work-tree-modified", debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "c58caa0"}, {Key: "vcs.modified", Value: "true"}}},
			buildinfo.Info{Version: "(devel)", Revision: "c58caa0", Modified: true, GoVersion: "go1.27.3"}},
		{"ok/go-install-at-tag", debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}},
			buildinfo.Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.27.3"}},
		{"ok/no-vcs", debug.BuildInfo{GoVersion: "go1.27.3"},
			buildinfo.Info{Version: buildinfo.Unknown, Revision: buildinfo.Unknown, GoVersion: "go1.27.3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildinfo.FromBuildInfo(&tc.bi); got != tc.want {
				t.Errorf("FromBuildInfo = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCollector: rotor_build_info is 1 with the build's labels, and a
// modified tree shows in the revision, where a dashboard sees it.
func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildinfo.Info{Version: "(devel)", Revision: "c58caa0", Modified: true, GoVersion: "go1.27.3"}.Collector())
	want := `# HELP rotor_build_info Always 1; the labels say which build runs: module version, VCS revision (-modified: uncommitted changes), Go version.
# TYPE rotor_build_info gauge
rotor_build_info{goversion="go1.27.3",revision="c58caa0-modified",version="(devel)"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rotor_build_info"); err != nil {
		t.Error(err)
	}
}
