package deploy

import (
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/internal/e2etest"
)

// stack is a real rotor-ca on its development defaults and a real
// rotor-agent holding a certificate from it, both logging JSON.
type stack struct {
	caURL, agentURL string
	rootFile        string
	roots           *x509.CertPool
	serving         map[string]any // the CA's rotor.EventServing attributes
}

// startStack starts the binaries TestMain built, stopped when t ends.
func startStack(t *testing.T) *stack {
	t.Helper()
	cat := loadCatalog(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "rotor-data")
	ca := e2etest.Start(t, filepath.Join(dir, "ca.log"), filepath.Join(cat.bin, "rotor-ca"), "serve",
		"--data-dir", data, "--listen", "127.0.0.1:0", "--log-format", "json")
	s := &stack{rootFile: filepath.Join(data, "root.crt")}
	s.serving = ca.WaitEvent(t, rotor.EventServing, time.Minute)
	s.caURL, _ = s.serving["addr"].(string)
	pemBytes, err := os.ReadFile(s.rootFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := rotor.ParseCertificates(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := rotor.NewBundle(roots)
	if err != nil {
		t.Fatal(err)
	}
	s.roots = bundle.Pool()
	token, err := exec.Command(filepath.Join(cat.bin, "rotor-ca"), "token", "create", "--data-dir", data,
		"--namespace", "default", "--service-account", "webapp").Output()
	if err != nil {
		t.Fatalf("rotor-ca token create: %v", err)
	}
	ag := e2etest.StartEnv(t, []string{"ROTOR_TOKEN=" + strings.TrimSpace(string(token))}, filepath.Join(dir, "agent.log"),
		filepath.Join(cat.bin, "rotor-agent"), "--ca-url", s.caURL, "--ca-bundle", s.rootFile,
		"--out-dir", filepath.Join(dir, "certs"), "--listen", "127.0.0.1:0", "--log-format", "json")
	listening := ag.WaitEvent(t, agent.EventListening, time.Minute)
	addr, _ := listening["listen"].(string)
	s.agentURL = "http://" + addr
	ag.WaitEvent(t, agent.EventWritten, time.Minute)
	return s
}

func (s *stack) caMetrics(t *testing.T) string { return get(t, s.caURL+"/metrics", s.roots) }

func (s *stack) agentMetrics(t *testing.T) string { return get(t, s.agentURL+"/metrics", nil) }

// get fetches url, failing the test unless it answers 200.
func get(t *testing.T, url string, roots *x509.CertPool) string {
	t.Helper()
	code, body := e2etest.HTTPGet(url, roots)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return body
}
