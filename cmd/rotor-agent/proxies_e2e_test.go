package main_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	agentpkg "github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// proxy is a TLS server nobody here wrote, as docs/proxies.md configures
// it: its configuration, how it starts and the agent flags that reload it.
type proxy struct {
	name, install string
	bins          []string // commands it needs on PATH
	configFile    string   // its configuration's name in its directory
	// config is its configuration file for files in out, serving on port
	// to the client whose certificate's subject CN is peer, with its own
	// state in dir.
	config func(dir, out string, port int, peer string) string
	// start is its command line; reload the agent's --exec.
	start  func(dir string) []string
	reload func(dir string) string
	layout []string // the agent's output flags
	// private is the file holding the key, which must have keyMode.
	private string
	keyMode os.FileMode
	// verified starts the answer when the proxy verified the client's
	// certificate; the client's serial (hex) follows.
	verified string
}

var proxies = []proxy{{
	name: "nginx", install: "apt-get install -y nginx", bins: []string{"nginx"},
	configFile: "nginx.conf", config: nginxConfig,
	start: func(dir string) []string {
		return []string{"nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr"}
	},
	reload: func(dir string) string {
		return fmt.Sprintf("nginx -p %s -c %s/nginx.conf -e stderr -s reload", dir, dir)
	},
	verified: "SUCCESS", private: "key.pem", keyMode: 0o600,
}, {
	name: "haproxy", install: "apt-get install -y haproxy socat", bins: []string{"haproxy", "socat"},
	configFile: "haproxy.cfg", config: haproxyConfig,
	start: func(dir string) []string {
		return []string{"haproxy", "-W", "-S", filepath.Join(dir, "master.sock"), "-f", filepath.Join(dir, "haproxy.cfg")}
	},
	reload: func(dir string) string {
		return fmt.Sprintf("echo reload | socat stdio unix-connect:%s/master.sock", dir)
	},
	layout:   []string{"--combined-file", "haproxy.pem", "--key-mode", "0640"},
	verified: "0", // ssl_c_verify: X509_V_OK
	private:  "haproxy.pem", keyMode: 0o640,
}}

// nginxConfig is docs/proxies.md's server block in a configuration of its
// own: foreground, logging to stderr, its pid and temporary files in dir,
// workers as the current user.
func nginxConfig(dir, out string, port int, peer string) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers as the test's user, not nobody
	}
	return fmt.Sprintf(`daemon off;
%[4]s
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[3]d ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate        %[2]s/cert.pem;
    ssl_certificate_key    %[2]s/key.pem;
    ssl_client_certificate %[2]s/bundle.pem;
    ssl_verify_client on;
    ssl_verify_depth 2;
    if ($ssl_client_s_dn != "CN=%[5]s") { return 403; }
    location / { return 200 "$ssl_client_verify $ssl_client_serial\n"; }
  }
}
`, dir, out, port, user, peer)
}

// haproxyConfig is docs/proxies.md's frontend; the master socket is on
// the command line.
func haproxyConfig(_, out string, port int, peer string) string {
	return fmt.Sprintf(`global
  log stderr format raw local0 notice
defaults
  mode http
  log global
  timeout connect 5s
  timeout client 5s
  timeout server 5s
frontend mtls
  bind 127.0.0.1:%[2]d ssl crt %[1]s/haproxy.pem ca-file %[1]s/bundle.pem verify required
  http-request deny deny_status 403 unless { ssl_c_s_dn(CN) -m str %[3]s }
  http-request return status 200 content-type text/plain lf-string "%%[ssl_c_verify] %%[ssl_c_serial,hex]\n"
`, out, port, peer)
}

// TestProxies: nginx and HAProxy from Debian serve mTLS with the files a
// real rotor-agent keeps, reloaded by its --exec after each of (at least)
// three rotations of three-second certificates, while a Go client holding
// another identity's certificate (kept by the agent library, rotating as
// well) makes a new handshake per request; not one request may fail, and
// every server certificate the client meets must be one the agent wrote.
func TestProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and runs rotor-agent, nginx and HAProxy; skipped with -short")
	}
	t.Parallel()
	agentBin := e2etest.Build(t, t.TempDir(), "./cmd/rotor-agent")[0]
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			for _, bin := range p.bins {
				if _, err := exec.LookPath(bin); err != nil {
					testenv.Unavailable(t, bin, p.install)
				}
			}
			testProxy(t, p, agentBin)
		})
	}
}

