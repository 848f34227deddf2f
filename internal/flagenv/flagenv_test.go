package flagenv

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{name: "ok/default", want: 24 * time.Hour},
		{name: "ok/env", env: map[string]string{"ROTOR_CERT_TTL": "1h"}, want: time.Hour},
		{name: "ok/flag-wins-over-env", args: []string{"--cert-ttl", "2h"}, env: map[string]string{"ROTOR_CERT_TTL": "1h"}, want: 2 * time.Hour},
		{name: "fail/bad-env", env: map[string]string{"ROTOR_CERT_TTL": "soon"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			ttl := fs.Duration("cert-ttl", 24*time.Hour, "lifetime")
			err := Parse(fs, "ROTOR_", tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && *ttl != tt.want {
				t.Errorf("cert-ttl = %v, want %v", *ttl, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "soon") {
				t.Errorf("error %q echoes the environment value", err)
			}
		})
	}
}

func TestUsageNamesEnv(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("pkcs11-module", "", "module path")
	_ = Parse(fs, "ROTOR_", nil)
	if u := fs.Lookup("pkcs11-module").Usage; !strings.Contains(u, "$ROTOR_PKCS11_MODULE") {
		t.Errorf("usage %q does not name the environment twin", u)
	}
}
