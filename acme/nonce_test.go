package acme_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestXCryptoBadNonce makes x/crypto's newAccount and finalize meet a
// used nonce (the transport sends each once more before the real one) and
// checks that the client retries with the fresh nonce and succeeds.
func TestXCryptoBadNonce(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.url(t), nil)
			replay := &replayer{next: e.client.Transport}
			e.client = &http.Client{Transport: replay, Timeout: 30 * time.Second}
			kid, mac := e.eab(t, webapp)
			c := e.xregister(t, kid, mac)
			e.xobtain(t, c, webapp.DNSName(trustDomain), mustKey(t, "ecdsa"))
			if n := replay.badNonces.Load(); n < 3 {
				t.Fatalf("%d replays answered badNonce, want every replayed POST's", n)
			}
		})
	}
}

// replayer sends the first newOrder and POST-as-GET of each authorization
// and certificate twice, the first copy to spend its nonce; the second, the
// client's, then meets badNonce. (A replayed newAccount or finalize would
// take effect, and the client's retry then finds it done, which clients
// rightly report as an error.)
type replayer struct {
	next      http.RoundTripper
	badNonces atomic.Int32
	seen      sync.Map
}

func (p *replayer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/new-order") &&
		!strings.Contains(r.URL.Path, "/authz/") && !strings.Contains(r.URL.Path, "/cert/") {
		return p.next.RoundTrip(r)
	}
	if _, seen := p.seen.LoadOrStore(r.URL.Path, true); seen { // the client's retry
		return p.next.RoundTrip(r)
	}
	body, _ := io.ReadAll(r.Body)
	first := r.Clone(r.Context())
	first.Body = io.NopCloser(bytes.NewReader(body))
	if res, err := p.next.RoundTrip(first); err == nil {
		res.Body.Close()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	res, err := p.next.RoundTrip(r)
	if err == nil && res.StatusCode == http.StatusBadRequest {
		p.badNonces.Add(1)
	}
	return res, err
}
