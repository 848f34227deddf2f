package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rotor-dev/rotor/internal/testpki"
)

// post sends one issuance request without the contract checker, for load:
// the checker has already held each status to the contract elsewhere.
func post(client *http.Client, base, token string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/certificates", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
	return resp.StatusCode, err
}

// TestCountedRun issues concurrently against each real store, one request
// in ten carrying a broken CSR, then checks with plain SQL that the store
// holds exactly one issuance row per 201 and one refusal row per 400: no
// certificate left without its row, and no row without its answer.
func TestCountedRun(t *testing.T) {
	t.Parallel()
	n, workers := 500, 32
	if testing.Short() {
		n = 100
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			url := b.url(t)
			e := newEnv(t, url, envConfig{})
			bodies := make([][]byte, n)
			for i := range bodies {
				if i%10 == 9 {
					bodies[i] = []byte(fmt.Sprintf("not a CSR %d", i))
					continue
				}
				bodies[i] = testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)
			}
			client := e.client(nil)
			var created, refused, next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
						status, err := post(client, e.URL, e.token, bodies[i])
						switch {
						case err != nil:
							errs <- err
							return
						case status == http.StatusCreated:
							created.Add(1)
						case status == http.StatusBadRequest:
							refused.Add(1)
						default:
							errs <- fmt.Errorf("request %d: status %d", i, status)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if created.Load()+refused.Load() != int64(n) || refused.Load() != int64(n/10) {
				t.Errorf("%d created and %d refused of %d", created.Load(), refused.Load(), n)
			}
			if rows := countRows(t, url, "SELECT count(*) FROM issuances"); int64(rows) != created.Load() {
				t.Errorf("%d issuance rows, %d answered 201", rows, created.Load())
			}
			if rows := countRows(t, url, "SELECT count(*) FROM refusals"); int64(rows) != refused.Load() {
				t.Errorf("%d refusal rows, %d answered 400", rows, refused.Load())
			}
		})
	}
}
