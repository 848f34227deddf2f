package cli

import (
	"errors"
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
		source  string
		wantErr string // "" for success
	}{
		{name: "ok/default", want: 24 * time.Hour},
		{name: "ok/env", env: map[string]string{"ROTOR_CERT_TTL": "1h"}, want: time.Hour, source: "$ROTOR_CERT_TTL"},
		{name: "ok/flag-wins-over-env", args: []string{"--cert-ttl", "2h"}, env: map[string]string{"ROTOR_CERT_TTL": "1h"},
			want: 2 * time.Hour, source: "--cert-ttl"},
		{name: "ok/alias", args: []string{"--identity-issuance-lifetime", "3h"}, want: 3 * time.Hour, source: "--identity-issuance-lifetime"},
		{name: "ok/alias-and-flag-agree", args: []string{"--cert-ttl", "60m", "--identity-issuance-lifetime", "1h"},
			want: time.Hour, source: "--cert-ttl"},
		{name: "ok/alias-wins-over-env", args: []string{"--identity-issuance-lifetime", "3h"},
			env: map[string]string{"ROTOR_CERT_TTL": "1h"}, want: 3 * time.Hour, source: "--identity-issuance-lifetime"},
		{name: "fail/alias-and-flag-differ", args: []string{"--cert-ttl", "1h", "--identity-issuance-lifetime", "2h"},
			wantErr: "--cert-ttl is given 2 different values (1h0m0s, 2h0m0s)"},
		{name: "fail/flag-twice", args: []string{"--cert-ttl", "1h", "--cert-ttl", "2h", "--cert-ttl", "1h"},
			wantErr: "2 different values"},
		{name: "fail/alias-env", env: map[string]string{"ROTOR_IDENTITY_ISSUANCE_LIFETIME": "1h"},
			wantErr: "ROTOR_IDENTITY_ISSUANCE_LIFETIME is not read"},
		{name: "fail/bad-env", env: map[string]string{"ROTOR_CERT_TTL": "soon"}, wantErr: "ROTOR_CERT_TTL (for --cert-ttl) is invalid"},
		{name: "fail/argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			f := NewFlagSet("test", "ROTOR_", io.Discard)
			ttl := f.Duration("cert-ttl", 24*time.Hour, "lifetime")
			f.Alias("identity-issuance-lifetime", "cert-ttl", "Linkerd's name")
			err := f.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want a usage error saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "soon") {
					t.Errorf("error %q echoes the environment value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *ttl != tt.want {
				t.Errorf("cert-ttl = %v, want %v", *ttl, tt.want)
			}
			if src, _ := f.Given("cert-ttl"); src != tt.source {
				t.Errorf("source %q, want %q", src, tt.source)
			}
		})
	}
}

// TestHelp: every flag with its type, default and variable, the
// precedence rule, and usage text printed as written (a backquoted word is
// not taken for the argument's name).
func TestHelp(t *testing.T) {
	var out strings.Builder
	f := NewFlagSet("test", "ROTOR_", &out)
	f.String("issuer-config", "", "file as `rotor-ca init` writes it")
	f.Bool("once", false, "run once")
	f.Duration("cert-ttl", 24*time.Hour, "lifetime")
	f.Alias("identity-issuance-lifetime", "cert-ttl", "Linkerd's name")
	if err := f.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v", err)
	}
	for _, want := range []string{
		"--issuer-config string\n    \tfile as `rotor-ca init` writes it [$ROTOR_ISSUER_CONFIG]",
		"--once\n    \trun once [$ROTOR_ONCE]",
		`--cert-ttl duration` + "\n    \tlifetime (default \"24h0m0s\") [$ROTOR_CERT_TTL]",
		"--identity-issuance-lifetime duration\n    \talias of --cert-ttl (Linkerd's name) (default \"24h0m0s\")\n",
		"else its environment variable",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}
