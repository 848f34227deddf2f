package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// proc is a started binary whose stderr goes to a file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startProc(t *testing.T, logPath, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM; log:\n%s", p.cmd.Path, readFile(t, p.log))
	}
	return p.cmd.ProcessState.ExitCode()
}

// build compiles the module's command pkg into dir.
func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond; the limit only stops a hung test.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet fetches url with roots (nil: plain HTTP) and returns status and
// body, or status 0 if nothing answered.
func httpGet(url string, roots *x509.CertPool) (int, string) {
	hc := &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// sample reads one series from a Prometheus text page, 0 if absent.
func sample(page, series string) float64 {
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// diskPair loads the agent's files through ..data, as a workload would.
func diskPair(dir string) (*x509.Certificate, string, error) {
	f, version, err := client.ReadFiles(dir)
	if err != nil {
		return nil, "", err
	}
	pair, err := tls.X509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, "", fmt.Errorf("version %s: %w", version, err)
	}
	if _, err := rotor.ParseCertificates(f.Bundle); err != nil {
		return nil, "", fmt.Errorf("version %s bundle: %w", version, err)
	}
	return pair.Leaf, version, nil
}

// watchPairs reads the pair in a loop until ctx ends and returns the first
// error seen, if any.
func watchPairs(ctx context.Context, dir string) func() error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, _, err := diskPair(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() error {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return first
	}
}
