package api_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/signer"
)

// hangupKey hangs up the client whose request it is signing for, waits
// until the server has seen it go, and then either abandons the signature
// (sign false: the signer answers the caller's context) or signs anyway
// (sign true: the store gets the cancelled context to commit under).
type hangupKey struct {
	signer.Key
	sign   bool
	mu     *sync.Mutex
	hangup *context.CancelFunc // the request in flight's
}

func (k hangupKey) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.Lock()
	(*k.hangup)()
	k.mu.Unlock()
	<-ctx.Done()
	if !k.sign {
		return nil, ctx.Err()
	}
	return k.Key.Sign(context.Background(), digest, opts)
}

// TestClientHangsUp: a client that hangs up while its certificate is being
// signed or committed is no outage. Nothing is logged at ERROR, the store
// and signer error counters and the refusal counter stay at zero, and the
// server says at DEBUG that the caller went away.
func TestClientHangsUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sign bool
	}{
		{"ok/during-the-signature", false},
		{"ok/during-the-commit", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &e2etest.JSONLog{}
			var (
				mu     sync.Mutex
				hangup context.CancelFunc = func() {}
			)
			e := newEnv(t, sqliteURL(t), envConfig{logs: logs, wrapKey: func(k signer.Key) signer.Key {
				return hangupKey{Key: k, sign: tc.sign, mu: &mu, hangup: &hangup}
			}})
			for range 3 {
				ctx, cancel := context.WithCancel(context.Background())
				mu.Lock()
				hangup = cancel
				mu.Unlock()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/v1/certificates",
					bytes.NewReader(testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = withType(bearer(e.token), "application/pkcs10")
				if resp, err := e.client(nil).Do(req); !errors.Is(err, context.Canceled) {
					t.Fatalf("request = %v, %v; want it cancelled", resp, err)
				}
			}
			e2etest.WaitFor(t, "three hang-ups logged", 10*time.Second, func() bool { return len(logs.Events("request.abandoned")) == 3 })
			if n := logs.Count("ERROR"); n != 0 {
				t.Errorf("%d ERROR lines for clients that hung up:\n%s", n, logs)
			}
			for _, m := range []struct {
				name   string
				labels map[string]string
			}{
				// One series per operation the issuance path calls: the
				// commit's is the one a hang-up during it would bump.
				{"rotor_store_errors_total", map[string]string{"op": "lookup_token"}},
				{"rotor_store_errors_total", map[string]string{"op": "record_issuance"}},
				{"rotor_store_errors_total", map[string]string{"op": "record_refusal"}},
				{"rotor_signer_errors_total", nil},
				{"rotor_refusals_total", map[string]string{"reason": "store-unavailable"}},
				{"rotor_refusals_total", map[string]string{"reason": "signer-unavailable"}},
			} {
				if got, ok := metricSeries(t, e.metrics, m.name, m.labels); !ok || got != 0 {
					t.Errorf("%s%v = %v (exported: %v) after hang-ups, want an exported 0", m.name, m.labels, got, ok)
				}
			}
		})
	}
}
