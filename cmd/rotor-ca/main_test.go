package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
)

// rotorCA and rotorAgent are the binaries under test, built once, in one
// go build, by TestMain.
var rotorCA, rotorAgent string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rotor-ca-test")
	if err != nil {
		panic(err)
	}
	rotorCA, rotorAgent = filepath.Join(dir, "rotor-ca"), filepath.Join(dir, "rotor-agent")
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), ".", "../rotor-agent")
	if out, err := build.CombinedOutput(); err != nil {
		panic("build rotor-ca and rotor-agent: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rotorCACmd runs a rotor-ca subcommand and returns stdout, stderr and the
// exit code.
func rotorCACmd(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(rotorCA, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func createToken(t *testing.T, dataDir, ns, sa string) string {
	t.Helper()
	return createTokenWith(t, ns, sa, "--data-dir", dataDir)
}

// createTokenWith is createToken in the store that args (--data-dir,
// --store) name.
func createTokenWith(t *testing.T, ns, sa string, args ...string) string {
	t.Helper()
	out, errOut, code := rotorCACmd(t, nil, append([]string{"token", "create", "--namespace", ns, "--service-account", sa}, args...)...)
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	if !strings.HasPrefix(token, "rotor_") || strings.Contains(token, "\n") {
		t.Fatalf("token create printed %q, want the token alone", out)
	}
	if strings.Contains(errOut, token) {
		t.Fatal("token create logged the token")
	}
	return token
}

// TestQuickStart follows the README: serve on the embedded default, create
// a token, make a key and CSR with openssl, get a certificate with curl, and
// check it with openssl verify against the bundle.
func TestQuickStart(t *testing.T) {
	needTools(t, "openssl", "curl")
	dir := t.TempDir()
	data := filepath.Join(dir, "rotor-data")
	ca := serveCA(t, nil, filepath.Join(data, "root.crt"), "--data-dir", data)
	for _, f := range []string{"root.key", "issuer.key"} {
		st, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, st.Mode().Perm())
		}
	}
	token := createToken(t, data, "default", "webapp")
	run := func(name string, args ...string) []byte { return runIn(t, dir, name, args...) }
	run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "key.pem", "-subj", "/", "-out", "req.csr")
	body := run("curl", "-sS", "--fail-with-body", "--cacert", filepath.Join(data, "root.crt"),
		"-H", "Authorization: Bearer "+token, "-H", "Content-Type: application/pkcs10",
		"--data-binary", "@req.csr", ca.URL+"/v1/certificates")
	var issued struct {
		Serial      string `json:"serial"`
		Identity    string `json:"identity"`
		Certificate string `json:"certificate"`
		Chain       string `json:"chain"`
	}
	if err := json.Unmarshal(body, &issued); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte(issued.Certificate), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chain.pem"), []byte(issued.Chain), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run("openssl", "verify", "-CAfile", filepath.Join(data, "root.crt"), "-untrusted", "chain.pem", "cert.pem")
	if !strings.Contains(string(out), "cert.pem: OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	// The certificate matches the key openssl made, so the pair works for TLS.
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		t.Fatalf("issued certificate does not match the key: %v", err)
	}
	block, _ := pem.Decode([]byte(issued.Certificate))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if want := "webapp.default.serviceaccount.identity.rotor.cluster.local"; issued.Identity != want || leaf.Subject.CommonName != want {
		t.Errorf("identity %q / CN %q, want %q", issued.Identity, leaf.Subject.CommonName, want)
	}
	event := ca.WaitEvent(t, rotor.EventIssued, 10*time.Second)
	if event["identity"] != "default/webapp" || event["serial"] != leaf.SerialNumber.Text(16) {
		t.Errorf("issuance event %v, want default/webapp and serial %s", event, leaf.SerialNumber.Text(16))
	}
	if strings.Contains(e2etest.ReadFile(t, ca.Log), token) {
		t.Error("the CA logged the token")
	}
	// The audit record is there, by serial, for the workload's token.
	client := tlsClient(t, filepath.Join(data, "root.crt"))
	get, err := http.NewRequest(http.MethodGet, ca.URL+"/v1/certificates/"+issued.Serial, nil)
	if err != nil {
		t.Fatal(err)
	}
	get.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(rec), `"namespace":"default"`) {
		t.Errorf("GET record: %d %s", resp.StatusCode, rec)
	}

	// A restart reuses the development PKI instead of making a new one.
	before := fileSnapshot(t, data, "root.crt", "root.key", "issuer.crt", "issuer.key", "bundle.pem")
	if code := ca.Stop(t); code != 0 {
		t.Fatalf("rotor-ca exited %d on SIGTERM", code)
	}
	serveCA(t, nil, filepath.Join(data, "root.crt"), "--data-dir", data)
	if after := fileSnapshot(t, data, "root.crt", "root.key", "issuer.crt", "issuer.key", "bundle.pem"); after != before {
		t.Error("a restart replaced the development CA's keys or certificates")
	}
}

