package deploy

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// sandbox plays docker-compose without Docker: each named volume is a
// directory, and a service's container paths are rewritten to the
// directories of the volumes it mounts there, so services share files
// exactly as their volume lists say.
type sandbox struct {
	t      *testing.T
	root   string
	stages map[string]*stage
	cat    *catalog
	// env replaces these variables' values whatever the file says: the
	// store is the test's database, the module this machine's.
	env map[string]string
}

func (b *sandbox) volume(name string) string { return filepath.Join(b.root, "volumes", name) }

// rewrite maps the container paths in s to host paths for service s.
func (b *sandbox) rewrite(svc *composeService, s string) string {
	ms := svc.mounts()
	slices.SortFunc(ms, func(a, b mount) int { return len(b.target) - len(a.target) })
	for _, m := range ms {
		s = strings.ReplaceAll(s, m.target, b.volume(m.volume))
	}
	return s
}

// command returns the service's argv and environment, rewritten. The
// image's ENV comes first, then the service's; a file the image holds under
// /etc/rotor is copied from the repository with its paths rewritten too.
func (b *sandbox) command(name string, svc *composeService) ([]string, []string) {
	b.t.Helper()
	argv, st, err := svc.argv(b.stages)
	if err != nil || argv == nil {
		b.t.Fatalf("service %s: %v", name, err)
	}
	for i := range argv {
		argv[i] = b.rewrite(svc, argv[i])
	}
	if src := st.copiedFrom(argv[0]); src != "" { // the image's own script: run the repository's
		script, err := filepath.Abs(filepath.Join(repoRoot, src))
		if err != nil {
			b.t.Fatal(err)
		}
		argv = append([]string{"sh", script}, argv[1:]...)
	}
	if isRotorBinary(argv[0]) {
		argv[0] = filepath.Join(b.cat.bin, filepath.Base(argv[0]))
	}
	env := []string{"PATH=" + b.cat.bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + b.root}
	add := func(k, v string) {
		if over, ok := b.env[k]; ok {
			v = over
		}
		if strings.HasPrefix(v, "/etc/rotor/") {
			v = b.imageFile(name, svc, v)
		}
		env = append(env, k+"="+b.rewrite(svc, v))
	}
	for k, v := range st.env {
		add(k, v)
	}
	for k, v := range svc.Environment {
		add(k, v)
	}
	return argv, env
}

// imageFile writes the repository file the image copies to path, with the
// container paths in it rewritten for service name, and returns its path.
func (b *sandbox) imageFile(name string, svc *composeService, path string) string {
	b.t.Helper()
	for _, st := range b.stages {
		for _, c := range st.copies {
			if strings.HasPrefix(c[0], "--") || c[len(c)-1] != path {
				continue
			}
			data, err := os.ReadFile(filepath.Join(repoRoot, c[0]))
			if err != nil {
				b.t.Fatal(err)
			}
			out := filepath.Join(b.root, "image-"+name, path)
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				b.t.Fatal(err)
			}
			if err := os.WriteFile(out, []byte(b.rewrite(svc, string(data))), 0o644); err != nil {
				b.t.Fatal(err)
			}
			return out
		}
	}
	b.t.Fatalf("no Dockerfile COPY puts a file at %s", path)
	return ""
}

// run runs a service to completion and fails the test if it fails.
func (b *sandbox) run(name string, svc *composeService, extraEnv ...string) {
	b.t.Helper()
	argv, env := b.command(name, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = append(env, extraEnv...), b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("service %s (%q): %v\n%s", name, argv, err, out)
	}
}

