package agent_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

// TestLayout: the agent writes the names, key mode and combined file it
// is configured with and tells the hook their paths; restarted with
// another layout it lays the certificate it adopts out anew without
// asking the CA for another.
func TestLayout(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: time.Hour})
	cfg := testConfig(t, ca)
	cfg.Once = true
	env := filepath.Join(t.TempDir(), "env")
	cfg.Exec = "env > " + env
	// A path in OutDir counts as its name there, as the hook's variables give it.
	cfg.Layout = client.Layout{Cert: filepath.Join(cfg.OutDir, "tls.crt"), Key: "tls.key", Bundle: "ca.crt", KeyMode: 0o640}
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(cfg.OutDir, "tls.crt"), filepath.Join(cfg.OutDir, "tls.key")); err != nil {
		t.Errorf("configured names do not load: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(cfg.OutDir, "tls.key")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("tls.key mode %v (%v), want 0640", fi.Mode().Perm(), err)
	}
	hookEnv := map[string]string{}
	for _, line := range lines(t, env) {
		if name, value, ok := strings.Cut(line, "="); ok {
			hookEnv[name] = value
		}
	}
	for name, want := range map[string]string{"ROTOR_CERT_FILE": "tls.crt", "ROTOR_KEY_FILE": "tls.key",
		"ROTOR_BUNDLE_FILE": "ca.crt", "ROTOR_COMBINED_FILE": ""} {
		if got := hookEnv[name]; (want == "" && got != "") || (want != "" && got != filepath.Join(cfg.OutDir, want)) {
			t.Errorf("hook saw %s=%q, want %q in the out dir", name, got, want)
		}
	}

	cfg.Layout = client.Layout{Combined: "haproxy.pem"}
	if err := newAgent(t, cfg).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(ca.Issuances()); n != 1 {
		t.Errorf("%d issuances, want the one certificate reused", n)
	}
	combined := filepath.Join(cfg.OutDir, "haproxy.pem")
	if _, err := tls.LoadX509KeyPair(combined, combined); err != nil {
		t.Errorf("the restart with --combined-file wrote no combined file: %v", err)
	}
	if !cfg.Layout.InPlace(cfg.OutDir) {
		t.Error("files not in the new layout after the restart")
	}
}

func TestParseOwner(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		uid, gid int
		ok       bool
	}{
		{"root", 0, -1, true},
		{"root:root", 0, 0, true},
		{"1000:1001", 1000, 1001, true},
		{":65534", -1, 65534, true},
		{"nobody", 65534, -1, true},
		{"", 0, 0, false},
		{":", 0, 0, false},
		{"no-such-user-here", 0, 0, false},
		{"root:no-such-group-here", 0, 0, false},
	} {
		o, err := agent.ParseOwner(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseOwner(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (o.UID != tc.uid || o.GID != tc.gid) {
			t.Errorf("ParseOwner(%q) = %d:%d, want %d:%d", tc.in, o.UID, o.GID, tc.uid, tc.gid)
		}
	}
}

func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want os.FileMode
		ok   bool
	}{
		{"0600", 0o600, true}, {"640", 0o640, true}, {"0", 0, false}, {"rw-r-----", 0, false}, {"01600", 0, false},
	} {
		got, err := agent.ParseMode(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
