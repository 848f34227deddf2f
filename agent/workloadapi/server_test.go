package workloadapi_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/agent/workloadapi"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

var webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}

// serve serves srv on a socket in a temporary directory until the test
// ends and returns the socket's address as go-spiffe takes it.
func serve(t *testing.T, srv *workloadapi.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := workloadapi.Socket{Path: path}.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind after Serve returned: %v", err)
		}
	})
	return "unix://" + path
}

// TestStreamsRotations runs a real agent against a real CA issuing
// two-second certificates, with the Workload API server as its
// subscriber, and reads the socket with go-spiffe's own client: the first
// SVID arrives at once, and each renewal arrives on the open stream as a
// new SVID that go-spiffe parses and verifies against the bundle sent with
// it, matching the files the agent writes beside it.
func TestStreamsRotations(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: 2 * time.Second})
	srv := workloadapi.New(slog.New(slog.DiscardHandler))
	bundleFile := filepath.Join(t.TempDir(), "root.crt")
	if err := os.WriteFile(bundleFile, ca.Bundle.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{CAURL: ca.URL, CABundleFile: bundleFile, Token: ca.Token(t, webapp), OutDir: t.TempDir(),
		KeyType: rotor.ECDSAP256, RenewBefore: agent.DefaultRenewBefore, RequestTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler), Subscriber: srv}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() { _ = a.Run(ctx) }()

	c, err := spiffewl.New(ctx, spiffewl.WithAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	td := spiffeid.RequireTrustDomainFromString(catest.TrustDomain)
	wantID := spiffeid.RequireFromPath(td, "/ns/default/sa/webapp")
	seen := map[string]bool{}
	w := &watcher{updates: make(chan *spiffewl.X509Context, 16), errs: make(chan error, 16)}
	go func() { _ = c.WatchX509Context(ctx, w) }()
	for len(seen) < 3 {
		var xc *spiffewl.X509Context
		select {
		case xc = <-w.updates:
		case err := <-w.errs:
			t.Fatalf("watch: %v", err)
		case <-ctx.Done():
			t.Fatalf("saw %d SVIDs before the deadline, want 3", len(seen))
		}
		svid := xc.DefaultSVID()
		if svid.ID != wantID {
			t.Errorf("SVID %s, want %s", svid.ID, wantID)
		}
		if _, _, err := x509svid.Verify(svid.Certificates, xc.Bundles); err != nil {
			t.Errorf("SVID %s does not verify against the streamed bundle: %v", svid.Certificates[0].SerialNumber, err)
		}
		b, err := xc.Bundles.GetX509BundleForTrustDomain(td)
		if err != nil || len(b.X509Authorities()) != 1 || !b.X509Authorities()[0].Equal(ca.Root) {
			t.Errorf("streamed bundle for %s: %v, %v; want the CA's root", td, b, err)
		}
		serial := svid.Certificates[0].SerialNumber.Text(16)
		if seen[serial] {
			t.Errorf("SVID %s streamed twice", serial)
		}
		seen[serial] = true
		// The files are written before the SVID is published, so they
		// hold this certificate or, if the next renewal was quick, a
		// newer one.
		f, _, err := client.ReadFiles(cfg.OutDir)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := rotor.ParseCertificates(f.Cert)
		if err != nil {
			t.Fatal(err)
		}
		if disk := certs[0].SerialNumber.Text(16); disk != serial && seen[disk] {
			t.Errorf("disk holds %s, older than the streamed %s", disk, serial)
		}
	}

	bundles, err := c.FetchX509Bundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := bundles.GetX509BundleForTrustDomain(td); err != nil || !b.X509Authorities()[0].Equal(ca.Root) {
		t.Errorf("FetchX509Bundles: %v, %v; want the CA's root for %s", b, err, td)
	}
}

// watcher passes go-spiffe's updates to the test.
type watcher struct {
	updates chan *spiffewl.X509Context
	errs    chan error
}

func (w *watcher) OnX509ContextUpdate(c *spiffewl.X509Context) { w.updates <- c }
func (w *watcher) OnX509ContextWatchError(err error) {
	if status.Code(err) != codes.Canceled {
		w.errs <- err
	}
}

// TestCallsRefused: every call without the "workload.spiffe.io: true"
// metadata is refused InvalidArgument before anything is served, as the
// Workload API specification requires; the JWT methods, with it, answer
// Unimplemented. A raw gRPC client, since go-spiffe's always sends the
// header.
func TestCallsRefused(t *testing.T) {
	t.Parallel()
	addr := serve(t, workloadapi.New(slog.New(slog.DiscardHandler)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	api := workload.NewSpiffeWorkloadAPIClient(conn)
	calls := map[string]func(ctx context.Context) error{
		"FetchX509SVID": func(ctx context.Context) error {
			return firstMessage[workload.X509SVIDResponse](api.FetchX509SVID(ctx, &workload.X509SVIDRequest{}))
		},
		"FetchX509Bundles": func(ctx context.Context) error {
			return firstMessage[workload.X509BundlesResponse](api.FetchX509Bundles(ctx, &workload.X509BundlesRequest{}))
		},
		"FetchJWTSVID": func(ctx context.Context) error {
			_, err := api.FetchJWTSVID(ctx, &workload.JWTSVIDRequest{Audience: []string{"a"}})
			return err
		},
		"FetchJWTBundles": func(ctx context.Context) error {
			return firstMessage[workload.JWTBundlesResponse](api.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{}))
		},
		"ValidateJWTSVID": func(ctx context.Context) error {
			_, err := api.ValidateJWTSVID(ctx, &workload.ValidateJWTSVIDRequest{Audience: "a", Svid: "x.y.z"})
			return err
		},
	}
	tests := []struct {
		name   string
		call   string
		header []string // values of workload.spiffe.io; nil: none
		want   codes.Code
	}{
		{name: "fail/x509-svid-without-header", call: "FetchX509SVID", want: codes.InvalidArgument},
		{name: "fail/x509-svid-header-false", call: "FetchX509SVID", header: []string{"false"}, want: codes.InvalidArgument},
		{name: "fail/x509-svid-header-twice", call: "FetchX509SVID", header: []string{"true", "true"}, want: codes.InvalidArgument},
		{name: "fail/x509-bundles-without-header", call: "FetchX509Bundles", want: codes.InvalidArgument},
		{name: "fail/jwt-svid-without-header", call: "FetchJWTSVID", want: codes.InvalidArgument},
		{name: "fail/jwt-svid", call: "FetchJWTSVID", header: []string{"true"}, want: codes.Unimplemented},
		{name: "fail/jwt-bundles", call: "FetchJWTBundles", header: []string{"true"}, want: codes.Unimplemented},
		{name: "fail/validate-jwt-svid", call: "ValidateJWTSVID", header: []string{"true"}, want: codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, v := range tt.header {
				ctx = metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", v)
			}
			err := calls[tt.call](ctx)
			if got := status.Code(err); got != tt.want {
				t.Errorf("%s: %v, want code %v", tt.call, err, tt.want)
			}
		})
	}
}

// firstMessage reads the first message of a server stream just opened, or
// returns the error that opening it or reading it gave: a stream's status
// arrives with its first read.
func firstMessage[T any](s grpc.ServerStreamingClient[T], err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}
