package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/agent/workloadapi"
	"github.com/rotor-dev/rotor/internal/cli"
)

// TestWorkloadAPISocketFlags: the socket's path, mode and group reach the
// listener from flags or ROTOR_ variables; a mode that is not permission
// bits in octal, or a socket with --once, is a usage error. Not parallel:
// it sets the environment.
func TestWorkloadAPISocketFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    workloadapi.Socket
		wantErr string
	}{
		{name: "ok/off", want: workloadapi.Socket{Mode: workloadapi.DefaultMode}},
		{name: "ok/flags", args: []string{"--workload-api-socket", "/run/s.sock", "--workload-api-socket-mode", "0660",
			"--workload-api-socket-group", "proxy"}, want: workloadapi.Socket{Path: "/run/s.sock", Mode: 0o660, Group: "proxy"}},
		{name: "ok/env", env: map[string]string{"ROTOR_WORKLOAD_API_SOCKET": "/run/s.sock", "ROTOR_WORKLOAD_API_SOCKET_MODE": "640"},
			want: workloadapi.Socket{Path: "/run/s.sock", Mode: 0o640}},
		{name: "fail/mode-not-octal", args: []string{"--workload-api-socket-mode", "rw-rw----"}, wantErr: "--workload-api-socket-mode"},
		{name: "fail/mode-beyond-permissions", args: []string{"--workload-api-socket-mode", "4755"}, wantErr: "--workload-api-socket-mode"},
		{name: "fail/with-once", args: []string{"--workload-api-socket", "/run/s.sock", "--once"}, wantErr: "--once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := cli.NewFlagSet("rotor-agent", envPrefix, io.Discard)
			var (
				cfg agent.Config
				opt options
			)
			opt.keyType = "ecdsa-p256"
			register(fs, &cfg, &opt)
			err := fs.Parse(tt.args)
			if err == nil {
				err = opt.apply(&cfg)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || opt.socket != tt.want {
				t.Errorf("socket %+v, error %v; want %+v", opt.socket, err, tt.want)
			}
		})
	}
	var help bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, io.Discard, &help); code != 0 ||
		!strings.Contains(help.String(), "[$ROTOR_WORKLOAD_API_SOCKET_GROUP]") {
		t.Errorf("--help (exit %d) does not list the socket's flags with their variables:\n%s", code, help.String())
	}
}