// TestComposeCAIssues runs the CA side of docker-compose.yml for real:
// rotor-ca-init.sh (twice: it must be idempotent), the tokens service's
// script, rotor-ca with the compose command and environment on PostgreSQL
// and the SoftHSM2 token, then each agent's settings with --once. Every
// agent must come away with a certificate for its identity that chains to
// the root the init step made.
func TestComposeCAIssues(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rotor-ca on PostgreSQL and SoftHSM2; skipped with -short")
	}
	for _, tool := range []string{"softhsm2-util", "sh", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, tool, "apt-get install -y softhsm2 coreutils")
		}
	}
	module := cmp.Or(os.Getenv(testenv.PKCS11ModuleEnv), testenv.DefaultSoftHSMModule)
	if _, err := os.Stat(module); err != nil {
		testenv.Unavailable(t, "the SoftHSM2 PKCS#11 module", "apt-get install -y softhsm2, or set "+testenv.PKCS11ModuleEnv)
	}
	b := &sandbox{t: t, root: t.TempDir(), cat: loadCatalog(t),
		env: map[string]string{"ROTOR_STORE": testenv.PostgresURL(t), "ROTOR_PKCS11_MODULE": module}}
	b.stages, _ = parseDockerfile(t)
	f := loadCompose(t)
	for v := range f.Volumes {
		if err := os.MkdirAll(b.volume(v), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The image's /var/lib/softhsm/tokens, copied into the fresh volume.
	if err := os.MkdirAll(filepath.Join(b.volume("hsm"), "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}

	b.run("rotor-ca-init", f.Services["rotor-ca-init"])
	b.run("rotor-ca-init", f.Services["rotor-ca-init"])
	// The CA's volume holds no private key: the issuing key is in the
	// token, the root's in a volume only the init step mounts.
	for _, key := range []string{"ca/root.key", "ca/issuer.key", "pki/root.key"} {
		if _, err := os.Stat(filepath.Join(b.root, "volumes", key)); err == nil {
			t.Errorf("volume %s holds a private key", key)
		}
	}
	if _, err := os.Stat(filepath.Join(b.volume("root-key"), "root.key")); err != nil {
		t.Errorf("the root key is not in its volume: %v", err)
	}
	b.run("tokens", f.Services["tokens"])

	caURL := startCA(t, b, f.Services["rotor-ca"])
	roots, err := os.ReadFile(filepath.Join(b.volume("pki"), "bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	rootCerts, err := rotor.ParseCertificates(roots)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(rootCerts[0])
	for _, svc := range []string{"webapp", "api"} {
		agent := f.Services[svc+"-agent"]
		checkServingName(t, caURL, agent.Environment["ROTOR_CA_URL"], pool)
		b.env["ROTOR_CA_URL"] = caURL
		b.run(svc+"-agent", agent, "ROTOR_ONCE=true")
		files, _, err := client.ReadFiles(b.volume(svc + "-certs"))
		if err != nil {
			t.Fatalf("%s-agent wrote no certificate: %v", svc, err)
		}
		leaf, err := rotor.ParseCertificates(files.Cert)
		if err != nil {
			t.Fatal(err)
		}
		_, id, err := client.LeafIdentity(leaf[0])
		if err != nil || id != (rotor.Identity{Namespace: "default", ServiceAccount: svc}) {
			t.Errorf("%s-agent got a certificate for %v (%v), want default/%s", svc, id, err, svc)
		}
		inter := x509.NewCertPool()
		for _, c := range leaf[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s's certificate does not chain to the init step's root: %v", svc, err)
		}
	}
}

// checkServingName connects to the CA at caURL as an agent configured with
// composeURL would: the serving certificate must name composeURL's host.
func checkServingName(t *testing.T, caURL, composeURL string, roots *x509.CertPool) {
	t.Helper()
	u, err := url.Parse(composeURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(caURL, "https://"), &tls.Config{ServerName: u.Hostname(), RootCAs: roots})
	if err != nil {
		t.Fatalf("the CA's serving certificate is not valid for %s, the host agents use: %v", u.Hostname(), err)
	}
	conn.Close()
}

// startCA starts the rotor-ca service on a free port of 127.0.0.1 and
// returns its URL under the name the compose agents use, resolved here.
func startCA(t *testing.T, b *sandbox, svc *composeService) string {
	t.Helper()
	argv, env := b.command("rotor-ca", svc)
	if i := slices.Index(argv, "--listen"); i > 0 {
		argv[i+1] = "127.0.0.1:0"
	}
	// JSON, so the test reads the serving event rather than a message.
	argv = append(argv, "--log-format", "json")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, b.root
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var seen []string
	deadline := time.After(time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("rotor-ca exited:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			var event struct{ Event, Addr string }
			if json.Unmarshal([]byte(line), &event) == nil && event.Event == rotor.EventServing {
				addr := event.Addr
				go func() { // keep the pipe drained
					for range lines {
					}
				}()
				return addr
			}
		case <-deadline:
			t.Fatalf("rotor-ca did not serve within a minute:\n%s", strings.Join(seen, "\n"))
		}
	}
}
