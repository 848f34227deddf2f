package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

func TestBundle(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	c := newClient(t, ca)
	b, err := c.Bundle(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Fingerprint != ca.Bundle.Fingerprint || len(b.Roots) != 1 || !b.Roots[0].Equal(ca.Root) {
		t.Fatalf("bundle %s, want %s", b.Fingerprint, ca.Bundle.Fingerprint)
	}
	again, err := c.Bundle(context.Background(), b)
	if err != nil || again != b {
		t.Errorf("conditional fetch = %p, %v; want the known bundle back", again, err)
	}
}

func TestFetchBundlePinned(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	other := catest.New(t, catest.Options{})
	fp := rotor.Fingerprint(ca.Root.Raw)
	tests := []struct {
		name     string
		url      string
		pin      string
		wantCode rotor.ErrorCode
	}{
		{name: "ok/root-fingerprint", url: ca.URL, pin: fp},
		{name: "ok/colons-upper-case", url: ca.URL, pin: "SHA256:" + colons(strings.ToUpper(fp))},
		{name: "fail/other-ca", url: other.URL, pin: fp, wantCode: rotor.ECAUntrusted},
		{name: "fail/not-hex", url: ca.URL, pin: "abc", wantCode: rotor.EInvalid},
		{name: "fail/unreachable", url: "https://127.0.0.1:1", pin: fp, wantCode: rotor.ECAUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := client.FetchBundlePinned(context.Background(), client.Config{URL: tt.url, Timeout: 5 * time.Second}, tt.pin)
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
			}
			if err == nil && b.Fingerprint != ca.Bundle.Fingerprint {
				t.Errorf("bundle %s, want %s", b.Fingerprint, ca.Bundle.Fingerprint)
			}
		})
	}
}

// TestFetchBundlePinnedChecksServer: a server that hands out the pinned
// root's bundle but cannot show a chain to it (a man in the middle that
// copied the public bundle) is refused.
func TestFetchBundlePinnedChecksServer(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	mitm := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"`+ca.Bundle.Fingerprint+`"`)
		_, _ = w.Write(ca.Bundle.PEM)
	}))
	defer mitm.Close()
	_, err := client.FetchBundlePinned(context.Background(), client.Config{URL: mitm.URL}, rotor.Fingerprint(ca.Root.Raw))
	if code := rotor.ErrorCodeOf(err); code != rotor.ECAUntrusted {
		t.Errorf("code %q (%v), want %q", code, err, rotor.ECAUntrusted)
	}
}

func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}