// fileSnapshot is the contents of the named files in dir.
func fileSnapshot(t *testing.T, dir string, names ...string) string {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + "\n" + e2etest.ReadFile(t, filepath.Join(dir, n)))
	}
	return b.String()
}

func tlsClient(t *testing.T, rootFile string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "fail/no-command", args: nil, wantCode: 2},
		{name: "fail/unknown-command", args: []string{"frobnicate"}, wantCode: 2},
		{name: "fail/unknown-flag", args: []string{"serve", "--no-such-flag"}, wantCode: 2},
		{name: "fail/bad-env", env: []string{"ROTOR_CERT_TTL=forever"}, args: []string{"serve", "--data-dir", dir}, wantCode: 2, wantErr: "ROTOR_CERT_TTL"},
		{name: "fail/max-below-default", args: []string{"serve", "--data-dir", dir, "--cert-ttl", "48h", "--max-cert-ttl", "1h"}, wantCode: 2},
		{name: "fail/bad-store", args: []string{"serve", "--data-dir", dir, "--store", "mysql://x"}, wantCode: 2, wantErr: "--store"},
		{name: "fail/pkcs11-without-issuer", args: []string{"serve", "--data-dir", dir, "--signer", "pkcs11"}, wantCode: 2},
		{name: "fail/token-bad-identity", args: []string{"token", "create", "--data-dir", dir, "--namespace", "Bad", "--service-account", "x"}, wantCode: 2},
		{name: "fail/token-missing-identity", args: []string{"token", "create", "--data-dir", dir}, wantCode: 2},
		{name: "fail/pkcs11-key-file", args: []string{"serve", "--data-dir", dir, "--issuer-cert", "/x.crt", "--trust-bundle", "/b.pem", "--signer", "pkcs11", "--issuer-key", "/k.pem"}, wantCode: 2},
		{name: "fail/issuer-config-missing", args: []string{"serve", "--data-dir", dir, "--issuer-config", "/x.conf"}, wantCode: 1},
		{name: "fail/negative-reload-interval", args: []string{"serve", "--data-dir", dir, "--reload-interval", "-1s"}, wantCode: 2},
		{name: "fail/zero-handshake-timeout", args: []string{"serve", "--data-dir", dir, "--handshake-timeout", "0s"}, wantCode: 2, wantErr: "--handshake-timeout"},
		{name: "fail/roots-unknown-subcommand", args: []string{"roots", "list"}, wantCode: 2},
		{name: "fail/roots-status-no-root", args: []string{"roots", "status", "--data-dir", dir}, wantCode: 2},
		{name: "fail/roots-status-both", args: []string{"roots", "status", "--data-dir", dir, "--root", "/r.crt", "--root-fingerprint", "ab"}, wantCode: 2},
		{name: "fail/roots-status-bad-fingerprint", args: []string{"roots", "status", "--data-dir", dir, "--root-fingerprint", "xyz"}, wantCode: 2},
		{name: "ok/help", args: []string{"help"}, wantCode: 0},
		{name: "ok/init-help", args: []string{"init", "--help"}, wantCode: 0, wantErr: "ROTOR_PKCS11_KEY_LABEL"},
		{name: "ok/serve-help", args: []string{"serve", "--help"}, wantCode: 0, wantErr: "ROTOR_CERT_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := rotorCACmd(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr does not mention %q:\n%s", tt.wantErr, stderr)
			}
			if strings.Contains(stderr, "forever") {
				t.Error("an environment value was echoed")
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused commands wrote files: %v", entries)
	}
}

func TestServeRefusesWhilePortTaken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := serveCA(t, nil, filepath.Join(dir, "a", "root.crt"), "--data-dir", filepath.Join(dir, "a"))
	addr := strings.TrimPrefix(ca.URL, "https://")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, rotorCA, "serve", "--data-dir", filepath.Join(dir, "b"), "--listen", addr)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("second serve on %s: %v, want exit 1\n%s", addr, err, out)
	}
	if !strings.Contains(string(out), "listen on") {
		t.Errorf("no clear message:\n%s", out)
	}
}