func testProxy(t *testing.T, p proxy, agentBin string) {
	ca := catest.New(t, catest.Options{TTL: certTTL})
	work := t.TempDir()
	out, rootFile := filepath.Join(work, "certs"), filepath.Join(work, "root.crt")
	if err := os.WriteFile(rootFile, ca.Bundle.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	server := rotor.Identity{Namespace: "default", ServiceAccount: p.name}
	clientID := rotor.Identity{Namespace: "default", ServiceAccount: "client"}
	env := []string{"ROTOR_TOKEN=" + ca.Token(t, server)}
	args := append([]string{"--ca-url", ca.URL, "--ca-bundle", rootFile, "--out-dir", out, "--log-format", "json"}, p.layout...)
	agentLog, proxyLog := filepath.Join(work, "agent.log"), filepath.Join(work, p.name+".log")
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("rotor-agent log:\n%s\n%s log:\n%s", e2etest.ReadFile(t, agentLog), p.name, e2etest.ReadFile(t, proxyLog))
		}
	})
	// The init container's step: a certificate before the proxy starts.
	once := exec.Command(agentBin, append(args, "--once")...)
	once.Env = append(os.Environ(), env...)
	if b, err := once.CombinedOutput(); err != nil {
		t.Fatalf("rotor-agent --once: %v\n%s", err, b)
	}
	addr := startProxy(t, p, work, out, proxyLog, clientID.DNSName(catest.TrustDomain))
	agent := e2etest.StartEnv(t, env, agentLog, agentBin, append(args, "--exec", p.reload(work))...)

	var (
		mu            sync.Mutex
		clientSerials = map[string]bool{}
	)
	traffic := e2etest.StartMTLSClient(t, "https://"+addr, clientSource(t, ca, clientID).ClientConfig(server), "rotations",
		func(_ *http.Response, body []byte) error {
			verdict, serial, _ := strings.Cut(strings.TrimSpace(string(body)), " ")
			if verdict != p.verified || serial == "" {
				return fmt.Errorf("%s did not verify the client certificate: %q", p.name, body)
			}
			mu.Lock()
			clientSerials[strings.TrimLeft(strings.ToLower(serial), "0")] = true
			mu.Unlock()
			return nil
		})
	start := time.Now()
	e2etest.WaitFor(t, "three rotations served by "+p.name, 25*time.Second, func() bool {
		return traffic.ServerSerials() >= 4 || traffic.Err() != nil || agent.Exited()
	})
	traffic.Stop(t)
	if code := agent.Stop(t); code != 0 {
		t.Errorf("rotor-agent exited %d", code)
	}
	checkProxyRun(t, p, agentLog, traffic, len(clientSerials), time.Since(start))
	checkRefusals(t, p, ca, addr, server)
	if fi, err := os.Stat(filepath.Join(out, p.private)); err != nil || fi.Mode().Perm() != p.keyMode {
		t.Errorf("%s: %v (%v), want mode %v", p.private, fi.Mode(), err, p.keyMode)
	}
}

// startProxy writes p's configuration in dir for the files in out, with
// peer the client's CN, starts p and returns the address it serves on.
func startProxy(t *testing.T, p proxy, dir, out, logPath, peer string) string {
	t.Helper()
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, p.configFile), []byte(p.config(dir, out, port, peer)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := p.start(dir)
	srv := e2etest.StartGroup(t, logPath, cmd[0], cmd[1:]...)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e2etest.WaitFor(t, p.name+" listening on "+addr, 20*time.Second, func() bool {
		if srv.Exited() {
			t.Fatalf("%s exited at start:\n%s", p.name, e2etest.ReadFile(t, logPath))
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// checkRefusals: the proxy answers no client without a certificate, and
// refuses a certificate of the same CA for another identity (403).
func checkRefusals(t *testing.T, p proxy, ca *catest.CA, addr string, server rotor.Identity) {
	t.Helper()
	if code, _ := e2etest.HTTPGet("https://"+addr, ca.Roots); code == http.StatusOK {
		t.Errorf("%s answered 200 to a client without a certificate", p.name)
	}
	stranger := clientSource(t, ca, rotor.Identity{Namespace: "default", ServiceAccount: "stranger"})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: stranger.ClientConfig(server)}}
	resp, err := hc.Get("https://" + addr)
	if err != nil {
		t.Fatalf("another identity's client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("%s answered another identity's client %d, want 403", p.name, resp.StatusCode)
	}
}

// checkProxyRun checks the agent's log against what the client met: every
// server certificate was written by the agent, no hook failed, and the
// client's own certificate rotated through the proxy's verification.
func checkProxyRun(t *testing.T, p proxy, agentLog string, traffic *e2etest.MTLSTraffic, clientCerts int, took time.Duration) {
	t.Helper()
	written := e2etest.Events(t, agentLog, agentpkg.EventWritten)
	l := &e2etest.JSONLog{}
	_, _ = l.Write([]byte(e2etest.ReadFile(t, agentLog)))
	if n := l.Count("ERROR"); n > 0 {
		t.Errorf("the agent logged %d errors (a failed reload?)", n)
	}
	served := traffic.ServerSerials()
	if served < 4 || served > len(written)+1 { // +1: the --once certificate
		t.Errorf("the client met %d server certificates; the agent wrote %d after the first", served, len(written))
	}
	if clientCerts < 2 {
		t.Errorf("%s saw %d client certificates; the client's rotated too", p.name, clientCerts)
	}
	t.Logf("%s: %d requests in %v, none failed; %d server certificates served (%d rotations), %d client certificates verified",
		p.name, traffic.Requests(), took.Round(time.Millisecond), served, served-1, clientCerts)
}

// clientSource is the client's side: the agent library keeping id's
// certificate in a directory, read through client.TLSSource.
func clientSource(t *testing.T, ca *catest.CA, id rotor.Identity) *client.TLSSource {
	t.Helper()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "root.crt")
	if err := os.WriteFile(bundle, ca.Bundle.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := agentpkg.New(agentpkg.Config{CAURL: ca.URL, CABundleFile: bundle, Token: ca.Token(t, id),
		OutDir: filepath.Join(dir, "certs"), KeyType: rotor.ECDSAP256, RenewBefore: agentpkg.DefaultRenewBefore,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var src *client.TLSSource
	e2etest.WaitFor(t, "the client's certificate", 20*time.Second, func() bool {
		src, err = client.NewTLSSource(filepath.Join(dir, "certs"), slog.New(slog.DiscardHandler))
		return err == nil
	})
	return src
}

// freePort is a TCP port on 127.0.0.1 nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
