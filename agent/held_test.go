package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

var now0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// TestRenewHeldPair: a pair whose write failed is written again without
// asking the CA while it is before its renewal point; past it, or once it
// has expired, renew asks the CA (here unreachable), keeping a pair that
// is still valid until a new one arrives.
func TestRenewHeldPair(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	ca.SetMode(catest.Unreachable)
	// A directory below a regular file cannot be made, by root either.
	bundle, blocked := filepath.Join(t.TempDir(), "root.crt"), filepath.Join(t.TempDir(), "file")
	if err := errors.Join(os.WriteFile(bundle, ca.Bundle.PEM, 0o644), os.WriteFile(blocked, nil, 0o644)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name               string
		renewAt, notAfter  time.Duration // from now0
		writable           bool
		wantCause          string
		wantHeld, wantDisk bool
	}{
		{name: "ok/before-renewal-point-written", renewAt: time.Minute, notAfter: time.Hour, writable: true, wantDisk: true},
		{name: "ok/due-but-valid-written", renewAt: -time.Minute, notAfter: time.Hour, writable: true, wantDisk: true},
		{name: "fail/before-renewal-point-write-again", renewAt: time.Minute, notAfter: time.Hour,
			wantCause: "write", wantHeld: true},
		{name: "fail/due-asks-the-ca-keeps-the-pair", renewAt: -time.Minute, notAfter: time.Hour,
			wantCause: string(rotor.ECAUnreachable), wantHeld: true},
		{name: "fail/expired-dropped", renewAt: -time.Hour, notAfter: -time.Second, writable: true,
			wantCause: string(rotor.ECAUnreachable)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(blocked, "out")
			if tt.writable {
				out = t.TempDir()
			}
			a, err := New(Config{CAURL: ca.URL, CABundleFile: bundle, Token: "rotor_x", OutDir: out,
				KeyType: rotor.ECDSAP256, RenewBefore: DefaultRenewBefore, Logger: slog.New(slog.DiscardHandler),
				Now: func() time.Time { return now0 }})
			if err != nil {
				t.Fatal(err)
			}
			leaf := &x509.Certificate{SerialNumber: big.NewInt(7), NotAfter: now0.Add(tt.notAfter)}
			p := &issuedPair{issued: &client.Issued{Serial: "07", Leaf: leaf, NotAfter: leaf.NotAfter},
				files: client.Files{Cert: []byte("cert"), Key: []byte("key"), Bundle: []byte("bundle")},
				key:   catest.NewKey(t), issuedAt: now0.Add(-time.Hour), renewAt: now0.Add(tt.renewAt)}
			a.held = p
			_, err = a.renew(context.Background())
			if got := causeOf(err); got != tt.wantCause {
				t.Errorf("renew = %v (cause %q), want cause %q", err, got, tt.wantCause)
			}
			if (a.held == p) != tt.wantHeld {
				t.Errorf("held pair kept: %v, want %v", a.held == p, tt.wantHeld)
			}
			if f, _, err := client.ReadFiles(out); (err == nil && string(f.Cert) == "cert") != tt.wantDisk {
				t.Errorf("pair on disk: %v, want %v", err == nil, tt.wantDisk)
			}
			if tt.wantDisk && (a.cur == nil || a.cur.cert.Leaf != leaf) {
				t.Error("the written pair is not current")
			}
		})
	}
}
