package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

var (
	webappID = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}
	apiID    = rotor.Identity{Namespace: "default", ServiceAccount: "api"}
	otherID  = rotor.Identity{Namespace: "default", ServiceAccount: "other"}
)

// sourceFor issues a certificate for id from ca, writes it the way
// rotor-agent does, and loads it as the roles do.
func sourceFor(t *testing.T, ca *catest.CA, id rotor.Identity) *client.TLSSource {
	t.Helper()
	key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := client.NewCSR(key)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{URL: ca.URL, Roots: ca.Roots})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := cl.Issue(context.Background(), client.IssueRequest{CSR: csr, Token: ca.Token(t, id)})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := rotor.EncodePrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "certs")
	files := client.Files{Cert: iss.PEM, Key: keyPEM, Bundle: rotor.EncodeCertificates([]*x509.Certificate{ca.Root})}
	if err := client.WriteFiles(dir, files, time.Now()); err != nil {
		t.Fatal(err)
	}
	src, err := waitForSource(context.Background(), dir, 10*time.Second, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serveAPI runs the api role on src over real TLS on 127.0.0.1.
func serveAPI(t *testing.T, src *client.TLSSource, allow ...rotor.Identity) (*apiServer, string) {
	t.Helper()
	a := newAPIServer(src, allow, quiet())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := a.httpServer()
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	return a, "https://" + ln.Addr().String()
}

// TestCallAPI checks both sides' identity checks: the api serves only
// default/webapp, and webapp accepts only a server proving default/api.
func TestCallAPI(t *testing.T) {
	ca := catest.New(t, catest.Options{})
	sources := map[rotor.Identity]*client.TLSSource{}
	for _, id := range []rotor.Identity{webappID, apiID, otherID} {
		sources[id] = sourceFor(t, ca, id)
	}
	tests := []struct {
		name           string
		caller, server rotor.Identity
		wantKind       string // "" for success
		wantServed     int64
		// wantRefused counts the api's refusals: the handshake failure
		// the caller sees carries no code of its own.
		wantRefused int64
	}{
		{name: "ok/webapp-calls-api", caller: webappID, server: apiID, wantServed: 1},
		{name: "fail/other-caller-refused-by-api", caller: otherID, server: apiID,
			wantKind: "transport", wantRefused: 1},
		{name: "fail/server-not-api-refused-by-webapp", caller: webappID, server: otherID, wantKind: "transport"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, url := serveAPI(t, sources[tc.server], webappID)
			c := newCaller(sources[tc.caller], url, apiID, 5*time.Second, quiet())
			err := c.call(context.Background())
			var ce *callError
			switch {
			case tc.wantKind == "" && err != nil:
				t.Fatalf("call: %v", err)
			case tc.wantKind != "" && (!errors.As(err, &ce) || ce.Kind != tc.wantKind):
				t.Fatalf("call error = %v, want kind %q", err, tc.wantKind)
			}
			wantFailed := int64(0)
			if tc.wantKind != "" {
				wantFailed = 1
			}
			if c.requests.Load() != 1 || c.failed.Load() != wantFailed {
				t.Errorf("webapp counted %d requests, %d failed; want 1, %d", c.requests.Load(), c.failed.Load(), wantFailed)
			}
			if a.served.Load() != tc.wantServed || a.refused.Load() != tc.wantRefused {
				t.Errorf("api served %d, refused %d; want %d, %d", a.served.Load(), a.refused.Load(), tc.wantServed, tc.wantRefused)
			}
		})
	}
}

// TestAPIHandlerChecksPeer checks the handler's own identity check, the
// one that stands if the TLS configuration ever let another peer through.
func TestAPIHandlerChecksPeer(t *testing.T) {
	ca := catest.New(t, catest.Options{})
	api := sourceFor(t, ca, apiID)
	tests := []struct {
		name string
		peer *tls.ConnectionState
		want int
	}{
		{"ok/webapp", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{sourceFor(t, ca, webappID).Certificate().Leaf}}, http.StatusOK},
		{"fail/other-identity", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{sourceFor(t, ca, otherID).Certificate().Leaf}}, http.StatusForbidden},
		{"fail/no-client-certificate", &tls.ConnectionState{}, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPIServer(api, []rotor.Identity{webappID}, quiet())
			req := httptest.NewRequest(http.MethodGet, helloPath, nil)
			req.TLS = tc.peer
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				body, _ := io.ReadAll(rec.Body)
				t.Fatalf("status %d (%s), want %d", rec.Code, body, tc.want)
			}
		})
	}
}
