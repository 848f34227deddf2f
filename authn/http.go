package authn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
)

// newHTTPClient returns a client that verifies servers against the PEM
// bundle in caFile, or the system roots when caFile is "".
func newHTTPClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// readBody reads a response body of at most rotor.MaxResponse bytes.
func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, rotor.MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(b) > rotor.MaxResponse {
		return nil, fmt.Errorf("response larger than %d bytes", rotor.MaxResponse)
	}
	return b, nil
}

// tokenFile is a bearer token kept in a file, re-read once it is older than
// every: projected service-account tokens rotate (the kubelet rewrites them
// well before they expire), so a token read at startup goes stale.
type tokenFile struct {
	path  string
	every time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu     sync.Mutex
	token  string
	readAt time.Time
}

// get returns the current token. When a re-read fails it keeps serving the
// token it has, which is usually still valid, and says so in the log.
func (f *tokenFile) get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.token != "" && now.Sub(f.readAt) < f.every {
		return f.token, nil
	}
	b, err := os.ReadFile(f.path)
	token := strings.TrimSpace(string(b))
	if err == nil && token == "" {
		err = fmt.Errorf("token file %s is empty", f.path)
	}
	if err != nil {
		if f.token == "" {
			return "", fmt.Errorf("read bearer token: %w", err)
		}
		f.log.Warn("could not re-read bearer token file; keeping the previous token", "path", f.path, "error", err)
		f.readAt = now // retry at the next interval, not on every request
		return f.token, nil
	}
	f.token, f.readAt = token, now
	return token, nil
}
