//go:build cgo

package main

import (
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/issuer"
)

// TestPKCS11EndToEnd runs the real binaries against a SoftHSM2 token:
// `rotor-ca init --signer pkcs11` makes the issuing key inside the token
// (non-extractable; no key file anywhere), `rotor-ca serve --signer pkcs11`
// issues with it, and a second key made in the same token takes over on
// SIGHUP. The PIN reaches init through ROTOR_PKCS11_PIN and serve through
// --pkcs11-pin-file.
func TestPKCS11EndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	hsm := testenv.NewSoftHSM(t) // sets SOFTHSM2_CONF, which the binaries inherit
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(hsm.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pinEnv := []string{"ROTOR_PKCS11_PIN=" + hsm.PIN}
	pkcs11Args := func(label string) []string {
		return []string{"--signer", "pkcs11", "--pkcs11-module", hsm.Module, "--pkcs11-token", hsm.Label,
			"--pkcs11-key-label", label}
	}
	ca1, ca2 := filepath.Join(dir, "ca1"), filepath.Join(dir, "ca2")
	initCA(t, pinEnv, ca1, pkcs11Args("issuer-1")...)
	issuer1 := readCerts(t, filepath.Join(ca1, issuer.IssuerCertFile))[0]
	root := readCerts(t, filepath.Join(ca1, issuer.RootCertFile))[0]
	if _, err := os.Stat(filepath.Join(ca1, issuer.IssuerKeyFile)); err == nil {
		t.Fatal("init --signer pkcs11 wrote an issuer key file")
	}
	checkTokenKey(t, hsm, "issuer-1", issuer1)

	// serve finds what init made in its data directory: issuer.conf and
	// bundle.pem, with no flag naming them.
	data := ca1
	conf := filepath.Join(ca1, issuer.ConfigFile)
	ca := serveCA(t, nil, filepath.Join(ca1, issuer.BundleFile), "--data-dir", data, "--pkcs11-pin-file", pinFile,
		"--reload-interval", "0")
	if code, body := e2etest.HTTPGet(ca.URL+"/readyz", ca.Roots); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	token := createToken(t, data, "payments", "api")
	cl := ca.client(t)
	for range 3 {
		got, err := issue(t.Context(), cl, token)
		if err != nil {
			t.Fatalf("issue with the token's key: %v", err)
		}
		if err := verifyIssued(got, root); err != nil || !got.Chain[0].Equal(issuer1) {
			t.Fatalf("certificate from %q does not chain through issuer-1 to the root: %v", got.Chain[0].Subject, err)
		}
		if err := got.Leaf.CheckSignatureFrom(issuer1); err != nil {
			t.Fatalf("leaf not signed by the token's key: %v", err)
		}
	}

	// A new issuing key in the same token, under the same root, takes
	// over when issuer.conf names it and the CA gets SIGHUP.
	initCA(t, pinEnv, ca2, append(pkcs11Args("issuer-2"), "--root-cert", filepath.Join(ca1, issuer.RootCertFile),
		"--root-key", filepath.Join(ca1, issuer.RootKeyFile))...)
	issuer2 := readCerts(t, filepath.Join(ca2, issuer.IssuerCertFile))[0]
	checkTokenKey(t, hsm, "issuer-2", issuer2)
	e2etest.ReplaceFile(t, conf, readFileBytes(t, filepath.Join(ca2, issuer.ConfigFile)))
	ca.hup(t)
	if n := ca.reloads(t, "ok"); n != 1 {
		t.Fatalf("%v successful reloads, want 1", n)
	}
	got, err := issue(t.Context(), cl, token)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Chain[0].Equal(issuer2) || got.Leaf.CheckSignatureFrom(issuer2) != nil || verifyIssued(got, root) != nil {
		t.Fatalf("after the reload, issued by %q (key id %s), want issuer-2", got.Chain[0].Subject,
			hex.EncodeToString(got.Chain[0].SubjectKeyId))
	}
	if code := ca.Stop(t); code != 0 {
		t.Errorf("rotor-ca exited %d on SIGTERM", code)
	}
}

// checkTokenKey finds the key pair labelled label on the token, checks it
// is the one cert certifies and that the token will not let it out.
func checkTokenKey(t *testing.T, hsm *testenv.SoftHSM, label string, cert *x509.Certificate) {
	t.Helper()
	c, err := crypto11.Configure(&crypto11.Config{Path: hsm.Module, TokenLabel: hsm.Label, Pin: hsm.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key, err := c.FindKeyPair(nil, []byte(label))
	if err != nil || key == nil {
		t.Fatalf("no key pair %q on the token: %v", label, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		t.Fatalf("key %q on the token is not the key of %q", label, cert.Subject)
	}
	attrs, err := c.GetAttributes(key, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[crypto11.AttributeType]byte{crypto11.CkaSensitive: 1, crypto11.CkaExtractable: 0} {
		if v := attrs[typ].Value; len(v) != 1 || v[0] != want {
			t.Errorf("key %q attribute %#x = %v, want %d", label, typ, v, want)
		}
	}
}

func readFileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
