package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
)

// TestCRLDistributionPoint follows the README's CRL section with the real
// binary: with --crl-url, an issued leaf names its CRL; after `rotor-ca
// certificate revoke`, curl fetches the CRL from exactly that URL, and
// openssl verifies it against issuer.crt and root.crt and reads the serial.
func TestCRLDistributionPoint(t *testing.T) {
	needTools(t, "openssl", "curl")
	dir := t.TempDir()
	data := filepath.Join(dir, "rotor-data")
	// The leaves must name the CA's own address, so it is chosen first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "https://" + addr + "/v1/crl"
	ca := serveCA(t, nil, filepath.Join(data, "root.crt"), "--data-dir", data, "--listen", addr, "--crl-url", base)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := issue(ctx, ca.client(t), createToken(t, data, "default", "webapp"))
	if err != nil {
		t.Fatal(err)
	}
	issuer := readCerts(t, filepath.Join(data, "issuer.crt"))[0]
	dp := base + "/" + hex.EncodeToString(issuer.SubjectKeyId)
	if !slices.Equal(got.Leaf.CRLDistributionPoints, []string{dp}) {
		t.Fatalf("leaf names CRL %v, want %s", got.Leaf.CRLDistributionPoints, dp)
	}
	serial := got.Leaf.SerialNumber.Text(16)
	if out, errOut, code := rotorCACmd(t, nil, "certificate", "revoke", serial, "--reason", "keyCompromise",
		"--data-dir", data); code != 0 {
		t.Fatalf("certificate revoke: exit %d: %s%s", code, out, errOut)
	}

	run := func(name string, args ...string) string { return string(runIn(t, dir, name, args...)) }
	fetch := func(url, file string) *x509.RevocationList {
		t.Helper()
		run("curl", "-sS", "--fail", "--cacert", filepath.Join(data, "root.crt"), "-o", file, url)
		der, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatalf("what %s serves is not a CRL: %v", url, err)
		}
		return rl
	}
	lists := func(rl *x509.RevocationList) bool {
		return slices.ContainsFunc(rl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
			return e.SerialNumber.Cmp(got.Leaf.SerialNumber) == 0 && e.ReasonCode == int(rotor.ReasonKeyCompromise)
		})
	}
	// A revocation reaches the CRL within about a second.
	var rl *x509.RevocationList
	e2etest.WaitFor(t, "the revoked serial on the CRL", 10*time.Second, func() bool {
		rl = fetch(dp, "crl.der")
		return lists(rl)
	})
	// The README fetches /v1/crl: the same CRL, or a later one.
	if readme := fetch(ca.URL+"/v1/crl", "readme.der"); readme.Number.Cmp(rl.Number) < 0 || !lists(readme) {
		t.Errorf("/v1/crl is CRL %x, the distribution point's %x", readme.Number, rl.Number)
	}
	chain := filepath.Join(dir, "chain.pem")
	pems := readCerts(t, filepath.Join(data, "issuer.crt"))
	pems = append(pems, readCerts(t, filepath.Join(data, "root.crt"))...)
	if err := os.WriteFile(chain, rotor.EncodeCertificates(pems), 0o600); err != nil {
		t.Fatal(err)
	}
	// openssl 3.0 exits 0 even when the signature fails: read what it says.
	if out := run("openssl", "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", chain, "-noout"); !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -CAfile issuer.crt+root.crt: %s", out)
	}
	if out := run("openssl", "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"); !strings.Contains(out,
		"Serial Number: "+strings.ToUpper(serial)) || !strings.Contains(out, "Key Compromise") {
		t.Fatalf("openssl does not read serial %s, keyCompromise:\n%s", serial, out)
	}
}

// TestServeRefusesCRLSettings: a CRL URL a leaf cannot carry, or a CRL
// validity too short for whole-second windows, is a usage error (exit 2)
// from the flag and from its environment twin alike.
func TestServeRefusesCRLSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"fail/crl-url-ftp", nil, []string{"--crl-url", "ftp://ca.example.com/crl"}, "http:// or https://"},
		{"fail/crl-url-query-from-env", []string{"ROTOR_CRL_URL=https://ca.example.com/crl?x=1"}, nil, "no user, query or fragment"},
		{"fail/crl-validity-1s", nil, []string{"--crl-validity", "1s"}, "--crl-validity must be at least 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			_, stderr, code := rotorCACmd(t, tt.env, append([]string{"serve", "--data-dir", dir}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, want 2 saying %q:\n%s", code, tt.want, stderr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("a refused serve made %s", dir)
			}
		})
	}
}
