package workloadapi_test

import (
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/rotor-dev/rotor/agent/workloadapi"
)

// TestSocket: the socket gets its mode and group before it is reachable
// under its name, replaces a socket an agent left behind, refuses to
// replace anything else, and is removed on Close unless another socket
// took its place.
func TestSocket(t *testing.T) {
	t.Parallel()
	gid := os.Getgid()
	grp, err := user.LookupGroupId(strconv.Itoa(gid))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mode     os.FileMode
		group    string
		existing string // "", "socket", "file", "dir"
		rootOnly bool   // chown to a group the test's user is not in
		wantMode os.FileMode
		wantGID  int // 0: the test's own group
		wantErr  bool
	}{
		{name: "ok/default-mode", wantMode: workloadapi.DefaultMode},
		{name: "ok/mode-0660-group-id", mode: 0o660, group: strconv.Itoa(gid), wantMode: 0o660},
		{name: "ok/mode-0640-group-name", mode: 0o640, group: grp.Name, wantMode: 0o640},
		{name: "ok/mode-0666", mode: 0o666, wantMode: 0o666},
		{name: "ok/other-group", mode: 0o660, group: "65534", rootOnly: true, wantMode: 0o660, wantGID: 65534},
		{name: "ok/replaces-stale-socket", existing: "socket", wantMode: workloadapi.DefaultMode},
		{name: "fail/path-is-a-file", existing: "file", wantErr: true},
		{name: "fail/path-is-a-directory", existing: "dir", wantErr: true},
		{name: "fail/unknown-group", group: "no-such-group-rotor", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.rootOnly && os.Geteuid() != 0 {
				t.Skip("chown to another group needs root")
			}
			wantGID := gid
			if tt.wantGID != 0 {
				wantGID = tt.wantGID
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "sub", "agent.sock") // the directory is made
			if err := os.MkdirAll(filepath.Dir(path), 0o755); tt.existing != "" && err != nil {
				t.Fatal(err)
			}
			switch tt.existing {
			case "socket":
				stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				stale.SetUnlinkOnClose(false)
				stale.Close() // a dead agent's socket: the file stays
			case "file":
				if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
					t.Fatal(err)
				}
			case "dir":
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ln, err := workloadapi.Socket{Path: path, Mode: tt.mode, Group: tt.group}.Listen()
			if tt.wantErr {
				if err == nil {
					ln.Close()
					t.Fatal("Listen succeeded, want an error")
				}
				if tt.existing == "file" {
					if b, _ := os.ReadFile(path); string(b) != "keep me" {
						t.Errorf("the file at the socket's path was changed: %q", b)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tt.wantMode {
				t.Errorf("socket mode %v, want a socket with %v", fi.Mode(), tt.wantMode)
			}
			if got := fi.Sys().(*syscall.Stat_t).Gid; int(got) != wantGID {
				t.Errorf("socket group %d, want %d", got, wantGID)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Errorf("directory holds %d entries, want the socket alone", len(entries))
			}
			go func() {
				if c, err := ln.Accept(); err == nil {
					c.Close()
				}
			}()
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial the socket by its name: %v", err)
			}
			c.Close()
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("socket still there after Close: %v", err)
			}
		})
	}
}

// TestSocketCloseKeepsReplacement: an agent shutting down leaves alone a
// socket that a newer agent has put at the same path.
func TestSocketCloseKeepsReplacement(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "agent.sock")
	old, err := workloadapi.Socket{Path: path}.Listen()
	if err != nil {
		t.Fatal(err)
	}
	newer, err := workloadapi.Socket{Path: path}.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	old.Close()
	if _, err := net.Dial("unix", path); err != nil {
		t.Errorf("the newer socket is gone after the old one closed: %v", err)
	}
}
